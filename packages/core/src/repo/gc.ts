import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { FormatError, IntegrityError, NotFoundError } from '../errors.js';
import { listLayout, type LayoutObject } from '../remote/listing.js';
import { Remote, remoteKeys, type PageMemo } from '../remote/remote.js';
import type { TransferItem } from '../transfer/types.js';
import { walkFanout } from '../util/fanout-walk.js';
import { toFileOid } from '../util/oid.js';
import { withRepoLock } from './lock.js';
import { reachableContent, type ReachScope } from './reachable.js';
import type { Repo } from './repo.js';
import { remoteJobs } from './routing.js';
import { isInside } from './workspace.js';

/** Remote objects younger than this are never deleted (7 days). */
export const DEFAULT_GRACE_MS = 7 * 24 * 60 * 60 * 1000;

export interface GcOptions {
  /** Git refs whose pointers keep content (workspace and HEAD always do). */
  scope?: ReachScope;
  /** Also collect a remote: `remote`, or the default remote. */
  cloud?: boolean;
  remote?: string;
  /** Remote objects modified less than this many ms ago are kept. Default {@link DEFAULT_GRACE_MS}. */
  graceMs?: number;
  /** Plan and report; delete nothing (and take no lock). */
  dryRun?: boolean;
  /**
   * Asked with the complete plan (a dry-run result) before anything is deleted;
   * resolving false cancels (the result is returned with `cancelled: true`). Not
   * called with `dryRun`; without it, gc deletes without asking.
   */
  confirm?: (plan: GcResult) => Promise<boolean>;
  /** Parallel remote requests (default: the remote's `jobs`, else `core.jobs`). */
  jobs?: number;
  signal?: AbortSignal;
  /** The clock for the grace period, ms since the epoch (tests). Default now. */
  now?: number;
}

export type GcKind = 'file' | 'manifest' | 'tree' | 'page' | 'pack';

/** One object gc deletes (or would), or keeps for a reason. */
export interface GcObject {
  kind: GcKind;
  /** Cache objects: path relative to the cache directory; remote objects: backend key. */
  key: string;
  /** File or tree oid (`b3:…`), or pack or page oid (hex). */
  oid: string;
  size: number;
}

export interface GcCacheResult {
  dir: string;
  /** Set when the cache was left alone, and why (a shared cache). */
  skipped?: string;
  /** Deleted (or to delete), in deletion order: trees, manifests, files. */
  removed: GcObject[];
  bytes: number;
  /** Objects kept. */
  kept: number;
  /** Reachable directories whose tree is not in the cache: their files are not known here. */
  unresolvedTrees: string[];
}

/** A pack that stays because some kept record needs it, though others it served are gone. */
export interface GcPartialPack {
  key: string;
  pack: string;
  size: number;
  /** Bytes of chunks in it that only deleted records referenced. */
  reclaimable: number;
}

export interface GcRemoteResult {
  remote: string;
  location: string;
  /** Deleted (or to delete), in deletion order: trees, then manifests, then manifest pages, then packs. */
  removed: GcObject[];
  bytes: number;
  kept: { trees: number; manifests: number; pages: number; packs: number };
  /**
   * Unreachable objects kept because of the grace period: records and pages younger
   * than it, and pages and packs younger than it or needed only by such records.
   */
  young: GcObject[];
  /** Kept packs that are only partly referenced. */
  partial: GcPartialPack[];
  reclaimableBytes: number;
  /**
   * Kept records or pages gc could not read (damaged, or a page missing), with the
   * reason. Which pages and packs they need is unknown, so while there is any, no
   * page and no pack is deleted.
   */
  unreadable: Array<{ key: string; reason: string }>;
  /** Pages and packs spared because a record or page that appeared while gc ran names them. */
  spared: number;
}

export interface GcResult {
  /** True when nothing was deleted: `dryRun`, or `cancelled`. */
  dryRun: boolean;
  /** The confirm callback declined. */
  cancelled: boolean;
  scope: Required<ReachScope>;
  /** Commits whose pointers were read. */
  commits: number;
  /** Distinct tracked files and directories found reachable. */
  reachable: number;
  graceMs: number;
  cache: GcCacheResult;
  remote?: GcRemoteResult;
}

