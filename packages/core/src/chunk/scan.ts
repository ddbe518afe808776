import { open, type FileHandle } from 'node:fs/promises';
import { ConflictError } from '../errors.js';
import { hashImpl, loadHasher, type Hasher } from '../hash/blake3.js';
import { startReader } from '../hash/read-worker.js';
import { BackgroundFlush, ChunkSink, ForcedCuts } from './chunk-sink.js';
import { Chunker, type ChunkerParams } from './fastcdc.js';
import { tensorBoundaries, tensorBoundariesOf } from './boundaries.js';
import { consumeBlocks } from './scan-parallel.js';

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
  /**
   * Read buffer size in bytes (default 4 MiB, 1 MiB with `copyTo`, 128 KiB blocks
   * with `parallel`). Never changes the result.
   */
  bufferSize?: number;
  /**
   * Read and hash the whole file on a second thread while this one chunks, hashes the
   * chunks and hands the writes of `copyTo` to the thread pool. Default: for files of
   * PARALLEL_MIN bytes and more (at most two such scans at once; the rest use one thread).
   * Used only with the native hasher (a forced `CPV_HASH_IMPL=wasm` keeps one thread);
   * falls back to one thread when the second cannot start. Never changes the result.
   */
  parallel?: boolean;
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
/** Files from this size up are scanned on two threads by default (starting one costs about 0.1 s). */
export const PARALLEL_MIN = 32 * 1024 * 1024;
// Blocks of the two-thread scan: small enough to stay in the CPU caches between the
// read and the hash of each (1 MiB reads and writes cost several times the kernel
// time of 128 KiB ones here), and a 16 MiB ring so either thread can run ahead.
const PARALLEL_SLOT = 128 * 1024;
const PARALLEL_SLOTS = 128;
// The native hasher frees its buffers only when the event loop turns, so hashing
// many chunks yields at least this often.
const YIELD_EVERY = 4 * 1024 * 1024;

/**
 * Hash and chunk the file at `path` in one sequential read: its file oid, size and
 * chunk list. The result equals `scanBytes` over the same bytes and does not depend on
 * `bufferSize` nor on `parallel`. A file that is a single chunk gets chunk oid = file
 * oid. Read-only and idempotent for a file that does not change.
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
  const { params, signal, copyTo } = opts;
  if (opts.bufferSize !== undefined && (!Number.isSafeInteger(opts.bufferSize) || opts.bufferSize < 1)) {
    throw new RangeError(`bufferSize must be a positive integer, got ${opts.bufferSize}`);
  }
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
    // The reader thread starts first: it boots while the header is read.
    const slotSize = opts.bufferSize ?? PARALLEL_SLOT;
    const reader =
      (opts.parallel ?? before.size >= PARALLEL_MIN) && before.size > 0 && hashImpl() === 'native'
        ? startReader({ fd: fh.fd, size: before.size, slotSize, slots: PARALLEL_SLOTS })
        : undefined;
    let read: { hex: string; size: number } | undefined;
    const sink = new ChunkSink(newHasher());
    try {
      const cuts = new ForcedCuts(chunker, params.align === 'tensors' ? await tensorBoundaries(fh, before.size) : []);
      const parallel = reader !== undefined && (await reader.ready.then(() => true, () => false));
      if (parallel) {
        const flush = copyTo === undefined ? undefined : new BackgroundFlush(copyTo, COPY_SYNC_EVERY);
        try {
          const out = copyTo === undefined ? undefined : { fd: copyTo.fd, flush: flush! };
          const end = await consumeBlocks(reader, { slotSize, slots: PARALLEL_SLOTS, cuts, sink, signal, onProgress: opts.onProgress, out });
          if (end.kind === 'changed') throw changed();
          if (end.kind !== 'done') throw Object.assign(new Error(end.kind === 'error' ? end.error.message : 'the reader thread failed'), end.kind === 'error' ? end.error : {});
          read = end;
        } finally {
          await reader.stop();
          await flush?.settle();
        }
      } else {
        read = await readSerial(fh, before.size, newHasher(), cuts, sink, { ...opts, changed });
      }
    } finally {
      // Never close the handle while the reader thread may still use it.
      await reader?.stop();
    }
    // A byte past the expected end means the file grew while it was read.
    const probe = await fh.read(new Uint8Array(1), 0, 1, read.size);
    const after = await fh.stat();
    if (probe.bytesRead !== 0 || after.size !== before.size || after.mtimeMs !== before.mtimeMs) throw changed();
    return sink.result(read.hex, read.size, chunker.finish());
  } finally {
    await fh.close();
  }
}

/**
 * The one-thread loop of scanFile: read `size` bytes of `fh` into a ring of buffers,
 * hash the whole stream with `file`, chunk it into `sink`, and write it to `copyTo`.
 */
async function readSerial(
  fh: FileHandle,
  expected: number,
  file: Hasher,
  cuts: ForcedCuts,
  sink: ChunkSink,
  opts: ScanFileOptions & { changed: () => ConflictError },
): Promise<{ hex: string; size: number }> {
  const { signal, onProgress, copyTo, changed } = opts;
  const bufferSize = opts.bufferSize ?? (copyTo === undefined ? DEFAULT_BUFFER : COPY_BUFFER);
  // A ring of buffers: the next read fills one while the current one is hashed and
  // chunked (and, with copyTo, earlier ones are still being written).
  const len = Math.min(bufferSize, Math.max(expected, 1));
  const ring = copyTo === undefined ? 2 : COPY_BUFFERS;
  const bufs: Uint8Array[] = [new Uint8Array(len)];
  // Writes to `copyTo` still using each buffer: a buffer is read into again only
  // after its write has finished.
  const writes: Array<Promise<void> | undefined> = [];
  const flush = copyTo === undefined ? undefined : new BackgroundFlush(copyTo, COPY_SYNC_EVERY);
  let k = 0;
  let size = 0;
  let sinceYield = 0;
  let inFlight = expected > 0 ? fh.read(bufs[0]!, 0, len, 0) : undefined;
  try {
    while (inFlight !== undefined) {
      const { bytesRead } = await inFlight;
      inFlight = undefined;
      if (bytesRead === 0) throw changed(); // shrank
      const view = bufs[k]!.subarray(0, bytesRead);
      size += bytesRead;
      if (size > expected) throw changed(); // grew
      if (copyTo !== undefined) {
        const w = writeAll(copyTo, view, size - bytesRead);
        w.catch(() => undefined); // awaited below; this only marks it handled
        writes[k] = w;
        // A failure fails the scan: a later fsync through another descriptor may not report it.
        flush!.wrote(size, () => Promise.all(writes));
      }
      if (size < expected) {
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
    await flush?.settle().catch(() => undefined);
  }
  // Every write and flush has settled; a failed one must fail the scan.
  for (const w of writes) if (w !== undefined) await w;
  await flush?.settle();
  return { hex: file.digestHex(), size };
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
  const sink = new ChunkSink(newHasher());
  const cuts = new ForcedCuts(chunker, params.align === 'tensors' ? tensorBoundariesOf(data) : []);
  for (let off = 0; off < data.length; off += YIELD_EVERY) {
    if (off > 0) await yieldToLoop();
    const view = data.subarray(off, off + YIELD_EVERY);
    file.update(view);
    sink.take(view, cuts.push(view, off));
  }
  return sink.result(file.digestHex(), data.length, chunker.finish());
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
