import { open, type FileHandle } from 'node:fs/promises';
import { ConflictError } from '../errors.js';
import { loadHasher, type Hasher } from '../hash/blake3.js';
import { Chunker, type ChunkerParams } from './fastcdc.js';
import { tensorBoundaries, tensorBoundariesOf } from './boundaries.js';

/** A file's identity and chunk list (docs/format.md, "Identities" and "Chunking"). */
export interface ScanResult {
  /** File oid: `b3:` + BLAKE3 hex of the whole content. */
  oid: string;
  /** Bytes read; equals the sum of the chunk lengths. */
  size: number;
  /** `[chunk oid hex, length]` in file order; empty for an empty file. */
  chunks: Array<[string, number]>;
}

/** Options of scanFile. */
export interface ScanFileOptions {
  params: ChunkerParams;
  /** Aborting stops the scan at the next buffer and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called after each buffer with the number of bytes it added. */
  onProgress?: (bytesDelta: number) => void;
  /** Read buffer size in bytes (default 4 MiB). Never changes the result. */
  bufferSize?: number;
  /**
   * Also write every byte read to this handle, at the same offset, in the same pass:
   * the result then describes exactly the bytes written (it hashes the buffers it
   * writes). Flushes to disk start in the background as it goes, but the caller must
   * still sync the handle for durability; it is not closed. On a throw its content is
   * undefined.
   */
  copyTo?: FileHandle;
}

const DEFAULT_BUFFER = 4 * 1024 * 1024;
// With `copyTo`: smaller buffers (a read and a write of 4 MiB each cost several times
// the kernel time of 1 MiB ones here, as they no longer fit the CPU caches) and more
// of them, so reads and writes run ahead while the bytes before them are hashed.
const COPY_BUFFER = 1024 * 1024;
const COPY_BUFFERS = 4;
// With `copyTo`: start a flush to disk after this many bytes are written, so the disk
// writes while the next bytes are hashed and the caller's final fsync has little
// left to do (the kernel alone would start only when a tenth of memory is dirty).
const COPY_SYNC_EVERY = 64 * 1024 * 1024;
// The native hasher frees its buffers only when the event loop turns, so hashing
// many chunks yields at least this often.
const YIELD_EVERY = 4 * 1024 * 1024;

/**
 * Hash and chunk the file at `path` in one sequential read: its file oid, size and
 * chunk list. The result equals `scanBytes` over the same bytes and does not depend on
 * `bufferSize`. A file that is a single chunk gets chunk oid = file oid. Read-only and
 * idempotent for a file that does not change.
 *
 * With `copyTo`, the bytes are written there as they are read (see ScanFileOptions).
 *
 * Throws ConflictError if the file's size or mtime changes while it is read (so the
 * result never describes bytes that were never on disk as a whole); the signal's
 * reason if `signal` aborts; file-system errors (ENOENT, EISDIR, EACCES, ...) as
 * Node raises them; ConfigError for invalid `params`; RangeError for a bad
 * `bufferSize`.
 */