/**
 * Delete cache objects, and with `cloud` remote objects, that no pointer in scope
 * reaches (docs/format.md, "Garbage collection"). Reachable are the pointers of the
 * workspace and HEAD, plus those of the branches, tags or commits `scope` adds; for a
 * directory its tree and every file in it, for a file its manifest, and on the remote
 * every page a kept manifest names and every pack a kept manifest, page or tree index
 * names.
 *
 * Plans first, then asks `confirm` (unless `dryRun`, which returns the plan). Deletes
 * in the reverse of the write order, trees, then manifests, then pages, then packs (in
 * the cache: trees, manifests, files), so a reader never finds a record whose data is
 * gone. Remote objects younger than `graceMs` stay (a teammate's push in flight), and
 * so do the pages and packs they name; packs still partly referenced stay and are
 * reported with their reclaimable bytes; before deleting pages and packs gc lists the
 * records and pages again and spares any page or pack a newly appeared one names.
 * Dedup knowledge of deleted packs is forgotten, so a later push re-uploads those
 * chunks. A shared cache (`cache.dir` outside `.cpv/`) is left alone: other
 * repositories' pointers are unknown here.
 *
 * Holds the repository lock (unless `dryRun`). Throws PointerParseError for a pointer
 * in scope that cannot be read (nothing is deleted: what it references is unknown),
 * NotAGitRepoError when git refs are asked for without git, ConfigError for an
 * unknown remote, RemoteError when the remote fails (objects deleted before stay
 * deleted; running gc again finishes), IntegrityError or FormatError for a damaged
 * cached tree that is reachable (run `cpv fsck --repair`). Idempotent.
 */
export async function gc(repo: Repo, opts: GcOptions = {}): Promise<GcResult> {
  return withRepoLock(repo.root, { command: 'gc', skip: opts.dryRun }, async () => {
    const remote = opts.cloud ? await Remote.open(repo.config, repo.root, repo.cache, opts.remote) : undefined;
    try {
      return await gcWith(repo, remote, opts);
    } finally {
      await remote?.close();
    }
  });
}

/**
 * gc over an already open remote (or none), without taking the lock: the body of
 * {@link gc}, for tests that watch the remote through a wrapping backend.
 */
export async function gcWith(repo: Repo, remote: Remote | undefined, opts: GcOptions): Promise<GcResult> {
  const scope = { allBranches: opts.scope?.allBranches ?? false, allTags: opts.scope?.allTags ?? false, allCommits: opts.scope?.allCommits ?? false };
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  const reach = await reachableContent(repo, scope);
  const cachePlan = await planCache(repo, reach.items);
  const jobs = Math.max(1, opts.jobs ?? (remote ? remoteJobs(repo, remote.name) : repo.config.jobs));
  const ctx: RemoteCtx | undefined = remote && { remote, limit: pLimit(jobs), signal: opts.signal };
  const remotePlan = ctx && (await planRemote(repo, ctx, reach.items, graceMs, opts.now ?? Date.now()));
  const plan: GcResult = {
    dryRun: true,
    cancelled: false,
    scope,
    commits: reach.commits,
    reachable: reach.items.length,
    graceMs,
    cache: cachePlan,
    ...(remotePlan ? { remote: remotePlan.result } : {}),
  };
  if (opts.dryRun) return plan;
  if (opts.confirm && !(await opts.confirm(structuredClone(plan)))) return { ...plan, cancelled: true };
  await sweepCache(repo, cachePlan.removed, opts.signal);
  if (ctx && remotePlan) await sweepRemote(ctx, remotePlan);
  return { ...plan, dryRun: false };
}

// ---- cache ----

const CACHE_KINDS: ReadonlyArray<[GcKind, string]> = [
  ['tree', 'trees'],
  ['manifest', 'manifests'],
  ['file', 'files'],
];

async function planCache(repo: Repo, items: readonly TransferItem[]): Promise<GcCacheResult> {
  const dir = repo.cache.dir;
  const result: GcCacheResult = { dir, removed: [], bytes: 0, kept: 0, unresolvedTrees: [] };
  if (!isInside(join(repo.root, '.cpv'), dir)) {
    result.skipped = `the cache ${dir} is outside this repository (cache.dir) and may be shared: other repositories' objects in it are unknown here`;
    return result;
  }
  const files = new Set<string>();
  const trees = new Set<string>();
  for (const item of items) {
    if (item.type === 'file') {
      files.add(item.oid);
      continue;
    }
    trees.add(item.oid);
    // A damaged reachable tree throws: its files cannot be told apart from garbage.
    if (await repo.cache.hasTree(item.oid)) for (const e of await repo.cache.readTree(item.oid)) files.add(e.oid);
    else result.unresolvedTrees.push(item.path);
  }
  for (const [kind, sub] of CACHE_KINDS) {
    const live = kind === 'tree' ? trees : files;
    for await (const { hex, path } of walkFanout(join(dir, sub))) {
      const oid = toFileOid(hex);
      if (live.has(oid)) {
        result.kept++;
        continue;
      }
      const size = await stat(path).then((s) => s.size, () => 0);
      result.removed.push({ kind, key: `${sub}/${hex.slice(0, 2)}/${hex.slice(2)}`, oid, size });
      result.bytes += size;
    }
  }
  return result;
}

