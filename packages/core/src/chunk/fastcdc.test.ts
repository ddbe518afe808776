import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { loadHasher } from '../hash/blake3.js';
import { createRng, randomInt, seededBytes } from '../testing/seeded.js';
import { chunkInPieces } from '../testing/chunking.js';
import { Chunker, chunkLengths, DEFAULT_CHUNKER, validateChunkerParams, type ChunkerParams } from './fastcdc.js';
import { GEAR_V1 } from './gear.js';

const MiB = 1024 * 1024;
const params = (min: number, avg: number, max: number): ChunkerParams => ({ algorithm: 'fastcdc-v1', gear: 'cpv-gear-v1', min, avg, max, align: 'none' });
const SMALL = params(64, 256, 1024);

/** docs/format.md "Chunking", transcribed literally: one byte at a time, no shortcuts. */
function referenceLengths(data: Uint8Array, p: ChunkerParams): number[] {
  const bits = Math.log2(p.avg);
  const maskS = (0xffffffff << (32 - (bits + 2))) >>> 0;
  const maskL = (0xffffffff << (32 - (bits - 2))) >>> 0;
  const out: number[] = [];
  let start = 0;
  let h = 0;
  for (let k = 0; k < data.length; k++) {
    const i = k - start;
    if (i < p.min) continue;
    h = (h * 2 + GEAR_V1[data[k]!]!) % 2 ** 32;
    if ((i + 1 < p.avg && (h & maskS) === 0) || (i + 1 >= p.avg && (h & maskL) === 0) || i + 1 === p.max) {
      out.push(i + 1);
      start = k + 1;
      h = 0;
    }
  }
  if (start < data.length) out.push(data.length - start);
  return out;
}

/** Chunk lengths of `data` pushed in pieces whose sizes come from `sizes()`. */
function lengthsInPieces(data: Uint8Array, p: ChunkerParams, sizes: () => number): number[] {
  return chunkInPieces(data, p, sizes).lengths;
}

async function chunkOids(data: Uint8Array, lengths: number[]): Promise<string[]> {
  const newHasher = await loadHasher();
  const oids: string[] = [];
  let off = 0;
  for (const len of lengths) {
    const h = newHasher();
    h.update(data.subarray(off, off + len));
    oids.push(h.digestHex());
    off += len;
  }
  return oids;
}

// fastcdc-v1 cut points of seededBytes(42, 8 MiB), recorded once (see the test below).
const PINNED = {
  defaultFirst: [69645, 65665, 66377, 91137, 91275, 67298, 75094, 91105],
  defaultAll: [114, '79eb91fece154cdeb6f5651f56e4df3e41977e811908e9350fbe8da1de1cd43f'],
  smallAll: [3582, 'a1ff099c683b28d09ee1e6dd00db9d36a0daf61d265193868412ceaf709ad5f9'],
};

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

