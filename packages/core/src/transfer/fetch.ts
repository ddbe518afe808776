import { open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError } from '../errors.js';
import { blake3Hex, loadHasher, type Hasher } from '../hash/blake3.js';
import type { Cache } from '../store/cache.js';
import { parseLocalManifest, type ChunkRef, type RemoteManifest } from '../store/manifest.js';
import type { ChunkerParams } from '../chunk/fastcdc.js';
import { selectEntries, type TreeEntry } from '../store/tree.js';
import { remoteKeys, type ChunkLocation, type Remote } from '../remote/remote.js';
import { oidHex, shortOid, toFileOid } from '../util/oid.js';
import type { ProgressEvent, TransferItem } from './types.js';
import { TaskGroup } from '../util/task-group.js';
import { walkFanout } from '../util/fanout-walk.js';

/** What a fetch did, or would do with `dryRun`. */
export interface FetchResult {
  /** Items already complete in the cache. */
  upToDate: number;
  /** Files downloaded into the cache (including files inside directories). */
  files: number;
  /** Chunk bytes downloaded. */
  bytes: number;
  /** Chunk bytes reused from files already in the cache. */
  reusedBytes: number;
  /** Ranged requests made. */
  requests: number;
}

export interface FetchOptions {
  jobs: number;
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /** Largest gap between two wanted ranges of a pack that is read through rather than split. */
  coalesceGap?: number;
  /** Largest single ranged request (default 4 MiB: jobs × maxRequest bounds the bodies in memory). */
  maxRequest?: number;
  /** Written-but-not-yet-hashed bytes kept in memory over all files (default 16 MiB; tests set 0). */
  holdBudget?: number;
}

const MiB = 1024 * 1024;
/**
 * Bytes already written but not yet hashed that are kept in memory, over all files.
 * Past it, out-of-order runs are read back from the temp file when the hash reaches them.
 */
const HOLD_BUDGET = 16 * MiB;

/** A chunk to place at `offset` of file job `job`. */
interface Placement {
  job: FileJob;
  offset: number;
}

interface FileJob {
  oid: string;
  size: number;
  path: string;
  remaining: number;
  tmp?: string;
  /** Opened on the first chunk; a promise so concurrent first chunks share one handle. */
  fh?: Promise<FileHandle>;
  /** Single-chunk files are written whole when their chunk arrives. */
  single: boolean;
  /** Chunk list to record in the cache once the file is verified (multi-chunk files). */
  manifest?: { chunker: ChunkerParams; chunks: ChunkRef[] };
  /**
   * The file hash, fed the written runs in file order: `hashed` bytes so far. Runs
   * written ahead of it wait in `held` (bytes) or `dropped` (length only, read back).
   */
  hasher?: Hasher;
  hashed: number;
  held: Map<number, Uint8Array>;
  dropped: Map<number, number>;
  /** Serializes the hashing of this file's runs. */
  hashing: Promise<void>;
}

/** Consecutive placements of one file whose bytes are consecutive in one buffer. */
interface Run {
  job: FileJob;
  offset: number;
  start: number;
  end: number;
  count: number;
}

interface Want {
  chunk: string;
  length: number;
  pack: string;
  offset: number;
  places: Placement[];
}

/**
 * Bring `items` from `remote` into the local cache. Only files missing from the cache
 * move; chunks already present in cached files (earlier versions) are copied locally
 * instead of downloaded. Every chunk is hashed as it arrives, and every file is hashed
 * whole (over exactly the bytes written to it, in file order, as it is assembled)
 * before it gets its final name in the cache, so a corrupt or
 * malicious remote yields IntegrityError, never a wrong object. Idempotent; an
 * interrupted fetch leaves only temp files.
 */
