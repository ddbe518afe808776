import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { BLAKE3_KAT } from './blake3.js';

/**
 * A second thread that reads a file into a ring of shared buffers and hashes the whole
 * stream with the native BLAKE3 (the file oid), while the caller's thread consumes the
 * same blocks (chunks them, hashes the chunks, writes a copy). Each byte is read once;
 * the file hash costs the caller's thread nothing.
 *
 * Protocol (all counters in `control`, an Int32Array over a SharedArrayBuffer):
 * - The reader fills block k into slot k % slots, stores its length in
 *   `control[LENGTHS + slot]`, then publishes it by storing FILLED = k + 1; then it
 *   hashes the block.
 * - Either side that must wait says how far the other must get first (READER_WANTS: a
 *   value of CONSUMED; CONSUMER_WANTS: a value of FILLED), checks again, then waits;
 *   the other side wakes it only once that is reached (or at the end), so the threads
 *   wake each other once per half ring, not for every block.
 * - The consumer waits on TICK: the reader adds 1 to it and notifies when FILLED
 *   reaches CONSUMER_WANTS, when it ends and when it fails. The reader waits on CONSUMED.
 * - STOP = 1 (with CONSUMED set past any block) makes the reader stop at the next block.
 * - At the end the reader stores DONE = 1 (after its last FILLED) and posts one
 *   message: `{ hex, size }`, `{ changed: true }` when the file ended before the
 *   expected size, or `{ error }`; then it exits.
 */

/** Slots of the control array. */
export const CTL = Object.freeze({ FILLED: 0, CONSUMED: 1, TICK: 3, STOP: 4, DONE: 5, READER_WANTS: 6, CONSUMER_WANTS: 7, LENGTHS: 8 });

/** A `*_WANTS` value that is never reached: nobody waits. */
export const NOBODY_WAITS = 0x7fffffff;

/** What the reader posts when it ends. */
export type ReaderEnd =
  | { kind: 'ready' }
  | { kind: 'done'; hex: string; size: number }
  | { kind: 'changed' }
  | { kind: 'error'; error: { message: string; code?: string; errno?: number; syscall?: string; path?: string } };

/** Everything the reader thread needs, passed as its workerData. */
export interface ReaderData {
  binding: string;
  kat: { len: number; hex: string };
  ring: SharedArrayBuffer;
  control: SharedArrayBuffer;
  slotSize: number;
  slots: number;
  /** Descriptor to read from (open in this process) and the number of bytes to read. */
  fd: number;
  size: number;
}

/**
 * The reader thread's program. It runs in a Worker from its source text, so it must
 * not reference anything outside itself: it gets `require` and the worker_threads
 * module as arguments. Synchronous throughout (no event loop turns are needed: one
 * native hasher is updated in place, nothing is allocated per block).
 */
function readerMain(require: NodeJS.Require, wt: typeof import('node:worker_threads')): void {
  const d = wt.workerData as ReaderData;
  const port = wt.parentPort!;
  const fs = require('node:fs') as typeof import('node:fs');
  const ctl = new Int32Array(d.control);
  const FILLED = 0, CONSUMED = 1, TICK = 3, STOP = 4, DONE = 5, READER_WANTS = 6, CONSUMER_WANTS = 7, LENGTHS = 8;
  const NOBODY_WAITS = 0x7fffffff;
  const event = (): void => {
    Atomics.add(ctl, TICK, 1);
    Atomics.notify(ctl, TICK);
  };
  const end = (msg: ReaderEnd): void => {
    Atomics.store(ctl, DONE, 1);
    port.postMessage(msg);
    event();
  };
  let h: import('@napi-rs/blake-hash').Blake3Hasher;
  try {
    const { Blake3Hasher } = require(d.binding) as typeof import('@napi-rs/blake-hash');
    const kat = new Uint8Array(d.kat.len);
    for (let i = 0; i < kat.length; i++) kat[i] = i % 251;
    h = new Blake3Hasher();
    h.update(kat);
    if (h.digest('hex') !== d.kat.hex) throw new Error('native BLAKE3 failed its known-answer test in a worker');
    h.reset();
  } catch (err) {
    end({ kind: 'error', error: { message: String((err as Error).message ?? err) } });
    return;
  }
  port.postMessage({ kind: 'ready' } satisfies ReaderEnd);
  const ring = new Uint8Array(d.ring);
  try {
    let pos = 0;
    let k = 0;
    while (pos < d.size) {
      // Wait until the block that last used this slot is consumed; when the ring is
      // full, until half of it is free.
      const need = k - d.slots + 1;
      for (;;) {
        if (Atomics.load(ctl, STOP) !== 0) return end({ kind: 'error', error: { message: 'stopped' } });
        if (Atomics.load(ctl, CONSUMED) >= need) break;
        const wants = need + (d.slots >> 1) - 1;
        Atomics.store(ctl, READER_WANTS, wants);
        const consumed = Atomics.load(ctl, CONSUMED);
        if (consumed < wants) Atomics.wait(ctl, CONSUMED, consumed);
        Atomics.store(ctl, READER_WANTS, NOBODY_WAITS);
      }
      const slot = k % d.slots;
      const view = ring.subarray(slot * d.slotSize, slot * d.slotSize + Math.min(d.slotSize, d.size - pos));
      const n = fs.readSync(d.fd, view, 0, view.length, pos);
      if (n === 0) return end({ kind: 'changed' }); // the file shrank
      const block = view.subarray(0, n);
      Atomics.store(ctl, LENGTHS + slot, n);
      Atomics.store(ctl, FILLED, k + 1);
      if (k + 1 >= Atomics.load(ctl, CONSUMER_WANTS)) event();
      h.update(block);
      pos += n;
      k++;
    }
    end({ kind: 'done', hex: h.digest('hex'), size: pos });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    end({ kind: 'error', error: { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path } });
  }
}