describe('Chunker', () => {
  it.each([
    ['default', DEFAULT_CHUNKER, 8 * MiB],
    ['small', SMALL, 1 * MiB],
    ['min == avg', params(4096, 4096, 16384), 2 * MiB],
    ['avg == max', params(1024, 8192, 8192), 2 * MiB],
    ['max == min + 1', params(1023, 1024, 1024), 256 * 1024],
  ])('cuts exactly where the format says (%s)', (_name, p, n) => {
    const data = seededBytes(n, n);
    const got = chunkLengths(data, p);
    expect(got).toEqual(referenceLengths(data, p));
    expect(got.length).toBeGreaterThan(10);
  });

  describe.each([
    ['default', DEFAULT_CHUNKER, 4 * MiB],
    ['small', SMALL, 1 * MiB],
  ])('never depends on buffer boundaries (%s)', (_name, p, n) => {
    const data = seededBytes(99, n);
    const whole = chunkLengths(data, p);

    it.each([1, 7, 4096, 65537, MiB + 3])('buffers of %i bytes', (size) => {
      expect(lengthsInPieces(data, p, () => size)).toEqual(whole);
    });

    it('random buffer sizes, including empty ones', () => {
      for (const seed of [1, 2, 3]) {
        const next = createRng(seed);
        const max = [64, 5000, 300_000][seed - 1]!;
        expect(lengthsInPieces(data, p, () => randomInt(next, 0, max))).toEqual(whole);
      }
    });
  });

  it('keeps every chunk within [min, max] except the last, and covers the input', () => {
    const data = seededBytes(5, 16 * MiB);
    const lengths = chunkLengths(data, DEFAULT_CHUNKER);
    expect(sum(lengths)).toBe(data.length);
    for (const len of lengths.slice(0, -1)) {
      expect(len).toBeGreaterThan(DEFAULT_CHUNKER.min); // the first possible cut is after offset min
      expect(len).toBeLessThanOrEqual(DEFAULT_CHUNKER.max);
    }
    expect(lengths.at(-1)!).toBeLessThanOrEqual(DEFAULT_CHUNKER.max);
    const mean = data.length / lengths.length;
    expect(mean).toBeGreaterThan(DEFAULT_CHUNKER.avg * 0.5);
    expect(mean).toBeLessThan(DEFAULT_CHUNKER.avg * 2);
  });

  it.each([
    ['an insertion', (d: Uint8Array) => concat(d.subarray(0, 4 * MiB + 123), seededBytes(7, 1000), d.subarray(4 * MiB + 123))],
    ['a deletion', (d: Uint8Array) => concat(d.subarray(0, 3 * MiB + 7), d.subarray(3 * MiB + 5007))],
    ['an overwrite', (d: Uint8Array) => { const e = d.slice(); e.set(seededBytes(8, 100), 5 * MiB); return e; }],
  ])('%s in the middle changes only the chunks around it', async (_name, edit) => {
    const before = seededBytes(11, 8 * MiB);
    const after = edit(before);
    const a = await chunkOids(before, chunkLengths(before, DEFAULT_CHUNKER));
    const b = await chunkOids(after, chunkLengths(after, DEFAULT_CHUNKER));
    const old = new Set(a);
    const fresh = b.filter((oid) => !old.has(oid));
    expect(a.length).toBeGreaterThan(64);
    expect(fresh.length).toBeGreaterThanOrEqual(1);
    expect(fresh.length).toBeLessThanOrEqual(3);
    expect(b.length - fresh.length).toBeGreaterThanOrEqual(a.length - 3);
  });

  it('cuts zero-filled data at max', () => {
    const lengths = chunkLengths(new Uint8Array(4 * DEFAULT_CHUNKER.max + 5), DEFAULT_CHUNKER);
    expect(lengths).toEqual([DEFAULT_CHUNKER.max, DEFAULT_CHUNKER.max, DEFAULT_CHUNKER.max, DEFAULT_CHUNKER.max, 5]);
  });

  it('produces no chunk for empty input', () => {
    expect(chunkLengths(new Uint8Array(0), DEFAULT_CHUNKER)).toEqual([]);
    const c = new Chunker(DEFAULT_CHUNKER);
    expect(c.push(new Uint8Array(0))).toEqual([]);
    expect(c.finish()).toBe(0);
  });

  it('ends a short input as one chunk', () => {
    expect(chunkLengths(seededBytes(3, 100), DEFAULT_CHUNKER)).toEqual([100]);
    expect(chunkLengths(seededBytes(3, DEFAULT_CHUNKER.min), DEFAULT_CHUNKER)).toEqual([DEFAULT_CHUNKER.min]);
  });

  it('resets on finish, so one chunker can cut several streams', () => {
    const data = seededBytes(21, 2 * MiB);
    const c = new Chunker(DEFAULT_CHUNKER);
    c.push(seededBytes(22, 100_000));
    c.finish();
    const lengths = c.push(data);
    lengths.push(c.finish());
    expect(lengths).toEqual(chunkLengths(data, DEFAULT_CHUNKER));
  });

  it('rejects invalid parameters at construction', () => {
    expect(() => new Chunker(params(64, 100, 1024))).toThrow(ConfigError);
  });

  // Pins fastcdc-v1 as released: if this changes, existing repositories stop deduping
  // against new data. The values were produced by this implementation after it matched
  // referenceLengths above; they must never be edited to make a change pass.
  it('matches the recorded cut points of fastcdc-v1', async () => {
    const data = seededBytes(42, 8 * MiB);
    const newHasher = await loadHasher();
    const digest = (xs: number[]): string => {
      const h = newHasher();
      h.update(new TextEncoder().encode(xs.join(',')));
      return h.digestHex();
    };
    const def = chunkLengths(data, DEFAULT_CHUNKER);
    const small = chunkLengths(data.subarray(0, MiB), SMALL);
    expect(def.slice(0, 8)).toEqual(PINNED.defaultFirst);
    expect([def.length, digest(def)]).toEqual(PINNED.defaultAll);
    expect([small.length, digest(small)]).toEqual(PINNED.smallAll);
  });
});

describe('validateChunkerParams', () => {
  const D = DEFAULT_CHUNKER;
  it.each([
    ['null', null, /must be an object/],
    ['a string', 'fastcdc-v1', /must be an object/],
    ['an array', [], /must be an object/],
    ['an unknown algorithm', { ...D, algorithm: 'fastcdc-v2' }, /unknown chunker algorithm "fastcdc-v2"/],
    ['an unknown gear', { ...D, gear: 'cpv-gear-v2' }, /unknown gear table "cpv-gear-v2"/],
    ['an unknown key', { ...D, seed: 1 }, /unknown chunker parameter "seed"/],
    ['a missing size', { algorithm: 'fastcdc-v1', gear: 'cpv-gear-v1', min: 16384, avg: 65536 }, /max must be a positive integer/],
    ['a fractional size', { ...D, min: 16384.5 }, /min must be a positive integer.*16384.5/],
    ['a size as a string', { ...D, avg: '65536' }, /avg must be a positive integer.*"65536"/],
    ['a NaN size', { ...D, max: Number.NaN }, /max must be a positive integer/],
    ['a negative size', { ...D, min: -1 }, /min must be a positive integer/],
    ['avg not a power of two', { ...D, avg: 60000 }, /avg must be a power of two, got 60000/],
    ['min below 64', params(32, 64, 128), /min must be at least 64, got 32/],
    ['max above 64 MiB', params(16384, 65536, 128 * MiB), /max must be at most 67108864/],
    ['min above avg', { ...D, min: 131072 }, /min <= avg <= max/],
    ['avg above max', { ...D, max: 32768 }, /min <= avg <= max/],
    ['min equal to max', params(65536, 65536, 65536), /min must be less than max/],
  ])('rejects %s', (_what, p, message) => {
    let err: unknown;
    try {
      validateChunkerParams(p);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('CONFIG');
    expect((err as Error).message).toMatch(message);
  });

  it.each([
    ['the defaults', D],
    ['min == avg', params(4096, 4096, 8192)],
    ['avg == max', params(64, 128, 128)],
    ['the largest sizes', params(16 * MiB, 64 * MiB, 64 * MiB)],
  ])('accepts %s and returns a fresh copy', (_what, p) => {
    const got = validateChunkerParams(p);
    expect(got).toEqual(p);
    expect(got).not.toBe(p);
  });
});

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(sum(parts.map((p) => p.length)));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