export async function fetchObjects(cache: Cache, remote: Remote, items: readonly TransferItem[], opts: FetchOptions): Promise<FetchResult> {
  const result: FetchResult = { upToDate: 0, files: 0, bytes: 0, reusedBytes: 0, requests: 0 };
  const jobs = new Map<string, FileJob>();
  const wants = new Map<string, Want>();
  const local = new Map<string, { file: string; offset: number }>();

  const addFile = async (oid: string, size: number, path: string, single?: { pack: string; offset: number }): Promise<void> => {
    if (jobs.has(oid) || (await cache.hasFile(oid))) return;
    if (size === 0) {
      // Nothing to download, so nothing would verify the oid: only the empty file has size 0.
      if (oid !== (await emptyFileOid())) {
        throw new IntegrityError(`${path} is recorded with size 0, but ${shortOid(oid)} is not the oid of an empty file`, {
          hint: 'the pointer or the tree that lists the file is damaged: restore it from git and run the command again',
          data: { oid, path },
        });
      }
      if (!opts.dryRun) await cache.ensureEmptyFile(oid);
      return;
    }
    let chunks: Array<{ chunk: string; length: number; pack: string; offset: number }>;
    let m: RemoteManifest | undefined;
    if (single) {
      chunks = [{ chunk: oidHex(oid), length: size, pack: single.pack, offset: single.offset }];
    } else {
      const rm = await remote.loadManifest(oid, opts.signal);
      if (rm.size !== size) throw new IntegrityError(`remote manifest of ${path} says ${rm.size} bytes, the pointer says ${size}`, { data: { oid, path } });
      chunks = rm.chunks.map(([chunk, length, p, offset]) => ({ chunk, length, pack: rm.packs[p]!, offset }));
      m = rm;
    }
    // A one-chunk file is written straight from its verified chunk only when the chunk
    // oid is the file oid (same bytes, same hash); anything else is assembled and the
    // whole file rehashed, so a hostile manifest cannot put other bytes under this oid.
    const job: FileJob = {
      oid,
      size,
      path,
      remaining: chunks.length,
      single: chunks.length === 1 && chunks[0]!.chunk === oidHex(oid),
      hashed: 0,
      held: new Map(),
      dropped: new Map(),
      hashing: Promise.resolve(),
    };
    if (m && chunks.length > 1) job.manifest = { chunker: m!.chunker, chunks: chunks.map((c): [string, number] => [c.chunk, c.length]) };
    jobs.set(oid, job);
    let at = 0;
    for (const c of chunks) {
      const w = wants.get(c.chunk) ?? { chunk: c.chunk, length: c.length, pack: c.pack, offset: c.offset, places: [] };
      w.places.push({ job, offset: at });
      wants.set(c.chunk, w);
      at += c.length;
    }
  };

  for (const item of items) {
    opts.signal?.throwIfAborted();
    if (item.type === 'file') {
      if (await cache.hasFile(item.oid)) result.upToDate++;
      else await addFile(item.oid, item.size, item.path);
      continue;
    }
    let entries: TreeEntry[];
    let locations: Array<{ pack: string; offset: number } | undefined>;
    if (await cache.hasTree(item.oid)) {
      entries = await cache.readTree(item.oid);
      locations = [];
    } else {
      const t = await remote.loadTree(item.oid, opts.signal);
      entries = t.entries;
      locations = t.index.entries.map((l) => (l ? { pack: t.index.packs[l[0]]!, offset: l[1] } : undefined));
      if (!opts.dryRun) await cache.writeTreeText(item.oid, t.index.tree);
    }
    const before = jobs.size;
    const selected = selectEntries(entries, item.only, item.path);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (!selected.has(e.path)) continue;
      if (await cache.hasFile(e.oid)) continue;
      let loc = locations[i];
      if (loc === undefined && e.size > 0 && locations.length === 0) {
        // Tree came from the cache: locations live in the remote tree index.
        const t = await remote.loadTree(item.oid, opts.signal);
        locations = t.index.entries.map((l) => (l ? { pack: t.index.packs[l[0]]!, offset: l[1] } : undefined));
        loc = locations[i];
      }
      await addFile(e.oid, e.size, `${item.path}/${e.path}`, loc);
    }
    if (jobs.size === before) result.upToDate++;
  }

  // Chunks present locally (in earlier versions) are copied, not downloaded.
  if (wants.size > 0) await localChunkIndex(cache, local);
  const remoteWants: Want[] = [];
  for (const w of wants.values()) {
    if (local.has(w.chunk)) result.reusedBytes += w.length;
    else {
      remoteWants.push(w);
      result.bytes += w.length;
    }
  }
  result.files = jobs.size;
  const maxRequest = opts.maxRequest ?? 4 * MiB;
  const requests = coalesce(remoteWants, opts.coalesceGap ?? 256 * 1024, maxRequest);
  result.requests = requests.length;
  if (opts.dryRun || jobs.size === 0) return result;

  let done = 0;
  const total = result.bytes;
  // Fail fast: after the first error no further task starts, and cleanup waits for
  // the ones running, so nothing lands in the cache after fetch has reported failure.
  const group = new TaskGroup(opts.jobs);
  // Locations verified by download: the only remote knowledge kept for later dedup.
  const proven: Array<[string, ChunkLocation]> = [];
  const newHasher = await loadHasher();
  const buffers: Buffer[] = [];
  let heldBytes = 0;
  const holdBudget = opts.holdBudget ?? HOLD_BUDGET;
  const handleOf = (job: FileJob): Promise<FileHandle> => {
    if (!job.fh) {
      job.tmp = cache.tmpPath('fetch');
      job.hasher = newHasher();
      job.fh = open(job.tmp, 'w+');
    }
    return job.fh;
  };
  // Feed the file hash the bytes just written at `offset`, in file order, so the
  // finished file needs no second read. Runs that arrive early wait (in memory up to
  // the hold budget, else on disk) until the hash reaches them.
  const hashRun = (job: FileJob, offset: number, bytes: Uint8Array): Promise<void> => {
    job.hashing = job.hashing.then(async () => {
      if (offset !== job.hashed) {
        if (heldBytes + bytes.length <= holdBudget) {
          // A copy: `bytes` may be a view of a response buffer that is reused.
          job.held.set(offset, Buffer.from(bytes));
          heldBytes += bytes.length;
        } else job.dropped.set(offset, bytes.length);
        return;
      }
      job.hasher!.update(bytes);
      job.hashed += bytes.length;
      await catchUp(job);
    });
    return job.hashing;
  };
  const catchUp = async (job: FileJob): Promise<void> => {
    for (;;) {
      const bytes = job.held.get(job.hashed);
      if (bytes) {
        job.held.delete(job.hashed);
        heldBytes -= bytes.length;
        job.hasher!.update(bytes);
        job.hashed += bytes.length;
        continue;
      }
      const length = job.dropped.get(job.hashed);
      if (length === undefined) return;
      job.dropped.delete(job.hashed);
      await hashBack(await job.fh!, job.hasher!, job.hashed, length);
      job.hashed += length;
    }
  };
  const writeRun = async (job: FileJob, offset: number, bytes: Uint8Array): Promise<void> => {
    const fh = await handleOf(job);
    for (let n = 0; n < bytes.length; ) {
      const { bytesWritten } = await fh.write(bytes, n, bytes.length - n, offset + n);
      if (bytesWritten <= 0) throw new Error(`short write to ${job.tmp}`);
      n += bytesWritten;
    }
    await hashRun(job, offset, bytes);
  };
  const finishJob = async (job: FileJob): Promise<void> => {
    await job.hashing;
    const fh = await job.fh!;
    // Every placement was written and hashed in order: the hash covers the whole file.
    const { size } = await fh.stat();
    if (job.hashed !== job.size || size !== job.size || toFileOid(job.hasher!.digestHex()) !== job.oid) {
      throw new IntegrityError(`${job.path} (${shortOid(job.oid)}) assembled from the remote does not match its oid`, { data: { oid: job.oid, path: job.path } });
    }
    await fh.sync();
    await fh.close();
    job.fh = undefined;
    // The chunk list first: a cached file with a manifest is a source of chunks for
    // later pulls (earlier versions make later ones cheap).
    if (job.manifest) await cache.writeManifest({ format: 'cpv-manifest', version: 1, oid: job.oid, size: job.size, ...job.manifest });
    if (!(await cache.commitFile(job.tmp!, job.oid))) cache.noteFresh(job.oid);
    job.tmp = undefined;
  };
  // The chunk is the whole file and was verified against the file oid.
  const putSingle = async (job: FileJob, bytes: Uint8Array): Promise<void> => {
    if (await cache.putVerified(job.oid, bytes)) cache.noteFresh(job.oid);
  };
  const placed = (job: FileJob, count: number): void => {
    job.remaining -= count;
    if (job.remaining === 0 && !job.single) void group.run(() => finishJob(job));
  };
  const place = async (w: Want, bytes: Uint8Array): Promise<void> => {
    for (const p of w.places) {
      const job = p.job;
      if (job.single) await putSingle(job, bytes);
      else await writeRun(job, p.offset, bytes);
      placed(job, 1);
    }
  };
  /** Place the verified chunks of one response, each run of consecutive chunks with one write. */
  const placeAll = async (r: Request, buf: Uint8Array): Promise<void> => {
    const runs: Run[] = [];
    const current = new Map<FileJob, Run>();
    for (const w of r.wants) {
      const at = w.offset - r.start;
      for (const p of w.places) {
        const job = p.job;
        if (job.single) {
          await putSingle(job, buf.subarray(at, at + w.length));
          placed(job, 1);
          continue;
        }
        const cur = current.get(job);
        if (cur && cur.offset + (cur.end - cur.start) === p.offset && cur.end === at) {
          cur.end += w.length;
          cur.count++;
        } else {
          const run = { job, offset: p.offset, start: at, end: at + w.length, count: 1 };
          runs.push(run);
          current.set(job, run);
        }
      }
    }
    for (const run of runs) {
      await writeRun(run.job, run.offset, buf.subarray(run.start, run.end));
      placed(run.job, run.count);
    }
  };

  try {
    // Chunks already in the cache are copied (cheap); the rest come in ranged requests.
    for (const w of wants.values()) {
      if (!local.has(w.chunk)) continue;
      void group.run(async () => {
        const src = local.get(w.chunk)!;
        const bytes = await readRange(src.file, src.offset, w.length);
        if (bytes.length === w.length && (await blake3Hex(bytes)) === w.chunk) return place(w, bytes);
        // A damaged local copy: fall back to the remote.
        const got = await remote.backend.load(remoteKeys.pack(w.pack), { offset: w.offset, length: w.length, signal: opts.signal });
        await verifyChunk(got, w, remote);
        proven.push([w.chunk, { pack: w.pack, offset: w.offset, length: w.length }]);
        await place(w, got);
      });
    }
    for (const r of requests) {
      void group.run(async () => {
        opts.signal?.throwIfAborted();
        // Responses land in reused buffers: at most `jobs` of them, whatever the size
        // of the file, and no fresh memory to fault in per request.
        const into = r.end - r.start <= maxRequest ? (buffers.pop() ?? Buffer.allocUnsafe(maxRequest)) : undefined;
        const buf = await remote.backend.load(remoteKeys.pack(r.pack), { offset: r.start, length: r.end - r.start, signal: opts.signal, into });
        let n = 0;
        for (const w of r.wants) {
          const at = w.offset - r.start;
          await verifyChunk(buf.subarray(at, at + w.length), w, remote);
          n += w.length;
        }
        for (const w of r.wants) proven.push([w.chunk, { pack: w.pack, offset: w.offset, length: w.length }]);
        await placeAll(r, buf);
        // Every placement is written, and hashed or copied aside: the buffer is free.
        if (into) buffers.push(into);
        done += n;
        opts.onProgress?.({ phase: 'download', done, total });
      });
    }
    await group.all();
    await cache.sync();
  } finally {
    await group.settle();
    await remote.rememberLocations(proven);
    for (const job of jobs.values()) {
      // Best effort: the handle may already be closed, or never have opened.
      if (job.fh) await job.fh.then((fh) => fh.close()).catch(() => undefined);
      if (job.tmp) await rm(job.tmp, { force: true });
    }
  }
  return result;
}

