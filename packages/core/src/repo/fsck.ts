import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { CpvError, FormatError, IntegrityError, NotFoundError, PointerParseError } from '../errors.js';
import { blake3Hex, loadHasher } from '../hash/blake3.js';
import { scanFile } from '../chunk/scan.js';
import { LAYOUT_PREFIXES, listLayout, type LayoutObject } from '../remote/listing.js';
import { Remote, remoteKeys } from '../remote/remote.js';
import { parseLocalManifest, type ChunkRef, type LocalManifest } from '../store/manifest.js';
import { readPackIndex, type PackEntry } from '../store/pack.js';
import { parseTree } from '../store/tree.js';
import { fetchObjects } from '../transfer/fetch.js';
import type { TransferItem } from '../transfer/types.js';
import { walkFanout } from '../util/fanout-walk.js';
import { fanout, oidHex, shortOid, toFileOid } from '../util/oid.js';
import { withRepoLock } from './lock.js';
import { listPointers } from './pointers.js';
import type { Repo } from './repo.js';
import { remoteJobs } from './routing.js';

export interface FsckOptions {
  /** Also check this remote (by name). */
  remote?: string;
  /** Re-hash every cached file and chunk, and every chunk of every pack on the remote. */
  readData?: boolean;
  /**
   * Re-fetch each bad cache file or tree from a remote that has a good copy (`remote`,
   * else the default remote, then the others), and rebuild a bad cache manifest from
   * its file. Remote objects are reported, never changed.
   */
  repair?: boolean;
  /** Parallel remote requests (default: the remote's `jobs`, else `core.jobs`). */
  jobs?: number;
  signal?: AbortSignal;
}

/** One bad object. */
export interface FsckProblem {
  where: 'cache' | 'remote';
  kind: 'file' | 'manifest' | 'tree' | 'page' | 'pack';
  /** Cache objects: path relative to the cache directory; remote objects: backend key. */
  key: string;
  /** File or tree oid (`b3:…`), or pack or manifest page oid (hex). */
  oid: string;
  reason: string;
  /** The key of an object this one names and the remote lacks. */
  missing?: string;
  /** With `repair`: whether it is fixed now, and how or why not. */
  repaired?: boolean;
  repair?: string;
}

export interface FsckResult {
  /** No problem is left (every one found was repaired, or there were none). */
  ok: boolean;
  readData: boolean;
  cache: { dir: string; files: number; manifests: number; trees: number; bytesHashed: number };
  remote?: { name: string; location: string; packs: number; pages: number; manifests: number; trees: number; bytesHashed: number };
  problems: FsckProblem[];
}

/**
 * Check the local cache and, with `remote`, a remote (docs/format.md, "fsck").
 *
 * Cache: every tree hashes to its name and is canonical; every manifest parses, names
 * its own oid and its chunks sum to its size; every file has the size its manifest,
 * a cached tree or a workspace pointer gives. With `readData`, every file is re-hashed
 * whole and chunk by chunk against its manifest.
 *
 * Remote: every tree index, manifest and manifest page parses and verifies (a page
 * hashes to its name); every page a manifest names exists, is sound and holds what the
 * manifest says; every pack a record or page names exists and holds each range it
 * points at (within the pack's size; with `readData`, exactly a chunk of the pack's
 * index with that oid and length); every multi-chunk file of a tree has its manifest.
 * With `readData`, every pack is downloaded, hashed against its name, and every chunk
 * in it re-hashed.
 *
 * Reports each bad object with its key and reason; never throws for a bad object.
 * Read-only, unless `repair` (then it holds the repository lock). Throws RemoteError
 * when the remote cannot be listed or read, ConfigError for an unknown remote.
 */
