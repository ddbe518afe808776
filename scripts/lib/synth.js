// Deterministic synthetic ML artifacts for the demo, tests and benchmarks: a
// safetensors-like model (8-byte little-endian header length, JSON header, tensor
// bytes) and a dataset of small files, all generated from a seed. Plain JS so Node 20
// runs it without a build.
import { mkdirSync, openSync, closeSync, writeSync, readSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** A fast seeded PRNG (xorshift128) filling a Uint8Array. */
export function fillRandom(buf, seed) {
  if (buf.byteOffset % 4 !== 0) {
    buf.set(fillRandom(new Uint8Array(buf.length), seed));
    return buf;
  }
  let a = (seed ^ 0x9e3779b9) >>> 0 || 1;
  let b = (seed * 0x85ebca6b) >>> 0 || 2;
  let c = (seed * 0xc2b2ae35) >>> 0 || 3;
  let d = (seed + 0x27d4eb2f) >>> 0 || 4;
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  for (let i = 0; i < words.length; i++) {
    const t = a ^ (a << 11);
    a = b;
    b = c;
    c = d;
    d = (d ^ (d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    words[i] = d;
  }
  for (let i = words.length * 4; i < buf.length; i++) buf[i] = (d = (d * 1103515245 + 12345) >>> 0) >>> 24;
  return buf;
}

/**
 * Layout of a safetensors-like model: `tensors` tensors of roughly equal size summing
 * to about `bytes`. Returns { header (Buffer incl. length prefix), tensors: [{name, offset, length}] }
 * where offsets are absolute file offsets.
 */
export function modelLayout(bytes, tensors) {
  const per = Math.max(4096, Math.floor(bytes / tensors / 4096) * 4096);
  const meta = {};
  const list = [];
  let off = 0;
  for (let i = 0; i < tensors; i++) {
    const name = `model.layers.${Math.floor(i / 4)}.${['attn.q', 'attn.k', 'mlp.up', 'mlp.down'][i % 4]}.weight`;
    meta[name] = { dtype: 'F16', shape: [per / 2 / 256, 256], data_offsets: [off, off + per] };
    list.push({ name, rel: off, length: per });
    off += per;
  }
  meta.__metadata__ = { format: 'pt' };
  let json = Buffer.from(JSON.stringify(meta));
  const pad = (8 - (json.length % 8)) % 8;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const header = Buffer.concat([len, json]);
  return { header, tensors: list.map((t) => ({ name: t.name, offset: header.length + t.rel, length: t.length })) };
}

/** Write a safetensors-like model of about `bytes` bytes with `tensors` tensors. */
export function writeModel(path, { bytes, tensors = 64, seed = 1 }) {
  const { header, tensors: list } = modelLayout(bytes, tensors);
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header);
    const chunk = Buffer.allocUnsafe(4 * 1024 * 1024);
    list.forEach((t, i) => {
      for (let done = 0; done < t.length; ) {
        const n = Math.min(chunk.length, t.length - done);
        fillRandom(chunk.subarray(0, n), seed * 100003 + i * 7919 + done);
        writeSync(fd, chunk, 0, n, t.offset + done);
        done += n;
      }
    });
  } finally {
    closeSync(fd);
  }
  return list;
}

/**
 * Rewrite `fraction` of the tensors of a model written by writeModel in place (same
 * sizes, new random bytes), chosen by `seed`. Returns the number of bytes rewritten.
 */
export function rewriteTensors(path, { fraction, seed = 2 }) {
  const fd = openSync(path, 'r+');
  try {
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const hlen = Number(lenBuf.readBigUInt64LE());
    const hbuf = Buffer.alloc(hlen);
    readSync(fd, hbuf, 0, hlen, 8);
    const meta = JSON.parse(hbuf.toString());
    const names = Object.keys(meta).filter((k) => k !== '__metadata__');
    const count = Math.max(1, Math.round(names.length * fraction));
    const rng = fillRandom(new Uint8Array(names.length * 4), seed);
    const order = names.map((n, i) => [n, new DataView(rng.buffer).getUint32(i * 4, true)]).sort((a, b) => a[1] - b[1]).slice(0, count);
    let changed = 0;
    for (const [name] of order) {
      const [s, e] = meta[name].data_offsets;
      const buf = fillRandom(Buffer.allocUnsafe(e - s), seed * 31 + s);
      writeSync(fd, buf, 0, buf.length, 8 + hlen + s);
      changed += buf.length;
    }
    return changed;
  } finally {
    closeSync(fd);
  }
}

/** Write `files` small files (1–16 KiB) under `dir`, in nested folders, from `seed`. */
export function writeDataset(dir, { files, seed = 3 }) {
  const sizes = fillRandom(new Uint8Array(files * 2), seed);
  let total = 0;
  for (let i = 0; i < files; i++) {
    const size = 1024 + ((sizes[2 * i] << 8) | sizes[2 * i + 1]) % (15 * 1024);
    const p = join(dir, `shard-${String(i % 10).padStart(2, '0')}`, `sample-${String(i).padStart(6, '0')}.bin`);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, fillRandom(Buffer.allocUnsafe(size), seed * 65537 + i));
    total += size;
  }
  return total;
}