export async function scanFile(path: string, opts: ScanFileOptions): Promise<ScanResult> {
  const { params, signal, onProgress, copyTo } = opts;
  const bufferSize = opts.bufferSize ?? (copyTo === undefined ? DEFAULT_BUFFER : COPY_BUFFER);
  if (!Number.isSafeInteger(bufferSize) || bufferSize < 1) throw new RangeError(`bufferSize must be a positive integer, got ${bufferSize}`);
  signal?.throwIfAborted();
  const chunker = new Chunker(params);
  const newHasher = await loadHasher();
  const fh = await open(path, 'r');
  try {
    const before = await fh.stat();
    const changed = (): ConflictError =>
      new ConflictError(`${path} changed while it was being read`, {
        hint: 'the file changed while it was being read; run the command again when it is stable',
        data: { path },
      });
    const file = newHasher();
    const sink = new ChunkSink(newHasher);
    const cuts = new ForcedCuts(chunker, params.align === 'tensors' ? await tensorBoundaries(fh, before.size) : []);
    // A ring of buffers: the next read fills one while the current one is hashed and
    // chunked (and, with copyTo, earlier ones are still being written).
    const len = Math.min(bufferSize, Math.max(before.size, 1));
    const ring = copyTo === undefined ? 2 : COPY_BUFFERS;
    const bufs: Uint8Array[] = [new Uint8Array(len)];
    // Writes to `copyTo` still using each buffer: a buffer is read into again only
    // after its write has finished.
    const writes: Array<Promise<void> | undefined> = [];
    // The background flush of `copyTo` (at most one at a time; it never rejects, its
    // first failure is kept) and the bytes written since the last one started.
    let flush: Promise<void> | undefined;
    let flushing = false;
    let flushError: unknown;
    let unflushed = 0;
    let k = 0;
    let size = 0;
    let sinceYield = 0;
    let inFlight = before.size > 0 ? fh.read(bufs[0]!, 0, len, 0) : undefined;
    try {
      while (inFlight !== undefined) {
        const { bytesRead } = await inFlight;
        inFlight = undefined;
        if (bytesRead === 0) throw changed(); // shrank
        const view = bufs[k]!.subarray(0, bytesRead);
        size += bytesRead;
        if (size > before.size) throw changed(); // grew
        if (copyTo !== undefined) {
          const w = writeAll(copyTo, view, size - bytesRead);
          w.catch(() => undefined); // awaited below; this only marks it handled
          writes[k] = w;
          unflushed += bytesRead;
          if (unflushed >= COPY_SYNC_EVERY && !flushing) {
            // A failure fails the scan: a later fsync through another descriptor may not
            // report it.
            unflushed = 0;
            flushing = true;
            const out = copyTo;
            flush = Promise.all(writes)
              .then(() => out.datasync())
              .then(
                () => void (flushing = false),
                (err: unknown) => void ((flushError ??= err), (flushing = false)),
              );
          }
        }
        if (size < before.size) {
          signal?.throwIfAborted();
          // A buffer may still hold the start of the current chunk: hash it before the
          // ring comes round to overwrite it.
          sink.flush();
          k = (k + 1) % ring;
          const next = (bufs[k] ??= new Uint8Array(len));
          const pending = writes[k];
          writes[k] = undefined;
          if (pending !== undefined) await pending;
          inFlight = fh.read(next, 0, len, size);
        }
        file.update(view);
        sink.take(view, cuts.push(view, size - bytesRead));
        onProgress?.(bytesRead);
        sinceYield += bytesRead;
        if (sinceYield >= YIELD_EVERY) {
          sinceYield = 0;
          await yieldToLoop();
        }
      }
    } finally {
      // Never return (or close the handle) while a read still writes into a buffer
      // or a write still reads from one.
      await inFlight?.catch(() => undefined);
      await Promise.all(writes.map((w) => w?.catch(() => undefined)));
      await flush;
    }
    // Every write and flush has settled; a failed one must fail the scan.
    for (const w of writes) if (w !== undefined) await w;
    if (flushError !== undefined) throw flushError;
    // A byte past the expected end means the file grew while it was read.
    const probe = await fh.read(new Uint8Array(1), 0, 1, size);
    const after = await fh.stat();
    if (probe.bytesRead !== 0 || after.size !== before.size || after.mtimeMs !== before.mtimeMs) throw changed();
    return sink.result(file.digestHex(), size, chunker.finish());
  } finally {
    await fh.close();
  }
}

/**
 * Hash and chunk in-memory bytes: the same ScanResult `scanFile` gives for a file
 * with this content. Yields to the event loop every few MiB. Throws ConfigError for
 * invalid `params`.
 */
export async function scanBytes(data: Uint8Array, params: ChunkerParams): Promise<ScanResult> {
  const chunker = new Chunker(params);
  const newHasher = await loadHasher();
  const file = newHasher();
  const sink = new ChunkSink(newHasher);
  const cuts = new ForcedCuts(chunker, params.align === 'tensors' ? tensorBoundariesOf(data) : []);
  for (let off = 0; off < data.length; off += YIELD_EVERY) {
    if (off > 0) await yieldToLoop();
    const view = data.subarray(off, off + YIELD_EVERY);
    file.update(view);
    sink.take(view, cuts.push(view, off));
  }
  return sink.result(file.digestHex(), data.length, chunker.finish());
}

/**
 * Turns a stream of buffers plus the chunker's cut lengths into chunk oids. A chunk
 * may span buffers: its hasher receives each part as it goes. The bytes after a
 * buffer's last cut are hashed lazily (at `flush`, or at the next `take`), so a file
 * that is one chunk read in one buffer is hashed only once: its chunk oid is its
 * file oid.
 */
class ChunkSink {
  readonly #newHasher: () => Hasher;
  readonly #chunks: Array<[string, number]> = [];
  /** Hasher of the current chunk; null until some of its bytes are fed to it. */
  #hasher: Hasher | null = null;
  /** Bytes of the current chunk already fed to #hasher. */
  #fed = 0;
  /** Bytes of the current chunk not yet fed (a view into the last buffer). */
  #tail: Uint8Array | null = null;

  constructor(newHasher: () => Hasher) {
    this.#newHasher = newHasher;
  }

  /** Account for the next buffer `view`, in which chunks of these `lengths` ended. */
  take(view: Uint8Array, lengths: number[]): void {
    this.flush();
    let off = 0;
    for (const len of lengths) {
      // A chunk that began in earlier buffers counts those bytes in `len` too.
      const part = view.subarray(off, off + len - this.#fed);
      const h = this.#hasher ?? this.#newHasher();
      h.update(part);
      this.#chunks.push([h.digestHex(), len]);
      this.#hasher = null;
      this.#fed = 0;
      off += part.length;
    }
    this.#tail = off < view.length ? view.subarray(off) : null;
  }

  /** Feed the pending bytes now: the buffer they live in is about to be reused. */
  flush(): void {
    if (this.#tail === null) return;
    this.#hasher ??= this.#newHasher();
    this.#hasher.update(this.#tail);
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
        this.#chunks.push([this.#hasher!.digestHex(), last]);
        this.#hasher = null;
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
class ForcedCuts {
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
}

/** Write all of `data` at `position` (a single write may be short). */
async function writeAll(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, position + off);
    off += bytesWritten;
  }
}

function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