/** A running reader thread (see the protocol above). */
export interface Reader {
  readonly ring: Uint8Array;
  readonly control: Int32Array;
  /** Resolves once the thread runs and its hasher passed the known-answer test; rejects if it cannot. */
  readonly ready: Promise<void>;
  /** The thread's last message: the file hash, a change, or a failure. Never rejects. */
  readonly ended: Promise<ReaderEnd>;
  /** Ask the thread to stop and resolve when it has exited (no read or write is running then). */
  stop(): Promise<void>;
}

let bindingPath: string | null | undefined;
// Reader threads alive at once (each holds its ring and a V8 isolate, about 25 MiB):
// a directory of large files added with many jobs gets two, the others scan on one thread.
const MAX_READERS = 2;
let readers = 0;

/** The native BLAKE3 binding's entry file, or null if it cannot be resolved here. */
function nativeBinding(): string | null {
  if (bindingPath === undefined) {
    try {
      bindingPath = createRequire(import.meta.url).resolve('@napi-rs/blake-hash');
    } catch {
      bindingPath = null;
    }
  }
  return bindingPath;
}

/**
 * Start a reader thread over `fd` (`size` bytes from offset 0). Returns undefined when no thread can be started here (no native binding
 * found, worker threads unavailable, or MAX_READERS already running); `ready` rejects
 * when the thread starts but cannot hash. The caller must `stop()` the reader before it closes the descriptor.
 */
export function startReader(opts: { fd: number; size: number; slotSize: number; slots: number }): Reader | undefined {
  const binding = nativeBinding();
  if (binding === null || readers >= MAX_READERS) return undefined;
  const ring = new SharedArrayBuffer(opts.slotSize * opts.slots);
  const control = new SharedArrayBuffer(4 * (CTL.LENGTHS + opts.slots));
  // Initialised before the thread starts: it reads these from its first block on.
  const ctl = new Int32Array(control);
  ctl[CTL.READER_WANTS] = NOBODY_WAITS;
  ctl[CTL.CONSUMER_WANTS] = NOBODY_WAITS;
  const data: ReaderData = { binding, kat: { ...BLAKE3_KAT }, ring, control, slotSize: opts.slotSize, slots: opts.slots, fd: opts.fd, size: opts.size };
  let worker: Worker;
  try {
    worker = new Worker(`(${readerMain.toString()})(require, require('node:worker_threads'))`, { eval: true, workerData: data });
  } catch {
    return undefined;
  }
  readers++;
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', () => {
      readers--;
      resolve();
    }),
  );
  let onReady!: () => void;
  let onFail!: (err: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  ready.catch(() => undefined); // awaited by the caller; this only marks it handled
  const ended = new Promise<ReaderEnd>((resolve) => {
    worker.on('message', (m: ReaderEnd) => {
      if (m.kind === 'ready') return onReady();
      if (m.kind === 'error') onFail(new Error(m.error.message));
      resolve(m);
    });
    worker.once('error', (err) => {
      onFail(err);
      resolve({ kind: 'error', error: { message: err.message } });
    });
    worker.once('exit', () => {
      onFail(new Error('the reader thread exited before it was ready'));
      resolve({ kind: 'error', error: { message: 'the reader thread exited early' } });
    });
  });
  return {
    ring: new Uint8Array(ring),
    control: ctl,
    ready,
    ended,
    async stop() {
      Atomics.store(ctl, CTL.STOP, 1);
      // A change of value wakes a reader waiting for a free slot, whenever it looks.
      Atomics.store(ctl, CTL.CONSUMED, 0x3fffffff);
      Atomics.notify(ctl, CTL.CONSUMED);
      await exited;
    },
  };
}
