import { describe, expect, it } from 'vitest';
import { UsageError } from '@cpv/core';
import { formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['0s', 0],
    ['250ms', 250],
    ['30s', 30_000],
    ['90m', 5_400_000],
    ['12h', 43_200_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['1d12h', 129_600_000],
    ['1.5h', 5_400_000],
  ])('%s -> %d ms', (text, ms) => expect(parseDuration(text, '--grace')).toBe(ms));

  it.each(['', '7', 'd', '7x', '-1d', '7d 1h', '1h7'])('rejects %j naming the flag', (text) => {
    expect(() => parseDuration(text, '--grace')).toThrow(UsageError);
    expect(() => parseDuration(text, '--grace')).toThrow(/^--grace ".*" is not a duration$/);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [30_000, '30s'],
    [90_000, '1m30s'],
    [604_800_000, '7d'],
    [129_600_000, '1d12h'],
  ])('%d ms -> %s', (ms, text) => expect(formatDuration(ms)).toBe(text));
});
