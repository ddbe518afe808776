import { describe, expect, it } from 'vitest';
import { createRng, randomInt, seededBytes } from '../testing/seeded.js';
import { Chunker, DEFAULT_CHUNKER, type ChunkerImpl, type ChunkerParams } from './fastcdc.js';
import { GEAR_WASM_DATA, GEAR_WASM_MEMORY } from './gear-wasm.js';
import { chunkInPieces } from '../testing/chunking.js';

const MiB = 1024 * 1024;
const WINDOW = GEAR_WASM_MEMORY - GEAR_WASM_DATA;
const params = (min: number, avg: number, max: number): ChunkerParams => ({ algorithm: 'fastcdc-v1', gear: 'cpv-gear-v1', min, avg, max, align: 'none' });

/** Chunk lengths of `data` pushed in pieces whose sizes come from `sizes()`, by `impl`. */
function lengths(impl: ChunkerImpl, data: Uint8Array, p: ChunkerParams, sizes: () => number): number[] {
  const r = chunkInPieces(data, p, sizes, impl);
  expect(r.impl).toBe(impl);
  return r.lengths;
}

describe('the WebAssembly gear loop', () => {
  it('is the default', () => {
    expect(new Chunker(DEFAULT_CHUNKER).impl).toBe('wasm');
  });

  describe.each([
    ['default', DEFAULT_CHUNKER],
    ['small', params(64, 256, 1024)],
    ['min == avg', params(4096, 4096, 16384)],
    ['avg == max', params(1024, 8192, 8192)],
    ['max == min + 1', params(1023, 1024, 1024)],
    ['max above the wasm window', params(64 * 1024, 1024 * 1024, 4 * MiB)],
  ])('cuts where the JavaScript loop cuts (%s)', (_name, p) => {
    const sizes = [0, 1, 63, 64, 65, 1000, 65_537, WINDOW - 1, WINDOW, WINDOW + 1, 3 * MiB + 17];
    it.each(sizes)('%i random bytes, in random buffer splits', (n) => {
      const data = seededBytes(n + 11, n);
      const next = createRng(n);
      for (const split of [() => n || 1, () => 4096, () => randomInt(next, 0, 300_000), () => randomInt(next, WINDOW - 3, 2 * WINDOW + 3)]) {
        const js = lengths('js', data, p, split);
        expect(lengths('wasm', data, p, split)).toEqual(js);
        expect(js.reduce((a, b) => a + b, 0)).toBe(n);
      }
    });

    it('byte-by-byte and tiny splits', () => {
      const data = seededBytes(3, 70_000);
      const whole = lengths('js', data, p, () => data.length);
      expect(lengths('wasm', data, p, () => 1)).toEqual(whole);
      const next = createRng(9);
      expect(lengths('wasm', data, p, () => randomInt(next, 0, 64))).toEqual(whole);
    });

    it('low-entropy input (zeros, then a short repeated pattern)', () => {
      const data = new Uint8Array(2 * MiB + 5);
      for (let i = MiB; i < data.length; i++) data[i] = i % 7;
      expect(lengths('wasm', data, p, () => 100_000)).toEqual(lengths('js', data, p, () => data.length));
    });
  });
});