export async function fsck(repo: Repo, opts: FsckOptions = {}): Promise<FsckResult> {
  return withRepoLock(repo.root, { command: 'fsck --repair', skip: !opts.repair }, async () => {
    const problems: FsckProblem[] = [];
    const cache = await checkCache(repo, opts, problems);
    const result: FsckResult = { ok: false, readData: opts.readData ?? false, cache: cache.stats, problems };
    if (opts.remote !== undefined) {
      const remote = await Remote.open(repo.config, repo.root, repo.cache, opts.remote);
      try {
        const jobs = Math.max(1, opts.jobs ?? remoteJobs(repo, remote.name));
        result.remote = await checkRemote(remote, { ...opts, jobs }, problems);
      } finally {
        await remote.close();
      }
    }
    if (opts.repair) await repairCache(repo, cache, problems, opts);
    result.ok = problems.every((p) => p.repaired === true);
    return result;
  });
}

// ---- cache ----

interface CacheFacts {
  stats: FsckResult['cache'];
  /** Sizes a file object must have, from manifests, cached trees and pointers. */
  sizes: Map<string, number>;
  /** A cached tree and entry path for each file oid a cached tree lists. */
  inTree: Map<string, { tree: string; path: string }>;
}

async function checkCache(repo: Repo, opts: FsckOptions, problems: FsckProblem[]): Promise<CacheFacts> {
  const c = repo.cache;
  const stats = { dir: c.dir, files: 0, manifests: 0, trees: 0, bytesHashed: 0 };
  const sizes = new Map<string, number>();
  const inTree = new Map<string, { tree: string; path: string }>();
  const bad = (kind: FsckProblem['kind'], sub: string, hex: string, reason: string): void => {
    problems.push({ where: 'cache', kind, key: `${sub}/${fanout(hex)}`, oid: toFileOid(hex), reason });
  };

  for await (const { hex, path } of walkFanout(join(c.dir, 'trees'))) {
    opts.signal?.throwIfAborted();
    stats.trees++;
    const bytes = await readFile(path);
    if ((await blake3Hex(bytes)) !== hex) {
      bad('tree', 'trees', hex, 'its content does not hash to its name (corrupt)');
      continue;
    }
    try {
      for (const e of parseTree(bytes.toString('utf8'), `cache tree ${hex.slice(0, 12)}`)) {
        sizes.set(e.oid, e.size);
        if (!inTree.has(e.oid)) inTree.set(e.oid, { tree: toFileOid(hex), path: e.path });
      }
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      bad('tree', 'trees', hex, `malformed: ${err.message}`);
    }
  }

  const manifests = new Map<string, LocalManifest>();
  for await (const { hex, path } of walkFanout(join(c.dir, 'manifests'))) {
    stats.manifests++;
    try {
      const m = parseLocalManifest(await readFile(path, 'utf8'), `cache manifest ${hex.slice(0, 12)}`, toFileOid(hex));
      manifests.set(m.oid, m);
      sizes.set(m.oid, m.size);
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      bad('manifest', 'manifests', hex, `malformed: ${err.message}`);
    }
  }

  try {
    for (const ref of await listPointers(repo)) if (ref.pointer.type === 'file') sizes.set(ref.pointer.oid, ref.pointer.size);
  } catch (err) {
    // A broken pointer is not a stored object: fsck checks the objects without its size.
    if (!(err instanceof PointerParseError)) throw err;
  }

  for await (const { hex, path } of walkFanout(join(c.dir, 'files'))) {
    opts.signal?.throwIfAborted();
    stats.files++;
    const oid = toFileOid(hex);
    const size = (await stat(path)).size;
    const want = sizes.get(oid);
    const sizeNote = want !== undefined && want !== size ? `; it has ${size} bytes, ${want} expected (truncated or overwritten)` : '';
    if (!opts.readData) {
      if (sizeNote) bad('file', 'files', hex, sizeNote.slice(2));
      continue;
    }
    const m = manifests.get(oid);
    const h = await hashCached(path, m?.chunks);
    stats.bytesHashed += h.size;
    if (h.hex !== hex) bad('file', 'files', hex, `its content does not hash to its oid${sizeNote}`);
    else if (m && h.badChunk !== undefined) bad('manifest', 'manifests', hex, `chunk ${h.badChunk} of its list does not match the file (the file itself is intact)`);
  }
  return { stats, sizes, inTree };
}

/**
 * BLAKE3 of a cached file, read once; with its chunk list, also the index of the
 * first chunk whose bytes do not hash to its oid (or run past the end).
 */
