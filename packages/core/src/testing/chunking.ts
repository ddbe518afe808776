import { Chunker, type ChunkerImpl, type ChunkerParams } from '../chunk/fastcdc.js';

/**
 * Chunk `data` pushed to a Chunker in pieces whose sizes come from `sizes()`: the chunk
 * lengths, and the gear loop implementation that produced them (`impl` forces one).
 */
export function chunkInPieces(data: Uint8Array, p: ChunkerParams, sizes: () => number, impl?: ChunkerImpl): { impl: ChunkerImpl; lengths: number[] } {
  const c = new Chunker(p, impl === undefined ? undefined : { impl });
  const lengths: number[] = [];
  for (let off = 0; off < data.length; ) {
    const n = Math.min(sizes(), data.length - off);
    lengths.push(...c.push(data.subarray(off, off + n)));
    off += n;
  }
  const last = c.finish();
  if (last > 0) lengths.push(last);
  return { impl: c.impl, lengths };
}
