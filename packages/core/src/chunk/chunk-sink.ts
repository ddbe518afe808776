import type { Hasher } from '../hash/blake3.js';
import type { Chunker } from './fastcdc.js';
import type { ScanResult } from './scan.js';

/**
 * Turns a stream of buffers plus the chunker's cut lengths into chunk oids. A chunk
 * may span buffers: its hasher receives each part as it goes. The bytes after a
 * buffer's last cut are hashed lazily (at `flush`, or at the next `take`), so a file
 * that is one chunk read in one buffer is hashed only once: its chunk oid is its
 * file oid. One hasher serves every chunk (reset after each digest).
 */
export class ChunkSink {
  readonly #h: Hasher;
  readonly #chunks: Array<[string, number]> = [];
  /** Bytes of the current chunk already fed to #h. */
  #fed = 0;
  /** Bytes of the current chunk not yet fed (a view into the last buffer). */
  #tail: Uint8Array | null = null;

  constructor(hasher: Hasher) {
    this.#h = hasher;
  }

  /**
   * Account for the next buffer `view`, in which chunks of these `lengths` ended.
   * Afterwards only `view` may still be referenced (until the next `take` or `flush`).
   */
  take(view: Uint8Array, lengths: number[]): void {
    this.flush();
    const h = this.#h;
    let off = 0;
    for (const len of lengths) {
      // A chunk that began in earlier buffers counts those bytes in `len` too.
      const part = view.subarray(off, off + len - this.#fed);
      h.update(part);
      this.#chunks.push([h.digestHex(), len]);
      h.reset();
      this.#fed = 0;
      off += part.length;
    }
    this.#tail = off < view.length ? view.subarray(off) : null;
  }

  /** Feed the pending bytes now: the buffer they live in is about to be reused. */
  flush(): void {
    if (this.#tail === null) return;
    this.#h.update(this.#tail);
    this.#fed += this.#tail.length;
    this.#tail = null;
  }

  /** The result, given the file digest, total size and the chunker's final length. */
  result(fileHex: string, size: number, last: number): ScanResult {
    if (last > 0) {
      if (this.#chunks.length === 0) {
        // The whole input is one chunk: same bytes, same digest.
        this.#chunks.push([fileHex, size]);
      } else {
        this.flush();
        this.#chunks.push([this.#h.digestHex(), last]);
        this.#h.reset();
      }
    }
    return { oid: `b3:${fileHex}`, size, chunks: this.#chunks };
  }
}

/**
 * Content-defined cuts plus forced cuts at given file offsets (tensor boundaries): at
 * each boundary the current chunk ends and the chunker restarts, so no chunk spans
 * one. Boundaries are absolute offsets, strictly increasing, inside (0, size).
 */
export class ForcedCuts {
  #next = 0;
  constructor(
    private readonly chunker: Chunker,
    private readonly boundaries: readonly number[],
  ) {}

  /** Cut lengths for `view`, which starts at file offset `start`. */
  push(view: Uint8Array, start: number): number[] {
    const b = this.boundaries;
    if (this.#next >= b.length || b[this.#next]! >= start + view.length) return this.chunker.push(view);
    const out: number[] = [];
    let at = 0;
    while (this.#next < b.length && b[this.#next]! < start + view.length) {
      const cut = b[this.#next++]! - start;
      if (cut > at) out.push(...this.chunker.push(view.subarray(at, cut)));
      const last = this.chunker.finish();
      if (last > 0) out.push(last);
      at = Math.max(at, cut);
    }
    out.push(...this.chunker.push(view.subarray(at)));
    return out;
  }

  /** The length of the final chunk (0 if none is pending); see Chunker.finish. */
  finish(): number {
    return this.chunker.finish();
  }
}

/**
 * Flushes a file being written to disk in the background every `every` bytes, so the
 * disk writes while the next bytes are processed and the final fsync has little left
 * to do (the kernel alone starts only when a tenth of memory is dirty). At most one
 * flush runs at a time; the first failure is kept and thrown by `settle`.
 */
export class BackgroundFlush {
  #running: Promise<void> | undefined;
  #busy = false;
  #error: unknown;
  #flushedAt = 0;

  constructor(
    private readonly out: { datasync(): Promise<void> },
    private readonly every: number,
  ) {}

  /**
   * Note that `written` bytes are now written (every write up to there has completed,
   * or the promise `before()` returns resolves when they have); start a flush if due.
   */
  wrote(written: number, before?: () => Promise<unknown>): void {
    if (written - this.#flushedAt < this.every || this.#busy) return;
    this.#flushedAt = written;
    this.#busy = true;
    const out = this.out;
    this.#running = Promise.resolve(before?.())
      .then(() => out.datasync())
      .then(
        () => void (this.#busy = false),
        (err: unknown) => void ((this.#error ??= err), (this.#busy = false)),
      );
  }

  /** Wait for a running flush; throw the first failure of any (a later fsync through another descriptor may not report it). */
  async settle(): Promise<void> {
    await this.#running;
    if (this.#error !== undefined) throw this.#error;
  }
}