async function hashCached(path: string, chunks: readonly ChunkRef[] | undefined): Promise<{ hex: string; size: number; badChunk?: number }> {
  const whole = (await loadHasher())();
  const fh = await open(path, 'r');
  let pos = 0;
  let badChunk: number | undefined;
  const take = async (length: number): Promise<Buffer> => {
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await fh.read(buf, 0, length, pos);
    pos += bytesRead;
    const got = buf.subarray(0, bytesRead);
    whole.update(got);
    return got;
  };
  try {
    for (const [i, [oid, length]] of (chunks ?? []).entries()) {
      const bytes = await take(length);
      if (badChunk === undefined && (bytes.length !== length || (await blake3Hex(bytes)) !== oid)) badChunk = i;
      if (bytes.length < length) break;
    }
    // The rest (the whole file when there is no chunk list).
    while ((await take(4 * 1024 * 1024)).length > 0);
  } finally {
    await fh.close();
  }
  return { hex: whole.digestHex(), size: pos, ...(badChunk === undefined ? {} : { badChunk }) };
}

// ---- remote ----

async function checkRemote(remote: Remote, opts: FsckOptions & { jobs: number }, problems: FsckProblem[]): Promise<NonNullable<FsckResult['remote']>> {
  const limit = pLimit(opts.jobs);
  // Listed in the reverse of the write order: whatever a listed record names was
  // written before it, so it is listed too (unless a gc removed it since).
  const listed = await listLayout(remote.backend, [...LAYOUT_PREFIXES].reverse(), opts.signal);
  const packs = new Map(listed.filter((l) => l.kind === 'pack').map((l) => [l.oid, l]));
  const manifests = new Set(listed.filter((l) => l.kind === 'manifest').map((l) => l.oid));
  const pages = listed.filter((l) => l.kind === 'page');
  const count = (kind: LayoutObject['kind']): number => listed.filter((l) => l.kind === kind).length;
  const stats = { name: remote.name, location: remote.backend.location, packs: packs.size, pages: pages.length, manifests: manifests.size, trees: count('tree'), bytesHashed: 0 };
  const bad = (l: LayoutObject, reason: string, missing?: string): void => {
    problems.push({ where: 'remote', kind: l.kind, key: l.key, oid: l.oid, reason, ...(missing ? { missing } : {}) });
  };

  // Packs first (with readData): their indexes tell exactly which ranges hold chunks.
  const indexes = new Map<string, Map<number, PackEntry>>();
  if (opts.readData) {
    // Whole packs are held in memory: fewer at a time.
    const packLimit = pLimit(Math.min(opts.jobs, 4));
    await Promise.all(
      [...packs.values()].map((l) =>
        packLimit(async () => {
          const bytes = await remote.backend.load(l.key, { signal: opts.signal }).catch(vanished);
          if (!bytes) return;
          stats.bytesHashed += bytes.length;
          if ((await blake3Hex(bytes)) !== l.oid) return bad(l, 'its content does not hash to its name (corrupt)');
          let entries: PackEntry[];
          try {
            entries = readPackIndex(bytes, `pack ${l.oid.slice(0, 12)}`);
          } catch (err) {
            if (!(err instanceof FormatError)) throw err;
            return bad(l, `malformed: ${err.message}`);
          }
          for (const e of entries) {
            if ((await blake3Hex(bytes.subarray(e.offset, e.offset + e.length))) !== e.oid) return bad(l, `chunk ${e.oid.slice(0, 12)} at offset ${e.offset} does not match its oid`);
          }
          indexes.set(l.oid, new Map(entries.map((e) => [e.offset, e])));
        }),
      ),
    );
  }

  /** Problems with the chunk ranges a record names. */
  const checkRanges = (l: LayoutObject, ranges: ReadonlyArray<[chunk: string, pack: string, offset: number, length: number]>): void => {
    const missing = new Set<string>();
    let outside: string | undefined;
    for (const [chunk, pack, offset, length] of ranges) {
      const p = packs.get(pack);
      if (!p) {
        if (!missing.has(pack)) bad(l, `names pack ${pack.slice(0, 12)}, which is not on the remote`, remoteKeys.pack(pack));
        missing.add(pack);
        continue;
      }
      const index = indexes.get(pack);
      const entry = index?.get(offset);
      // Without the pack's index: the range must at least lie before its trailer (12 bytes).
      const fits = index ? entry?.oid === chunk && entry.length === length : offset >= 8 && offset + length <= p.size - 12;
      if (!fits && outside === undefined) outside = `chunk ${chunk.slice(0, 12)} at ${pack.slice(0, 12)}+${offset} (${length} bytes) is not in that pack`;
    }
    if (outside) bad(l, outside);
  };

  // Pages next: what each holds (chunks, bytes), or why it is unusable, for the
  // manifests that name them.
  const pageFacts = new Map<string, { chunks: number; bytes: number } | { reason: string }>();
  await Promise.all(
    pages.map((l) =>
      limit(async () => {
        try {
          const page = await remote.loadPage(l.oid, opts.signal);
          checkRanges(l, page.chunks.map(([c, length, p, offset]) => [c, page.packs[p]!, offset, length]));
          pageFacts.set(l.oid, { chunks: page.chunks.length, bytes: page.chunks.reduce((n, c) => n + c[1], 0) });
        } catch (err) {
          if (err instanceof NotFoundError) return; // removed since the listing (a gc)
          if (!(err instanceof FormatError || err instanceof IntegrityError)) throw err;
          const reason = err instanceof IntegrityError ? 'its content does not hash to its name (corrupt)' : `malformed: ${err.message}`;
          pageFacts.set(l.oid, { reason });
          bad(l, reason);
        }
      }),
    ),
  );

  await Promise.all(
    listed
      .filter((l) => l.kind === 'manifest' || l.kind === 'tree')
      .map((l) =>
        limit(async () => {
          try {
            if (l.kind === 'manifest') {
              const m = await remote.loadStoredManifest(l.oid, opts.signal);
              if (m.version === 1) return checkRanges(l, m.chunks.map(([c, length, p, offset]) => [c, m.packs[p]!, offset, length]));
              // A paged manifest: its pages' ranges were checked above.
              for (const [page, chunks, bytes] of m.pages) {
                const f = pageFacts.get(page);
                if (!f) bad(l, `names page ${page.slice(0, 12)}, which is not on the remote`, remoteKeys.page(page));
                else if ('reason' in f) bad(l, `names page ${page.slice(0, 12)}, which is damaged`);
                else if (f.chunks !== chunks || f.bytes !== bytes) bad(l, `says page ${page.slice(0, 12)} holds ${chunks} chunks of ${bytes} bytes; it holds ${f.chunks} of ${f.bytes}`);
                else continue;
                return; // one problem per manifest
              }
              if (m.pages.length === 1 && m.pages[0]![1] === 1) {
                // The one-chunk rule of version 1 holds for the flattened list too.
                await remote.loadManifest(l.oid, opts.signal);
              }
              return;
            }
            const { index, entries } = await remote.loadTree(l.oid, opts.signal);
            const ranges: Array<[string, string, number, number]> = [];
            entries.forEach((e, i) => {
              const loc = index.entries[i];
              if (loc) ranges.push([oidHex(e.oid), index.packs[loc[0]]!, loc[1], e.size]);
              else if (e.size > 0 && !manifests.has(e.oid)) bad(l, `lists ${e.path}, whose manifest ${shortOid(e.oid)} is not on the remote`, remoteKeys.manifest(e.oid));
            });
            checkRanges(l, ranges);
          } catch (err) {
            if (err instanceof NotFoundError) return; // removed since the listing (a gc)
            if (!(err instanceof FormatError || err instanceof IntegrityError)) throw err;
            bad(l, err instanceof IntegrityError ? err.message : `malformed: ${err.message}`);
          }
        }),
      ),
  );
  return stats;
}

