import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import pLimit from 'p-limit';
import { IntegrityError, NotFoundError, RemoteError } from '../errors.js';
import type { ChunkerParams } from '../chunk/fastcdc.js';
import { loadHasher } from '../hash/blake3.js';
import type { Cache } from '../store/cache.js';
import { PackTable, type ChunkRef, type RemoteManifest, type RemoteTreeIndex } from '../store/manifest.js';
import { PackBuilder } from '../store/pack.js';
import { serializeTree, type TreeEntry } from '../store/tree.js';
import { remoteKeys, type ChunkLocation, type Remote } from '../remote/remote.js';
import { shortOid } from '../util/oid.js';
import type { ProgressEvent, TransferItem } from './types.js';
import { TaskGroup } from '../util/task-group.js';

/** What a push did, or would do with `dryRun`. */
export interface PushResult {
  /** Items (files or directories) the remote already had. */
  upToDate: number;
  /** Items uploaded (or to upload). */
  uploaded: number;
  /** Files whose content was uploaded (including files inside directories). */
  files: number;
  /** Chunks uploaded; chunks the remote already had are not counted. */
  chunks: number;
  /** Chunk bytes uploaded. */
  bytes: number;
  /** Chunk bytes the remote already had, referenced instead of uploaded. */
  dedupBytes: number;
  packs: number;
  /** Total bytes written to the remote: packs, manifests, trees. */
  wireBytes: number;
}

export interface PushOptions {
  chunker: ChunkerParams;
  packSize: number;
  jobs: number;
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /**
   * Bytes of packs in memory at once, the one being built and those uploading
   * (default 64 MiB; always room for at least two packs).
   */
  memory?: number;
  /** Internal: set on the second attempt after stale remote knowledge was dropped. */
  retried?: boolean;
}

interface FileWork {
  oid: string;
  size: number;
  chunks: ChunkRef[];
}

interface DirWork {
  oid: string;
  entries: TreeEntry[];
  /** Per entry: chunk list (length 1 → stored inline in the tree index). */
  chunks: ChunkRef[][];
}

const MiB = 1024 * 1024;
const PUSH_MEMORY = 64 * MiB;
/** Largest single read from a cached file: consecutive chunks are read together. */
const SPAN = 8 * MiB;

interface PendingChunk {
  oid: string;
  fileOid: string;
  offset: number;
  length: number;
}

/**
 * Upload the content of `items` (from the local cache) to `remote`, moving only what
 * the remote does not have. Write order is the commit protocol: packs, then
 * manifests, then trees, so an interrupted push never publishes a manifest or tree
 * whose chunks are missing; rerunning it resumes. Idempotent.
 *
 * Throws NotFoundError when an item is not in the cache, RemoteError when the remote
 * fails.
 */
