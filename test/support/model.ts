import { chmod, mkdir, open, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
// cpv hashes with the native BLAKE3 binding when it loads (hash-wasm is only its
// fallback), so the tests check cpv's oids against an independent implementation.
import { createBLAKE3 } from 'hash-wasm';
import { fillRandom } from '../../scripts/lib/synth.js';

const MiB = 1024 * 1024;

/** `n` pseudo-random bytes from `seed` (the generator the demo and benchmarks use). */
export function randomBytes(seed: number, n: number): Uint8Array {
  return fillRandom(new Uint8Array(n), seed);
}

/** A seeded uint32 generator (splitmix32): for choices, sizes and sub-seeds. */
export function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** One tensor of a safetensors file; offsets are relative to the data section. */
export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  start: number;
  end: number;
}

/** Layout of a safetensors file. */
export interface ModelInfo {
  /** Total file size. */
  size: number;
  /** Length of the JSON header (N). */
  headerLength: number;
  /** Absolute offset of the first tensor byte: 8 + N. */
  dataStart: number;
  tensors: TensorInfo[];
  metadata: Record<string, string>;
}

export interface ModelOptions {
  seed: number;
  /** Number of tensors (default 64). */
  tensors?: number;
  /** Approximate total tensor bytes (default 32 MiB). */
  bytes?: number;
}

const COLS = 1024; // F16 columns: every row is 2 KiB

/**
 * Write a safetensors-like file: an 8-byte little-endian header length N, N bytes
 * of JSON header (`{"<name>": {"dtype":"F16","shape":[rows,1024],"data_offsets":[s,e]},
 * …, "__metadata__": {…}}`, space-padded to a multiple of 8 like the real format),
 * then the tensors' bytes back to back. Tensor sizes vary (0.5x to 1.5x the mean) and
 * every byte is determined by `seed`.
 */
export async function writeModel(file: string, opts: ModelOptions): Promise<ModelInfo> {
  const count = opts.tensors ?? 64;
  const target = opts.bytes ?? 32 * MiB;
  const next = splitmix32(opts.seed);
  const weights = Array.from({ length: count }, () => 0.5 + next() / 2 ** 32);
  const sum = weights.reduce((a, b) => a + b, 0);
  const rowBytes = COLS * 2;
  const tensors: TensorInfo[] = [];
  let at = 0;
  const parts = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
  weights.forEach((wt, i) => {
    const rows = Math.max(1, Math.round(((wt / sum) * target) / rowBytes));
    const len = rows * rowBytes;
    tensors.push({ name: `model.layers.${i >> 2}.self_attn.${parts[i % 4]}.weight`, dtype: 'F16', shape: [rows, COLS], start: at, end: at + len });
    at += len;
  });
  const metadata = { format: 'pt', generator: 'cpv-e2e', seed: String(opts.seed) };
  const header: Record<string, unknown> = { __metadata__: metadata };
  for (const t of tensors) header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.start, t.end] };
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const lenBytes = Buffer.alloc(8);
  lenBytes.writeBigUInt64LE(BigInt(headerBytes.length));

  await mkdir(dirname(file), { recursive: true });
  const fh = await open(file, 'w');
  try {
    await fh.write(lenBytes);
    await fh.write(headerBytes);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i]!;
      await fh.write(randomBytes(tensorSeed(opts.seed, i, 0), t.end - t.start));
    }
  } finally {
    await fh.close();
  }
  const dataStart = 8 + headerBytes.length;
  return { size: dataStart + at, headerLength: headerBytes.length, dataStart, tensors, metadata };
}

/** Parse the header of a safetensors file written by `writeModel` (or a real one). */
export async function readModel(file: string): Promise<ModelInfo> {
  const fh = await open(file, 'r');
  try {
    const lenBytes = Buffer.alloc(8);
    await fh.read(lenBytes, 0, 8, 0);
    const n = Number(lenBytes.readBigUInt64LE());
    const headerBytes = Buffer.alloc(n);
    await fh.read(headerBytes, 0, n, 8);
    const header = JSON.parse(headerBytes.toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
    const tensors: TensorInfo[] = [];
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(header)) {
      if (name === '__metadata__') metadata = v as Record<string, string>;
      else {
        const t = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
        tensors.push({ name, dtype: t.dtype, shape: t.shape, start: t.data_offsets[0], end: t.data_offsets[1] });
      }
    }
    tensors.sort((a, b) => a.start - b.start);
    return { size: (await fh.stat()).size, headerLength: n, dataStart: 8 + n, tensors, metadata };
  } finally {
    await fh.close();
  }
}

/**
 * Overwrite `round(fraction × tensors)` tensors (at least one, chosen by `seed`) in
 * place with new random bytes of the same size, as a fine-tuning step that touches a
 * few layers would. The header and every other byte stay as they were. Returns the
 * number of bytes rewritten (the sum of the chosen tensors' sizes).
 */
export async function rewriteTensors(file: string, fraction: number, seed: number): Promise<number> {
  const info = await readModel(file);
  const k = Math.min(info.tensors.length, Math.max(1, Math.round(fraction * info.tensors.length)));
  // Seeded Fisher-Yates: the first k of a shuffled index list.
  const order = info.tensors.map((_, i) => i);
  const next = splitmix32(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const fh = await open(file, 'r+');
  let changed = 0;
  try {
    for (const i of order.slice(0, k)) {
      const t = info.tensors[i]!;
      const bytes = randomBytes(tensorSeed(seed, i, 1), t.end - t.start);
      await fh.write(bytes, 0, bytes.length, info.dataStart + t.start);
      changed += bytes.length;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return changed;
}

function tensorSeed(seed: number, index: number, generation: number): number {
  return (Math.imul(seed >>> 0, 0x01000193) ^ Math.imul(index + 1, 0x9e3779b1) ^ Math.imul(generation + 1, 0x85ebca6b)) >>> 0;
}

/** BLAKE3-256 hex of a file's bytes (what `b3sum FILE` prints), via hash-wasm. */
export async function b3sum(file: string): Promise<string> {
  const h = await createBLAKE3();
  h.init();
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * MiB);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

export interface DatasetOptions {
  seed: number;
  /** Number of files (default 200). */
  files?: number;
  minBytes?: number;
  maxBytes?: number;
}

/**
 * Write a dataset of `files` small files (1–16 KiB by default) in nested directories
 * under `dir`, every byte determined by `seed`. Two files are special on purpose: one
 * has a name with a space and a non-ASCII letter, one is executable (mode 0755).
 * Returns the `/`-separated relative paths, sorted.
 */
export async function writeDataset(dir: string, opts: DatasetOptions): Promise<string[]> {
  const n = opts.files ?? 200;
  const lo = opts.minBytes ?? 1024;
  const hi = opts.maxBytes ?? 16 * 1024;
  const next = splitmix32(opts.seed ^ 0x5eed);
  const paths: string[] = [];
  for (let i = 0; i < n; i++) {
    const size = lo + (next() % (hi - lo + 1));
    let rel: string;
    let mode = 0o644;
    if (i === 0) rel = 'meta/label notes ü.txt';
    else if (i === 1) {
      rel = 'tools/prepare.sh';
      mode = 0o755;
    } else {
      const split = i % 10 === 0 ? 'val' : 'train';
      rel = `${split}/shard-${i % 4}/class-${Math.floor(i / 4) % 5}/sample-${String(i).padStart(4, '0')}.bin`;
    }
    const abs = join(dir, ...rel.split('/'));
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, randomBytes(tensorSeed(opts.seed, i, 7), size));
    await chmod(abs, mode);
    paths.push(rel);
  }
  return paths.sort();
}