/** An object removed since the listing (a concurrent gc) is no longer there to check. */
function vanished(err: unknown): undefined {
  if (err instanceof NotFoundError) return undefined;
  throw err;
}

// ---- repair ----

async function repairCache(repo: Repo, facts: CacheFacts, problems: readonly FsckProblem[], opts: FsckOptions): Promise<void> {
  const c = repo.cache;
  const names = opts.remote !== undefined ? [opts.remote] : [...new Set([repo.config.remote, ...Object.keys(repo.config.remotes)].filter((n): n is string => n !== undefined))];
  const opened = new Map<string, Remote>();
  try {
    for (const p of problems) {
      if (p.where !== 'cache') continue;
      if (p.kind === 'manifest') {
        await rebuildManifest(repo, p);
        continue;
      }
      const file = join(c.dir, ...p.key.split('/'));
      // Keep the bad copy aside until a good one is in place; put it back otherwise.
      const aside = c.tmpPath('fsck');
      await rename(file, aside);
      const reasons: string[] = [];
      for (const name of names) {
        try {
          let remote = opened.get(name);
          if (!remote) opened.set(name, (remote = await Remote.open(repo.config, repo.root, c, name)));
          const item = await repairItem(remote, p, facts);
          if (!item) {
            reasons.push(`remote ${name} has no copy`);
            continue;
          }
          await fetchObjects(c, remote, [item], { jobs: opts.jobs ?? remoteJobs(repo, name), signal: opts.signal });
          const good = p.kind === 'tree' ? await c.readTree(p.oid).then(() => true) : await c.verifyFile(p.oid);
          if (good) {
            p.repaired = true;
            p.repair = `fetched from remote ${name}`;
            break;
          }
        } catch (err) {
          if (!(err instanceof CpvError)) throw err;
          reasons.push(`remote ${name}: ${err.message}`);
        }
      }
      if (p.repaired) {
        await rm(aside, { force: true });
        // A repaired tree locates its files for the repairs that follow (trees come first).
        if (p.kind === 'tree') {
          for (const e of await c.readTree(p.oid)) {
            facts.sizes.set(e.oid, e.size);
            if (!facts.inTree.has(e.oid)) facts.inTree.set(e.oid, { tree: p.oid, path: e.path });
          }
        }
      } else {
        await rm(file, { force: true });
        await rename(aside, file);
        p.repaired = false;
        p.repair = names.length === 0 ? 'no remote is configured' : reasons.join('; ');
      }
    }
  } finally {
    for (const r of opened.values()) await r.close();
  }
}