async function sweepCache(repo: Repo, removed: readonly GcObject[], signal: AbortSignal | undefined): Promise<void> {
  // In plan order: trees, then manifests, then files.
  for (const o of removed) {
    signal?.throwIfAborted();
    await rm(join(repo.cache.dir, ...o.key.split('/')), { force: true });
  }
}

// ---- remote ----

interface RemoteCtx {
  remote: Remote;
  limit: ReturnType<typeof pLimit>;
  signal?: AbortSignal;
}

type RecordKind = 'tree' | 'manifest' | 'page';

/**
 * What a manifest, manifest page or tree index names: chunk ranges in packs, (trees)
 * the files it lists, (manifests) its pages.
 */
interface RecordRefs {
  ranges: Array<[pack: string, offset: number, length: number]>;
  files: string[];
  pages: string[];
}

interface RemotePlan {
  result: GcRemoteResult;
  trees: LayoutObject[];
  manifests: LayoutObject[];
  pages: LayoutObject[];
  packs: LayoutObject[];
  /** Keys of the records and pages gc keeps. */
  keptRecords: Set<string>;
}

/**
 * Read what a record or page names (pages read once per `pages` memo). Undefined when
 * it vanished meanwhile. Throws FormatError or IntegrityError for a damaged record or
 * page (a manifest with a missing page is damaged), RemoteError when the remote fails.
 */