let emptyOid: Promise<string> | undefined;
/** The file oid of the empty file. */
function emptyFileOid(): Promise<string> {
  emptyOid ??= blake3Hex(new Uint8Array(0)).then(toFileOid);
  return emptyOid;
}

async function verifyChunk(bytes: Uint8Array, w: Want, remote: Remote): Promise<void> {
  if (bytes.length !== w.length || (await blake3Hex(bytes)) !== w.chunk) {
    const where = w.places[0]?.job.path ?? '?';
    throw new IntegrityError(`pack ${w.pack.slice(0, 12)} on remote "${remote.name}" is corrupt: chunk ${w.chunk.slice(0, 12)} of ${where} does not match its hash`, {
      data: { pack: w.pack, chunk: w.chunk, path: where },
    });
  }
}

/** Hash `length` bytes of `fh` from `offset` (a run written ahead of the hash and not kept in memory). */
async function hashBack(fh: FileHandle, h: Hasher, offset: number, length: number): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(length, 4 * MiB));
  for (let n = 0; n < length; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, length - n), offset + n);
    if (bytesRead <= 0) throw new Error('temp file shorter than written');
    h.update(buf.subarray(0, bytesRead));
    n += bytesRead;
  }
}

interface Request {
  pack: string;
  start: number;
  end: number;
  wants: Want[];
}

