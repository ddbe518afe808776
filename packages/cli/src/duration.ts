import { UsageError } from '@cpv/core';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Parse a duration such as `7d`, `12h`, `1d12h`, `90m`, `30s` or `0` into
 * milliseconds (units ms, s, m, h, d, w). Throws UsageError naming `flag` otherwise.
 */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  if (t === '0') return 0;
  let ms = 0;
  let rest = t;
  const part = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/;
  for (let m = part.exec(rest); m && rest !== ''; m = part.exec(rest)) {
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  if (t === '' || rest !== '' || !Number.isFinite(ms)) {
    throw new UsageError(`${flag} ${JSON.stringify(text)} is not a duration`, { hint: 'use a number and a unit: 30s, 90m, 12h, 7d, 2w (or 1d12h)' });
  }
  return Math.round(ms);
}

/** 604800000 → "7d", 90000 → "1m30s": the largest units first, down to seconds (ms below 1 s). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  let left = Math.round(ms / 1000);
  const out: string[] = [];
  for (const [unit, secs] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (left >= secs) {
      out.push(`${Math.floor(left / secs)}${unit}`);
      left %= secs;
    }
  }
  return out.join('');
}
