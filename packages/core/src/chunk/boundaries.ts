import type { FileHandle } from 'node:fs/promises';

/** Headers larger than this are not parsed (real safetensors headers are well below). */
const MAX_HEADER = 64 * 1024 * 1024;

/**
 * Tensor boundaries of a safetensors file (8-byte little-endian header length, JSON
 * header whose entries carry `data_offsets: [begin, end]` relative to the end of the
 * header, then tensor bytes): the end of the header and the start and end of every
 * tensor, as absolute offsets strictly inside (0, size), sorted, unique.
 *
 * Detection is by content, not by file name. Anything that is not a well-formed
 * safetensors layout yields `[]` (plain content-defined chunking): boundaries only
 * improve dedup, they never affect correctness.
 */
export function tensorBoundariesFromHeader(prefix: Uint8Array, headerBytes: Uint8Array | undefined, size: number): number[] {
  if (prefix.length < 8 || size < 10) return [];
  const n = Number(new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true));
  if (n < 2 || n > MAX_HEADER || 8 + n > size) return [];
  if (headerBytes === undefined || headerBytes.length !== n || headerBytes[0] !== 0x7b /* { */) return [];
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(headerBytes.buffer, headerBytes.byteOffset, headerBytes.length).toString('utf8'));
  } catch {
    return [];
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) return [];
  const base = 8 + n;
  const out = new Set<number>([base]);
  for (const [name, t] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const offs = (t as { data_offsets?: unknown } | null)?.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2) return [];
    const [b, e] = offs as unknown[];
    if (!Number.isSafeInteger(b) || !Number.isSafeInteger(e) || (b as number) < 0 || (e as number) < (b as number) || base + (e as number) > size) return [];
    out.add(base + (b as number));
    out.add(base + (e as number));
  }
  return [...out].filter((x) => x > 0 && x < size).sort((a, b) => a - b);
}

/** tensorBoundariesFromHeader for a file open at `fh` (reads only its header). */
export async function tensorBoundaries(fh: FileHandle, size: number): Promise<number[]> {
  if (size < 10) return [];
  const prefix = new Uint8Array(8);
  await fh.read(prefix, 0, 8, 0);
  const n = Number(new DataView(prefix.buffer).getBigUint64(0, true));
  if (n < 2 || n > MAX_HEADER || 8 + n > size) return [];
  const header = new Uint8Array(n);
  const { bytesRead } = await fh.read(header, 0, n, 8);
  return tensorBoundariesFromHeader(prefix, header.subarray(0, bytesRead), size);
}

/** tensorBoundariesFromHeader for in-memory content. */
export function tensorBoundariesOf(data: Uint8Array): number[] {
  if (data.length < 10) return [];
  const n = Number(new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true));
  if (n < 2 || n > MAX_HEADER || 8 + n > data.length) return [];
  return tensorBoundariesFromHeader(data.subarray(0, 8), data.subarray(8, 8 + n), data.length);
}