export async function push(cache: Cache, remote: Remote, items: readonly TransferItem[], opts: PushOptions): Promise<PushResult> {
  const result: PushResult = { upToDate: 0, uploaded: 0, files: 0, chunks: 0, bytes: 0, dedupBytes: 0, packs: 0, wireBytes: 0 };
  const limit = pLimit(opts.jobs);
  const unique = [...new Map(items.map((i) => [i.oid, i])).values()];

  // 1. Ask the remote about whole items first: present means complete.
  const present = await Promise.all(
    unique.map((item) => limit(() => (item.type === 'dir' ? remote.hasTree(item.oid) : remote.hasManifest(item.oid)))),
  );
  const files = new Map<string, FileWork>();
  const dirs: DirWork[] = [];
  const missing = unique.filter((_, i) => !present[i]);
  result.upToDate = unique.length - missing.length;
  result.uploaded = missing.length;

  for (const item of missing) {
    if (item.type === 'file') {
      files.set(item.oid, { oid: item.oid, size: item.size, chunks: await cachedChunks(cache, item.oid, item.size, item.path) });
      continue;
    }
    const entries = await cache.readTree(item.oid);
    const chunks: ChunkRef[][] = [];
    for (const e of entries) chunks.push(await cachedChunks(cache, e.oid, e.size, `${item.path}/${e.path}`));
    dirs.push({ oid: item.oid, entries, chunks });
  }
  // Multi-chunk files inside directories get manifests of their own.
  const nested = dirs.flatMap((d) => d.entries.map((e, i) => ({ e, c: d.chunks[i]! })).filter(({ c }) => c.length > 1));
  const nestedPresent = await Promise.all(nested.map(({ e }) => limit(() => (files.has(e.oid) ? false : remote.hasManifest(e.oid)))));
  nested.forEach(({ e, c }, i) => {
    if (!nestedPresent[i]) files.set(e.oid, { oid: e.oid, size: e.size, chunks: c });
  });

  // 2. Decide which chunks to upload: not known on the remote, not already scheduled.
  const known = missing.length > 0 ? await remote.knownChunks() : new Map<string, ChunkLocation>();
  const pending = new Map<string, PendingChunk>();
  const schedule = (fileOid: string, chunks: ChunkRef[]): void => {
    let offset = 0;
    for (const [c, length] of chunks) {
      if (known.has(c)) result.dedupBytes += length;
      else if (!pending.has(c)) pending.set(c, { oid: c, fileOid, offset, length });
      offset += length;
    }
  };
  for (const f of files.values()) schedule(f.oid, f.chunks);
  for (const d of dirs) d.entries.forEach((e, i) => d.chunks[i]!.length === 1 && schedule(e.oid, d.chunks[i]!));
  result.files = files.size + dirs.reduce((n, d) => n + d.chunks.filter((c) => c.length === 1).length, 0);
  result.chunks = pending.size;
  for (const p of pending.values()) result.bytes += p.length;
  const total = result.bytes;
  if (opts.dryRun) {
    result.packs = Math.ceil(total / opts.packSize);
    return result;
  }
  if (missing.length > 0) await remote.ensureMarker();

  // 3. Packs: read runs of consecutive chunks from cached files straight into the pack
  // buffer, seal ~packSize packs, upload them in parallel. Memory is bounded by `slots`
  // pack buffers (one being filled, the others uploading), reused from pack to pack.
  const uploaded = new Map<string, ChunkLocation>();
  const slots = Math.max(2, Math.min(opts.jobs + 1, Math.floor((opts.memory ?? PUSH_MEMORY) / opts.packSize)));
  const uploads = new TaskGroup(slots - 1);
  const newHasher = await loadHasher();
  const capacity = opts.packSize + opts.chunker.max + 256 * 1024;
  const free: Buffer[] = [];
  let buffers = 0;
  const handles = new Map<string, FileHandle>();
  let sent = 0;
  const nextBuilder = async (): Promise<PackBuilder | undefined> => {
    while (free.length === 0 && buffers >= slots) {
      if (uploads.failed) return undefined;
      await uploads.next();
    }
    const buffer = free.pop();
    if (!buffer) buffers++;
    return new PackBuilder({ buffer, capacity, hasher: newHasher() });
  };
  const uploadPack = (builder: PackBuilder): void => {
    const sealed = builder.seal();
    void uploads.run(async () => {
      const packOid = sealed.oid!;
      await remote.backend.save(remoteKeys.pack(packOid), sealed.bytes, { signal: opts.signal, size: sealed.bytes.length });
      // The upload is done with the bytes: the buffer serves the next pack. (After a
      // failure it is dropped, in case the failed request still refers to it.)
      free.push(builder.buffer);
      await remote.rememberLocations(sealed.entries.map((e) => [e.oid, { pack: packOid, offset: e.offset, length: e.length }]));
      for (const e of sealed.entries) uploaded.set(e.oid, { pack: packOid, offset: e.offset, length: e.length });
      result.packs++;
      result.wireBytes += sealed.bytes.length;
      sent += sealed.entries.reduce((n, e) => n + e.length, 0);
      opts.onProgress?.({ phase: 'upload', done: sent, total });
    });
  };
  try {
    const order = [...pending.values()];
    let builder = await nextBuilder();
    for (let i = 0; builder && i < order.length; ) {
      opts.signal?.throwIfAborted();
      if (uploads.failed) break; // reported by uploads.all() below
      const first = order[i]!;
      let fh = handles.get(first.fileOid);
      if (!fh) {
        // Keep few handles open: chunks come grouped by file.
        for (const [k, h] of handles) {
          await h.close();
          handles.delete(k);
        }
        fh = await open(cache.filePath(first.fileOid), 'r');
        handles.set(first.fileOid, fh);
      }
      // A span: consecutive chunks of this file, each added while the pack is below
      // packSize (as if added one by one), at most SPAN bytes.
      let j = i;
      let length = 0;
      do {
        length += order[j]!.length;
        j++;
      } while (
        j < order.length &&
        order[j]!.fileOid === first.fileOid &&
        order[j]!.offset === first.offset + length &&
        builder.size + length < opts.packSize &&
        length + order[j]!.length <= SPAN
      );
      const span = order.slice(i, j);
      const dst = builder.reserve(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(dst, got, length - got, first.offset + got);
        if (bytesRead <= 0) break;
        got += bytesRead;
      }
      // Never publish a corrupt cache object: every chunk is rehashed on its way out.
      let at = 0;
      for (const p of span) {
        const h = newHasher();
        if (at + p.length <= got) h.update(dst.subarray(at, at + p.length));
        if (at + p.length > got || h.digestHex() !== p.oid) {
          throw new IntegrityError(`cache object ${shortOid(p.fileOid)} is corrupt (${cache.filePath(p.fileOid)}); nothing was published`, {
            hint: 'delete it and run `cpv add` on the file again (or `cpv fetch` it from a remote that has a good copy)',
            data: { oid: p.fileOid },
          });
        }
        at += p.length;
      }
      builder.commit(span);
      i = j;
      if (builder.size >= opts.packSize) {
        uploadPack(builder);
        builder = await nextBuilder();
      }
    }
    if (builder && builder.count > 0) uploadPack(builder);
  } finally {
    for (const h of handles.values()) await h.close();
    // Never leave uploads running behind a failure.
    await uploads.settle();
  }
  await uploads.all();

  // 4. Chunks referenced from earlier pushes: their packs must still be there.
  const locate = (c: string): ChunkLocation => uploaded.get(c) ?? known.get(c)!;
  const foreignPacks = new Set<string>();
  const noteForeign = (chunks: ChunkRef[]): void => {
    for (const [c] of chunks) if (!uploaded.has(c)) foreignPacks.add(known.get(c)!.pack);
  };
  for (const f of files.values()) noteForeign(f.chunks);
  for (const d of dirs) d.chunks.forEach((c) => c.length === 1 && noteForeign(c));
  const gone = (await Promise.all([...foreignPacks].map((p) => limit(async () => ((await remote.backend.exists(remoteKeys.pack(p))) ? undefined : p))))).filter(
    (p): p is string => p !== undefined,
  );
  if (gone.length > 0 && !opts.retried) {
    // Stale knowledge (the remote lost packs, e.g. it was wiped): forget it and plan
    // again. Nothing was published yet; at worst some chunks are uploaded twice.
    await remote.forgetPacks(new Set(gone));
    return push(cache, remote, items, { ...opts, retried: true });
  }
  if (gone.length > 0) {
    throw new RemoteError(`remote "${remote.name}" no longer has ${gone.length} pack(s) this push relies on (e.g. ${gone[0]!.slice(0, 12)}); nothing was published`, {
      // The whole per-remote directory: known manifests and trees, and uploaded packs.
      hint: `remove ${dirname(cache.knownDir(remote.id))} (stale knowledge of the remote) and push again`,
      data: { packs: gone },
    });
  }

  // 5. Manifests (each after its pages), then trees: a record is published only after
  // what it points to. Pages the remote has already are not written again.
  const records = new TaskGroup(opts.jobs);
  const pageLimit = pLimit(opts.jobs);
  const pages = new Map<string, Promise<void>>();
  for (const f of files.values()) {
    void records.run(async () => {
      const table = new PackTable();
      const chunks = f.chunks.map(([c, length]): [string, number, number, number] => {
        const loc = locate(c);
        return [c, length, table.index(loc.pack), loc.offset];
      });
      const m: RemoteManifest = { format: 'cpv-manifest', version: 1, oid: f.oid, size: f.size, chunker: opts.chunker, packs: table.packs, chunks };
      const written = await remote.saveManifest(m, { signal: opts.signal, limit: pageLimit, pages });
      result.wireBytes += written;
    });
  }
  await records.all();
  for (const d of dirs) {
    void records.run(async () => {
      const table = new PackTable();
      const entries = d.chunks.map((c): [number, number] | null => {
        if (c.length !== 1) return null;
        const loc = locate(c[0]![0]);
        return [table.index(loc.pack), loc.offset];
      });
      const idx: RemoteTreeIndex = { format: 'cpv-tree-index', version: 1, oid: d.oid, tree: serializeTree(d.entries), packs: table.packs, entries };
      const body = Buffer.from(JSON.stringify(idx) + '\n');
      await remote.backend.save(remoteKeys.tree(d.oid), body, { signal: opts.signal });
      result.wireBytes += body.length;
    });
  }
  await records.all();
  return result;
}

async function cachedChunks(cache: Cache, oid: string, size: number, path: string): Promise<ChunkRef[]> {
  try {
    return await cache.chunksOf(oid, size);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new NotFoundError(`${path} (${shortOid(oid)}) is not in the local cache, so it cannot be pushed`, {
        hint: 'run `cpv fetch` from a remote that has it, or `cpv add` the file again',
        data: { oid, path },
      });
    }
    throw err;
  }
}