async function readRefs(ctx: RemoteCtx, kind: RecordKind, oid: string, pages: PageMemo): Promise<RecordRefs | undefined> {
  try {
    if (kind === 'manifest') {
      const m = await ctx.remote.loadManifest(oid, ctx.signal, { pages });
      return { ranges: m.chunks.map(([, length, p, offset]) => [m.packs[p]!, offset, length]), files: [], pages: m.pages ?? [] };
    }
    if (kind === 'page') {
      let pending = pages.get(oid);
      if (!pending) pages.set(oid, (pending = ctx.remote.loadPage(oid, ctx.signal)));
      const page = await pending;
      return { ranges: page.chunks.map(([, length, p, offset]) => [page.packs[p]!, offset, length]), files: [], pages: [] };
    }
    const { index, entries } = await ctx.remote.loadTree(oid, ctx.signal);
    const ranges: RecordRefs['ranges'] = [];
    index.entries.forEach((loc, i) => loc && ranges.push([index.packs[loc[0]]!, loc[1], entries[i]!.size]));
    return { ranges, files: entries.map((e) => e.oid), pages: [] };
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/** A record that is there but cannot be used (malformed, or its tree does not hash to its oid). */
function isDamage(err: unknown): err is FormatError | IntegrityError {
  return err instanceof FormatError || err instanceof IntegrityError;
}

/** Chunk ranges by pack: offset → length. */
class RangeBook {
  private readonly byPack = new Map<string, Map<number, number>>();

  add(refs: RecordRefs): void {
    for (const [pack, offset, length] of refs.ranges) {
      let m = this.byPack.get(pack);
      if (!m) this.byPack.set(pack, (m = new Map()));
      m.set(offset, length);
    }
  }

  has(pack: string): boolean {
    return this.byPack.has(pack);
  }

  /** Bytes of ranges in `pack` that this book has and `other` does not. */
  bytesNotIn(pack: string, other: RangeBook): number {
    let n = 0;
    for (const [offset, length] of this.byPack.get(pack) ?? []) if (!other.byPack.get(pack)?.has(offset)) n += length;
    return n;
  }
}

async function planRemote(repo: Repo, ctx: RemoteCtx, items: readonly TransferItem[], graceMs: number, now: number): Promise<RemotePlan> {
  const { remote } = ctx;
  const listed = await listLayout(remote.backend, undefined, ctx.signal);
  const byKey = new Map(listed.map((l) => [l.key, l]));
  // An object without a usable modification time cannot be proven old: it stays.
  const young = (l: LayoutObject): boolean => !(l.mtimeMs > 0) || now - l.mtimeMs < graceMs;
  const unreadable: GcRemoteResult['unreadable'] = [];
  const refs = new Map<string, RecordRefs | undefined>();
  // Versions of a file share most pages: each is read once.
  const pageMemo: PageMemo = new Map();
  /** Read records and pages (each once), noting damaged ones. */
  const read = async (records: readonly LayoutObject[]): Promise<void> => {
    await Promise.all(
      records
        .filter((l) => !refs.has(l.key))
        .map((l) =>
          ctx.limit(async () => {
            try {
              refs.set(l.key, await readRefs(ctx, l.kind as RecordKind, l.oid, pageMemo));
            } catch (err) {
              if (!isDamage(err)) throw err;
              refs.set(l.key, undefined);
              unreadable.push({ key: l.key, reason: err.message });
            }
          }),
        ),
    );
  };

  // Reachable files: file pointers, and the files of reachable directories (from the
  // remote tree index, else the cached tree).
  const liveFiles = new Set(items.filter((i) => i.type === 'file').map((i) => i.oid));
  const liveTrees = new Set(items.filter((i) => i.type === 'dir').map((i) => i.oid));
  const reachableTrees = [...liveTrees].map((t) => byKey.get(remoteKeys.tree(t))).filter((l): l is LayoutObject => l !== undefined);
  await read(reachableTrees);
  for (const t of liveTrees) {
    const r = refs.get(remoteKeys.tree(t));
    if (r) r.files.forEach((f) => liveFiles.add(f));
    else if (await repo.cache.hasTree(t)) {
      try {
        for (const e of await repo.cache.readTree(t)) liveFiles.add(e.oid);
      } catch (err) {
        if (!isDamage(err)) throw err;
        unreadable.push({ key: `cache ${repo.cache.treePath(t)}`, reason: err.message });
      }
    }
  }

  // Records: reachable or young stay. A young tree keeps the manifests of its files too.
  const reachableFiles = new Set(liveFiles);
  const trees = listed.filter((l) => l.kind === 'tree');
  const keptTrees = trees.filter((l) => liveTrees.has(l.oid) || young(l));
  await read(keptTrees);
  for (const l of keptTrees) refs.get(l.key)?.files.forEach((f) => liveFiles.add(f));
  const manifests = listed.filter((l) => l.kind === 'manifest');
  const keptManifests = manifests.filter((l) => liveFiles.has(l.oid) || young(l));
  await read(keptManifests);
  // Pages: named by a kept manifest, or young. A young page keeps the packs it names.
  const namedPages = new Set<string>();
  for (const l of keptManifests) refs.get(l.key)?.pages.forEach((p) => namedPages.add(p));
  const pages = listed.filter((l) => l.kind === 'page');
  const keptPages = pages.filter((l) => namedPages.has(l.oid) || young(l));
  await read(keptPages.filter((l) => !namedPages.has(l.oid)));
  const keptSources = [...keptTrees, ...keptManifests, ...keptPages.filter((l) => !namedPages.has(l.oid))];
  const kept = new RangeBook();
  for (const l of keptSources) {
    const r = refs.get(l.key);
    if (r) kept.add(r);
  }
  const keptRecords = new Set([...keptTrees, ...keptManifests, ...keptPages].map((l) => l.key));
  // Pages and packs reachable records need (the others stay only for young ones, or are young).
  const livePacks = new Set<string>();
  const livePages = new Set<string>();
  for (const l of [...keptTrees, ...keptManifests]) {
    if (l.kind === 'tree' ? !liveTrees.has(l.oid) : !reachableFiles.has(l.oid)) continue;
    refs.get(l.key)?.ranges.forEach(([p]) => livePacks.add(p));
    refs.get(l.key)?.pages.forEach((p) => livePages.add(p));
  }
  const goneTrees = trees.filter((l) => !keptRecords.has(l.key));
  const goneManifests = manifests.filter((l) => !keptRecords.has(l.key));

  // What the deleted records referenced, for the reclaimable bytes of kept packs. A
  // damaged record being deleted needs nothing: it only counts for less.
  const dropped = new RangeBook();
  await Promise.all(
    [...goneTrees, ...goneManifests].map((l) =>
      ctx.limit(async () => {
        const r = await readRefs(ctx, l.kind as RecordKind, l.oid, pageMemo).catch((err: unknown) => {
          if (isDamage(err)) return undefined;
          throw err;
        });
        if (r) dropped.add(r);
      }),
    ),
  );

  const packs = listed.filter((l) => l.kind === 'pack');
  // With a kept record or page unreadable, which pages and packs it needs is unknown:
  // delete none.
  const gonePages = unreadable.length > 0 ? [] : pages.filter((l) => !keptRecords.has(l.key));
  const gonePacks = unreadable.length > 0 ? [] : packs.filter((l) => !kept.has(l.oid) && !young(l));
  const partial: GcPartialPack[] = [];
  for (const l of packs) {
    if (!kept.has(l.oid)) continue;
    const reclaimable = dropped.bytesNotIn(l.oid, kept);
    if (reclaimable > 0) partial.push({ key: l.key, pack: l.oid, size: l.size, reclaimable });
  }
  const asObject = (l: LayoutObject): GcObject => ({ kind: l.kind, key: l.key, oid: l.oid, size: l.size });
  const removed = [...goneTrees, ...goneManifests, ...gonePages, ...gonePacks].map(asObject);
  const youngKept = [
    ...keptTrees.filter((l) => !liveTrees.has(l.oid)),
    ...keptManifests.filter((l) => !reachableFiles.has(l.oid)),
    ...pages.filter((l) => !livePages.has(l.oid) && keptRecords.has(l.key)),
    ...packs.filter((l) => !livePacks.has(l.oid) && (kept.has(l.oid) || young(l))),
  ].map(asObject);
  const result: GcRemoteResult = {
    remote: remote.name,
    location: remote.backend.location,
    removed,
    bytes: removed.reduce((n, o) => n + o.size, 0),
    kept: { trees: keptTrees.length, manifests: keptManifests.length, pages: pages.length - gonePages.length, packs: packs.length - gonePacks.length },
    young: youngKept,
    partial,
    reclaimableBytes: partial.reduce((n, p) => n + p.reclaimable, 0),
    unreadable,
    spared: 0,
  };
  return { result, trees: goneTrees, manifests: goneManifests, pages: gonePages, packs: gonePacks, keptRecords };
}

async function sweepRemote(ctx: RemoteCtx, plan: RemotePlan): Promise<void> {
  const { remote, signal } = ctx;
  const removeAll = (objects: readonly LayoutObject[]): Promise<unknown> =>
    Promise.all(objects.map((l) => ctx.limit(() => (signal?.throwIfAborted(), remote.backend.remove(l.key, { signal })))));
  // Reverse write order: once a tree or manifest is gone nobody is sent to its pages
  // and packs, once a page is gone nobody is sent to its packs.
  await removeAll(plan.trees);
  await removeAll(plan.manifests);
  if (plan.pages.length === 0 && plan.packs.length === 0) return;

  // A second look: records and pages written (or written again) since the listing may
  // name pages or packs the plan would delete; spare those. With one unreadable, spare
  // everything.
  const planned = new Set([...plan.pages, ...plan.packs].map((l) => l.key));
  const late = (await listLayout(remote.backend, ['trees/', 'manifests/', 'pages/'], signal)).filter((l) => !plan.keptRecords.has(l.key) && !planned.has(l.key));
  const sparePages = new Set<string>();
  const sparePacks = new Set<string>();
  // A fresh memo: a page missing at planning time may have been written since.
  const pageMemo: PageMemo = new Map();
  let all = false;
  await Promise.all(
    late.map((l) =>
      ctx.limit(async () => {
        try {
          const r = await readRefs(ctx, l.kind as RecordKind, l.oid, pageMemo);
          r?.ranges.forEach(([pack]) => sparePacks.add(pack));
          r?.pages.forEach((p) => sparePages.add(p));
        } catch (err) {
          if (!isDamage(err)) throw err;
          all = true;
        }
      }),
    ),
  );
  // A spared page keeps what it names too.
  await Promise.all(
    plan.pages
      .filter((l) => sparePages.has(l.oid))
      .map((l) =>
        ctx.limit(async () => {
          try {
            (await readRefs(ctx, 'page', l.oid, pageMemo))?.ranges.forEach(([pack]) => sparePacks.add(pack));
          } catch (err) {
            if (!isDamage(err)) throw err;
            all = true;
          }
        }),
      ),
  );
  const pages = all ? [] : plan.pages.filter((l) => !sparePages.has(l.oid));
  const packs = all ? [] : plan.packs.filter((l) => !sparePacks.has(l.oid));
  const going = new Set([...pages, ...packs]);
  const spared = new Set([...plan.pages, ...plan.packs].filter((l) => !going.has(l)).map((l) => l.key));
  if (spared.size > 0) {
    const r = plan.result;
    r.spared = spared.size;
    r.removed = r.removed.filter((o) => !spared.has(o.key));
    r.bytes = r.removed.reduce((n, o) => n + o.size, 0);
    r.kept.pages += plan.pages.length - pages.length;
    r.kept.packs += plan.packs.length - packs.length;
  }
  await removeAll(pages);
  // Forget first: a later push must never reference a chunk in a deleted pack.
  await remote.forgetPacks(new Set(packs.map((l) => l.oid)));
  await removeAll(packs);
}
