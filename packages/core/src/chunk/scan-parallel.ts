import { write } from 'node:fs';
import { CTL, NOBODY_WAITS, type Reader } from '../hash/read-worker.js';
import { BackgroundFlush, type ChunkSink, type ForcedCuts } from './chunk-sink.js';

/** What `consumeBlocks` needs besides the reader. */
export interface ConsumeOptions {
  slotSize: number;
  slots: number;
  cuts: ForcedCuts;
  sink: ChunkSink;
  signal?: AbortSignal;
  onProgress?: (bytesDelta: number) => void;
  /**
   * Where to write every block (the reader must not have an output then), and its
   * background flush. Writes go through the thread pool: a write that the kernel
   * throttles (dirty-page limits) blocks a pool thread, never this one or the reader.
   */
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
  const writes = o.out === undefined ? undefined : new BlockWrites(o.out, o.slots, () => release());
  let k = 0;
  let pos = 0;
  let unreported = 0;
  let sinceYield = 0;
  // Blocks below `taken` are no longer referenced by the sink; blocks below the
  // writes' `done` are on their way to disk. A block is free for the reader when both.
  let taken = 0;
  const release = (): void => {
    const free = writes === undefined ? taken : Math.min(taken, writes.done);
    if (free <= Atomics.load(ctl, CTL.CONSUMED)) return;
    Atomics.store(ctl, CTL.CONSUMED, free);
    if (free >= Atomics.load(ctl, CTL.READER_WANTS)) Atomics.notify(ctl, CTL.CONSUMED);
  };
  try {
    for (;;) {
      // In this order: an event after `tick` was read wakes the wait below; a reader
      // that is done has published its last block before DONE.
      const tick = Atomics.load(ctl, CTL.TICK);
      const done = Atomics.load(ctl, CTL.DONE) !== 0;
      const filled = Atomics.load(ctl, CTL.FILLED);
      if (k < filled) {
        o.signal?.throwIfAborted();
        writes?.throwIfFailed();
        const slot = k % o.slots;
        const n = Atomics.load(ctl, CTL.LENGTHS + slot);
        const view = ring.subarray(slot * o.slotSize, slot * o.slotSize + n);
        writes?.start(k, view, pos);
        o.sink.take(view, o.cuts.push(view, pos));
        // The sink may still refer to this block, no longer to the ones before it.
        taken = k;
        release();
        k++;
        pos += n;
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
  } finally {
    // No write may still read from the ring once this returns.
    await writes?.drain();
  }
  writes?.throwIfFailed();
  const end = await reader.ended;
  if (end.kind === 'done' && end.size !== pos) throw new Error(`reader thread reported ${end.size} bytes, ${pos} were consumed`);
  if (unreported > 0) o.onProgress?.(unreported);
  return end;
}

/**
 * The writes of the blocks of a ring to `out`, through the thread pool, in any order
 * of completion. `done` is the number of leading blocks whose writes have completed;
 * `onDone(done)` is called whenever it grows, and the background flush told.
 */
class BlockWrites {
  /** Block number whose write completed last, per slot (-1: none yet). */
  readonly #completed: Int32Array;
  /** File offset just past each slot's block. */
  readonly #ends: number[];
  done = 0;
  #inflight = 0;
  #error: unknown;
  #drained: (() => void) | undefined;

  constructor(
    private readonly out: { fd: number; flush: BackgroundFlush },
    private readonly slots: number,
    private readonly onDone: (done: number) => void,
  ) {
    this.#completed = new Int32Array(slots).fill(-1);
    this.#ends = new Array<number>(slots).fill(0);
  }

  /** Write block `k` (bytes `view`, at file offset `pos`). */
  start(k: number, view: Uint8Array, pos: number): void {
    const slot = k % this.slots;
    this.#ends[slot] = pos + view.length;
    this.#inflight++;
    const next = (off: number): void =>
      write(this.out.fd, view, off, view.length - off, pos + off, (err, n) => {
        if (err === null && off + n < view.length) return next(off + n);
        this.#inflight--;
        if (err !== null) this.#error ??= err;
        else this.#complete(k);
        if (this.#inflight === 0) this.#drained?.();
      });
    next(0);
  }

  #complete(k: number): void {
    this.#completed[k % this.slots] = k;
    const before = this.done;
    while (this.#completed[this.done % this.slots] === this.done) this.done++;
    if (this.done === before) return;
    this.out.flush.wrote(this.#ends[(this.done - 1) % this.slots]!);
    this.onDone(this.done);
  }

  /** Throw the first failed write's error, if any. */
  throwIfFailed(): void {
    if (this.#error !== undefined) throw this.#error;
  }

  /** Resolve once no write is running. Never rejects. */
  drain(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#drained = resolve));
  }
}