/** What to fetch to get a good copy of a bad cache object back, or undefined if the remote has none. */
async function repairItem(remote: Remote, p: FsckProblem, facts: CacheFacts): Promise<TransferItem | undefined> {
  if (p.kind === 'tree') return (await remote.hasTree(p.oid)) ? { oid: p.oid, type: 'dir', size: 0, path: p.key, only: new Set() } : undefined;
  if (await remote.hasManifest(p.oid)) {
    return { oid: p.oid, type: 'file', size: facts.sizes.get(p.oid) ?? (await remote.loadManifest(p.oid)).size, path: p.key };
  }
  // A small file inside a directory: located through the directory's tree index.
  const t = facts.inTree.get(p.oid);
  if (t && (await remote.hasTree(t.tree))) return { oid: t.tree, type: 'dir', size: 0, path: p.key, only: new Set([t.path]) };
  return undefined;
}

/**
 * A damaged cache manifest is derived data: rebuild it from its file when the file is
 * intact, else remove it (it describes nothing the cache holds).
 */
async function rebuildManifest(repo: Repo, p: FsckProblem): Promise<void> {
  const c = repo.cache;
  await rm(c.manifestPath(p.oid), { force: true });
  if (!(await c.hasFile(p.oid)) || !(await c.verifyFile(p.oid))) {
    p.repaired = true;
    p.repair = 'removed (its file is not in the cache intact)';
    return;
  }
  const scan = await scanFile(c.filePath(p.oid), { params: repo.config.chunker });
  if (scan.chunks.length > 1) await c.writeManifest({ format: 'cpv-manifest', version: 1, oid: p.oid, size: scan.size, chunker: repo.config.chunker, chunks: scan.chunks });
  p.repaired = true;
  p.repair = 'rebuilt from the cached file';
}
