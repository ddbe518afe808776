import { describe, expect, it } from 'vitest';
import { UsageError } from '@cpv/core';
import { parseMeta } from './values.js';
import { formatBytes, table } from './render.js';

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.5 KiB'],
    [10 * 1024 * 1024, '10.0 MiB'],
    [150 * 1024 * 1024, '150 MiB'],
    [3 * 1024 ** 4, '3.0 TiB'],
  ])('%d -> %s', (n, s) => expect(formatBytes(n)).toBe(s));
});

describe('table', () => {
  it('aligns columns and leaves the last one unpadded', () => {
    expect(table([['a', 'bb', 'x'], ['ccc', 'd', 'y']])).toBe('a    bb  x\nccc  d   y');
  });
});

describe('parseMeta', () => {
  it('types numbers and booleans and keeps strings', () => {
    expect(parseMeta(['framework=pytorch', 'epochs=10', 'lr=0.001', 'ema=true', 'note=a=b', 'empty='])).toEqual({
      framework: 'pytorch',
      epochs: 10,
      lr: 0.001,
      ema: true,
      note: 'a=b',
      empty: '',
    });
  });

  it('rejects a pair without "="', () => {
    expect(() => parseMeta(['epochs'])).toThrow(UsageError);
  });
});
