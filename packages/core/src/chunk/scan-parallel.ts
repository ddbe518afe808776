import { writeSync } from 'node:fs';
import { claimsAt, CTL, NOBODY_WAITS, type Reader } from '../hash/read-worker.js';
import { BackgroundFlush, type ChunkSink, type ForcedCuts } from './chunk-sink.js';

/** What `consumeBlocks` needs besides the reader. */
export interface ConsumeOptions {
  slotSize: number;
  slots: number;
  cuts: ForcedCuts;
  sink: ChunkSink;
  signal?: AbortSignal;
  onProgress?: (bytesDelta: number) => void;
  /** The output the blocks are written to (the reader's `out`), and its background flush. */
  out?: { fd: number; flush: BackgroundFlush };
}

// Progress is reported in steps of at least this many bytes (blocks are small).
const PROGRESS_EVERY = 1024 * 1024;
// The native hasher frees its buffers only when the event loop turns (and callers'
// timers should run): yield at least this often.
const YIELD_EVERY = 4 * 1024 * 1024;

type WaitAsync = (a: Int32Array, index: number, value: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * The consuming side of a reader thread (hash/read-worker.ts): chunk every block and
 * hash the chunks on this thread while the reader hashes the whole file (and writes
 * the copy) on the other. Returns the reader's end message: `done` with the file hash
 * and the number of bytes read, `changed` if the file ended early, or `error`.
 * Throws the signal's reason when aborted; the caller stops the reader in any case.
 */
export async function consumeBlocks(reader: Reader, o: ConsumeOptions): Promise<Awaited<Reader['ended']>> {
  const ctl = reader.control;
  const ring = reader.ring;
  const claims = claimsAt(o.slots);
  let k = 0;
  let pos = 0;
  let unreported = 0;
  let sinceYield = 0;
  for (;;) {
    // In this order: an event after `tick` was read wakes the wait below; a reader
    // that is done has published its last block before DONE.
    const tick = Atomics.load(ctl, CTL.TICK);
    const done = Atomics.load(ctl, CTL.DONE) !== 0;
    const filled = Atomics.load(ctl, CTL.FILLED);
    if (k < filled) {
      o.signal?.throwIfAborted();
      const slot = k % o.slots;
      const n = Atomics.load(ctl, CTL.LENGTHS + slot);
      const view = ring.subarray(slot * o.slotSize, slot * o.slotSize + n);
      o.sink.take(view, o.cuts.push(view, pos));
      if (o.out !== undefined && Atomics.compareExchange(ctl, claims + slot, k - o.slots, k) === k - o.slots) {
        // Claimed before the reader got to it: this thread keeps up, so it writes.
        for (let off = 0; off < n; ) off += writeSync(o.out.fd, view, off, n - off, pos + off);
        Atomics.add(ctl, CTL.WRITTEN, 1);
      }
      // The sink may still refer to this block, no longer to the ones before it.
      Atomics.store(ctl, CTL.CONSUMED, k);
      if (k >= Atomics.load(ctl, CTL.READER_WANTS)) Atomics.notify(ctl, CTL.CONSUMED);
      k++;
      pos += n;
      o.out?.flush.wrote(Atomics.load(ctl, CTL.WRITTEN) * o.slotSize);
      unreported += n;
      if (unreported >= PROGRESS_EVERY) {
        o.onProgress?.(unreported);
        unreported = 0;
      }
      sinceYield += n;
      if (sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
      continue;
    }
    if (done) break;
    // Nothing to do: wait until half of the ring is filled (or the reader ends).
    const wants = k + Math.max(1, o.slots >> 1);
    Atomics.store(ctl, CTL.CONSUMER_WANTS, wants);
    if (Atomics.load(ctl, CTL.FILLED) < wants && Atomics.load(ctl, CTL.DONE) === 0) {
      const w = waitAsync(ctl, CTL.TICK, tick);
      if (w.async) await w.value;
    }
    Atomics.store(ctl, CTL.CONSUMER_WANTS, NOBODY_WAITS);
  }
  const end = await reader.ended;
  if (end.kind === 'done' && end.size !== pos) throw new Error(`reader thread reported ${end.size} bytes, ${pos} were consumed`);
  if (unreported > 0) o.onProgress?.(unreported);
  return end;
}
