/**
 * Deterministic test data. Large inputs are generated from a seed, never committed.
 * The generator is a Weyl sequence through the murmur3 finalizer: fast, well mixed,
 * and the same bytes on every platform (bytes are written explicitly, so endianness
 * does not leak in). Tests pin results computed from this output (fastcdc-v1 cut
 * points), so the generator must not change.
 */

/** A seeded generator of uint32 values. Same seed, same sequence, on every platform. */
export function createRng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** `n` pseudo-random bytes determined by `seed` alone. */
export function seededBytes(seed: number, n: number): Uint8Array {
  const next = createRng(seed);
  const out = new Uint8Array(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = next();
    out[i] = v;
    out[i + 1] = v >>> 8;
    out[i + 2] = v >>> 16;
    out[i + 3] = v >>> 24;
  }
  if (i < n) {
    let v = next();
    for (; i < n; i++, v >>>= 8) out[i] = v;
  }
  return out;
}

/** A seeded integer in [lo, hi] (inclusive) drawn from `next`. */
export function randomInt(next: () => number, lo: number, hi: number): number {
  return lo + (next() % (hi - lo + 1));
}

/**
 * A safetensors file (8-byte header length, JSON header, tensor bytes) with tensors of
 * the given sizes, content from `seed`, and each tensor's [start, end) in the file.
 */
export function safetensors(sizes: number[], seed: number): { data: Uint8Array; tensors: Array<[number, number]> } {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  sizes.forEach((n, i) => {
    header[`t${i}`] = { dtype: 'U8', shape: [n], data_offsets: [off, off + n] };
    off += n;
  });
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const data = Buffer.concat([len, json, seededBytes(seed, off)]);
  const base = 8 + json.length;
  let at = base;
  const tensors = sizes.map((n): [number, number] => {
    const t: [number, number] = [at, at + n];
    at += n;
    return t;
  });
  return { data, tensors };
}
