import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { safetensors, seededBytes } from '../testing/seeded.js';
import { tensorBoundariesOf } from './boundaries.js';
import { validateChunkerParams } from './fastcdc.js';
import { scanBytes, scanFile } from './scan.js';

const ALIGNED = validateChunkerParams({ algorithm: 'fastcdc-v1', gear: 'cpv-gear-v1', min: 1024, avg: 4096, max: 16384, align: 'tensors' });
const PLAIN = { ...ALIGNED, align: 'none' as const };


function cutOffsets(chunks: Array<[string, number]>): Set<number> {
  const out = new Set<number>();
  let at = 0;
  for (const [, n] of chunks) out.add((at += n));
  return out;
}

describe('tensor-aligned chunking', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cpv-align-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds the header end and every tensor boundary', () => {
    const { data, tensors } = safetensors([5000, 70000, 3, 20000], 1);
    const expected = [...new Set([tensors[0]![0], ...tensors.map((t) => t[1])])].filter((x) => x < data.length);
    expect(tensorBoundariesOf(data)).toEqual(expected);
  });

  it('ignores content that is not safetensors', () => {
    expect(tensorBoundariesOf(seededBytes(3, 100_000))).toEqual([]);
    const { data } = safetensors([1000, 1000], 2);
    const broken = Buffer.from(data);
    broken[8] = 0x5b; // '[' instead of '{'
    expect(tensorBoundariesOf(broken)).toEqual([]);
    const lying = Buffer.from(data);
    lying.writeBigUInt64LE(BigInt(data.length)); // header longer than the file
    expect(tensorBoundariesOf(lying)).toEqual([]);
  });

  it('cuts at every boundary, identically for files, bytes and any buffer size', async () => {
    const { data, tensors } = safetensors([30000, 100000, 777, 50000, 64000], 4);
    const file = join(dir, 'm.safetensors');
    await writeFile(file, data);
    const mem = await scanBytes(data, ALIGNED);
    const cuts = cutOffsets(mem.chunks);
    for (const [b, e] of tensors) {
      expect(cuts.has(b)).toBe(true);
      expect(cuts.has(e)).toBe(true);
    }
    for (const bufferSize of [1, 997, 4096, 65537, 1 << 20]) {
      expect(await scanFile(file, { params: ALIGNED, bufferSize })).toEqual(mem);
    }
    // Same bytes, so the same file oid as without alignment.
    expect((await scanBytes(data, PLAIN)).oid).toBe(mem.oid);
  });

  it('a rewritten tensor changes only chunks inside it', async () => {
    const sizes = Array.from({ length: 12 }, () => 40000);
    const v1 = safetensors(sizes, 5);
    const v2data = Buffer.from(v1.data);
    const [b, e] = v1.tensors[6]!;
    v2data.set(seededBytes(99, e - b), b);
    const c1 = (await scanBytes(v1.data, ALIGNED)).chunks;
    const c2 = (await scanBytes(v2data, ALIGNED)).chunks;
    const old = new Set(c1.map(([o]) => o));
    const newBytes = c2.filter(([o]) => !old.has(o)).reduce((n, [, l]) => n + l, 0);
    expect(newBytes).toBe(e - b);
    // Without alignment the neighbours' boundary chunks change too.
    const p1 = new Set((await scanBytes(v1.data, PLAIN)).chunks.map(([o]) => o));
    const plainNew = (await scanBytes(v2data, PLAIN)).chunks.filter(([o]) => !p1.has(o)).reduce((n, [, l]) => n + l, 0);
    expect(plainNew).toBeGreaterThan(e - b);
  });
});
