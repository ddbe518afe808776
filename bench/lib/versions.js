// Model edits for the version series beyond scripts/lib/synth.js: insert a tensor in
// the middle (shifting everything after it) and change single bytes. Seeded, so every
// run makes the same files.
import { closeSync, fstatSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { fillRandom } from '../../scripts/lib/synth.js';

function readHeader(fd) {
  const lenBuf = Buffer.alloc(8);
  readSync(fd, lenBuf, 0, 8, 0);
  const hlen = Number(lenBuf.readBigUInt64LE());
  const hbuf = Buffer.alloc(hlen);
  readSync(fd, hbuf, 0, hlen, 8);
  return { hlen, meta: JSON.parse(hbuf.toString()) };
}

function encodeHeader(meta) {
  let json = Buffer.from(JSON.stringify(meta));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json]);
}

function copyRange(src, dst, from, length, to) {
  const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
  for (let done = 0; done < length; ) {
    const n = readSync(src, buf, 0, Math.min(buf.length, length - done), from + done);
    if (n === 0) throw new Error('unexpected end of file');
    writeSync(dst, buf, 0, n, to + done);
    done += n;
  }
}

/**
 * Insert a new tensor of `bytes` bytes in the middle of a safetensors-like model (its
 * header gains an entry and every later tensor moves). Writes a new file and renames
 * it over `path`. Returns the bytes that are new: the tensor plus the rewritten header.
 */
export function insertTensor(path, { bytes, seed = 4 }) {
  const src = openSync(path, 'r');
  const tmp = `${path}.insert-tmp`;
  let dst;
  try {
    const { hlen, meta } = readHeader(src);
    const names = Object.keys(meta).filter((k) => k !== '__metadata__').sort((a, b) => meta[a].data_offsets[0] - meta[b].data_offsets[0]);
    const mid = meta[names[names.length >> 1]].data_offsets[0];
    const out = {};
    for (const k of Object.keys(meta)) {
      if (k === names[names.length >> 1]) out['model.inserted.adapter.weight'] = { dtype: 'F16', shape: [bytes / 512, 256], data_offsets: [mid, mid + bytes] };
      const v = meta[k];
      out[k] = k === '__metadata__' || v.data_offsets[0] < mid ? v : { ...v, data_offsets: [v.data_offsets[0] + bytes, v.data_offsets[1] + bytes] };
    }
    const header = encodeHeader(out);
    const dataLen = fstatSync(src).size - 8 - hlen;
    dst = openSync(tmp, 'w');
    writeSync(dst, header, 0, header.length, 0);
    copyRange(src, dst, 8 + hlen, mid, header.length);
    const t = fillRandom(Buffer.allocUnsafe(bytes), seed * 7877);
    writeSync(dst, t, 0, t.length, header.length + mid);
    copyRange(src, dst, 8 + hlen + mid, dataLen - mid, header.length + mid + bytes);
    renameSync(tmp, path);
    return bytes + header.length;
  } finally {
    closeSync(src);
    if (dst !== undefined) closeSync(dst);
  }
}

/**
 * Change one byte (inverted) in the middle of each of `count` tensors chosen by `seed`,
 * in place. Returns the number of bytes changed.
 */
export function pokeBytes(path, { count, seed = 5 }) {
  const fd = openSync(path, 'r+');
  try {
    const { hlen, meta } = readHeader(fd);
    const names = Object.keys(meta).filter((k) => k !== '__metadata__');
    const rng = new DataView(fillRandom(new Uint8Array(names.length * 4), seed).buffer);
    const chosen = names.map((n, i) => [n, rng.getUint32(i * 4, true)]).sort((a, b) => a[1] - b[1]).slice(0, count);
    const b = Buffer.alloc(1);
    for (const [name, r] of chosen) {
      const [s, e] = meta[name].data_offsets;
      const at = 8 + hlen + s + (r % (e - s));
      readSync(fd, b, 0, 1, at);
      b[0] ^= 0xff;
      writeSync(fd, b, 0, 1, at);
    }
    return chosen.length;
  } finally {
    closeSync(fd);
  }
}
