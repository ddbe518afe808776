import type { ProgressEvent } from '@cpv/core';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[u]}`;
}

/** A one-line progress bar on a TTY stream, redrawn at most every 100 ms. */
export class Progress {
  private last = 0;
  private readonly start = Date.now();
  private drawn = false;

  constructor(
    private readonly label: string,
    private readonly out: NodeJS.WriteStream,
    private readonly enabled: boolean,
  ) {}

  update(e: ProgressEvent): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 100 && e.done < e.total) return;
    this.last = now;
    const frac = e.total > 0 ? Math.min(1, e.done / e.total) : 0;
    const width = 24;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const counts = e.phase === 'checkout' ? `${e.done}/${e.total} files` : `${formatBytes(e.done)}/${formatBytes(e.total)}`;
    const secs = (now - this.start) / 1000;
    const rate = e.phase !== 'checkout' && secs > 0.5 ? `  ${formatBytes(e.done / secs)}/s` : '';
    this.out.write(`\r\x1b[K${this.label} ${e.phase} [${bar}] ${(frac * 100).toFixed(0)}% ${counts}${rate}`);
    this.drawn = true;
  }

  done(): void {
    if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }
}

/** Render rows as aligned columns. */
/** `k=v k=v` of metadata, params or metrics. */
export function formatValues(o: Record<string, string | number | boolean> | undefined): string {
  return Object.entries(o ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}