/** Group wanted chunks by pack and merge nearby ranges into single requests. */
function coalesce(wants: Want[], gap: number, max: number): Request[] {
  const byPack = new Map<string, Want[]>();
  for (const w of wants) {
    const list = byPack.get(w.pack) ?? [];
    list.push(w);
    byPack.set(w.pack, list);
  }
  const out: Request[] = [];
  for (const [pack, list] of byPack) {
    list.sort((a, b) => a.offset - b.offset);
    let cur: Request | undefined;
    for (const w of list) {
      const end = w.offset + w.length;
      if (cur && w.offset - cur.end <= gap && end - cur.start <= max) {
        cur.end = Math.max(cur.end, end);
        cur.wants.push(w);
      } else {
        cur = { pack, start: w.offset, end, wants: [w] };
        out.push(cur);
      }
    }
  }
  return out;
}

async function readRange(file: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Index chunk oid → (cached file, offset) over every local manifest. */
async function localChunkIndex(cache: Cache, out: Map<string, { file: string; offset: number }>): Promise<void> {
  for await (const { hex, path } of walkFanout(join(cache.dir, 'manifests'))) {
    const oid = toFileOid(hex);
    let m;
    try {
      m = parseLocalManifest(await readFile(path, 'utf8'), 'cache manifest', oid);
    } catch {
      continue; // a damaged manifest only costs a download
    }
    if (!(await cache.hasFile(oid))) continue;
    let offset = 0;
    for (const [c, length] of m.chunks) {
      if (!out.has(c)) out.set(c, { file: cache.filePath(oid), offset });
      offset += length;
    }
  }
}
