import pLimit from 'p-limit';
import { NotFoundError } from '../errors.js';
import type { RemoteManifest } from '../store/manifest.js';
import type { TreeEntry } from '../store/tree.js';
import { remoteKeys, type PageMemo, type Remote } from '../remote/remote.js';
import { push as pushObjects, type PushResult } from '../transfer/push.js';
import type { ProgressEvent, TransferItem } from '../transfer/types.js';
import type { Repo } from './repo.js';
import { addCounts, remoteJobs, routeItems, withRemote } from './routing.js';

/** Something a remote must hold for an artifact to be pullable, and does not. */
export interface MissingObject {
  /** The tracked path it belongs to (a file inside a directory for nested manifests). */
  path: string;
  /** The file or tree oid whose record is missing or points at the missing pack. */
  oid: string;
  what: 'manifest' | 'tree' | 'pack';
  /** Backend key of the missing object (`packs/ab/cdef…`). */
  key: string;
  /** The remote that lacks it, when objects go to several (team remotes). */
  remote?: string;
}

/** What a remote proved to hold for a list of items. */
export interface RemoteProof {
  missing: MissingObject[];
  /** Distinct packs the items reference (each checked to exist). */
  packs: number;
}

type TreeRecord = { index: { packs: string[]; entries: Array<[number, number] | null> }; entries: TreeEntry[] };

/**
 * Proves that a remote holds every object items reference: the manifest of each file,
 * the tree index of each directory, the manifest of each multi-chunk file inside a
 * directory, and every pack any of those names. Reads records and asks about packs at
 * most `jobs` at a time; remembers answers, so checking several versions that share
 * objects costs no more than checking their union. Read-only.
 */
export class RemoteChecker {
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly manifests = new Map<string, Promise<RemoteManifest | undefined>>();
  private readonly trees = new Map<string, Promise<TreeRecord | undefined>>();
  private readonly packs = new Map<string, Promise<boolean>>();
  /** Pages of paged manifests: versions of a file share most of them. */
  private readonly pages: PageMemo = new Map();

  constructor(
    private readonly remote: Remote,
    jobs: number,
    private readonly signal?: AbortSignal,
  ) {
    this.limit = pLimit(Math.max(1, jobs));
  }

  /**
   * The objects the remote lacks for `items` (sorted by path, then key), and how many
   * packs were checked. Throws RemoteError when the remote cannot be read, FormatError
   * or IntegrityError when a record on it is damaged (a damaged record holds nothing).
   */
  async check(items: readonly TransferItem[], onProgress?: (e: ProgressEvent) => void): Promise<RemoteProof> {
    const missing: MissingObject[] = [];
    // pack → the (path, oid) records that name it
    const users = new Map<string, Array<{ path: string; oid: string }>>();
    const use = (packs: readonly string[], path: string, oid: string): void => {
      for (const p of packs) users.set(p, [...(users.get(p) ?? []), { path, oid }]);
    };
    let done = 0;
    await Promise.all(
      items.map(async (item) => {
        if (item.type === 'file') {
          const m = await this.manifest(item.oid);
          if (!m) missing.push({ path: item.path, oid: item.oid, what: 'manifest', key: remoteKeys.manifest(item.oid) });
          else use(m.packs, item.path, item.oid);
        } else {
          const t = await this.tree(item.oid);
          if (!t) missing.push({ path: item.path, oid: item.oid, what: 'tree', key: remoteKeys.tree(item.oid) });
          else {
            use(t.index.packs, item.path, item.oid);
            // Multi-chunk files have no location in the tree index: their manifests do.
            await Promise.all(
              t.entries.map(async (e, i) => {
                if (t.index.entries[i] !== null || e.size === 0) return;
                const path = `${item.path}/${e.path}`;
                const m = await this.manifest(e.oid);
                if (!m) missing.push({ path, oid: e.oid, what: 'manifest', key: remoteKeys.manifest(e.oid) });
                else use(m.packs, path, e.oid);
              }),
            );
          }
        }
        onProgress?.({ phase: 'verify', done: ++done, total: items.length, path: item.path });
      }),
    );
    await Promise.all(
      [...users].map(async ([pack, refs]) => {
        if (await this.pack(pack)) return;
        const seen = new Set<string>();
        for (const r of refs) {
          if (seen.has(r.path)) continue;
          seen.add(r.path);
          missing.push({ path: r.path, oid: r.oid, what: 'pack', key: remoteKeys.pack(pack) });
        }
      }),
    );
    missing.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { missing, packs: users.size };
  }

  /** Distinct packs asked about so far. */
  get packsChecked(): number {
    return this.packs.size;
  }

  private manifest(oid: string): Promise<RemoteManifest | undefined> {
    return memo(this.manifests, oid, () => this.limit(() => absentAsUndefined(this.remote.loadManifest(oid, this.signal, { pages: this.pages }))));
  }

  private tree(oid: string): Promise<TreeRecord | undefined> {
    return memo(this.trees, oid, () => this.limit(() => absentAsUndefined(this.remote.loadTree(oid, this.signal))));
  }

  private pack(pack: string): Promise<boolean> {
    return memo(this.packs, pack, () => this.limit(() => this.remote.backend.exists(remoteKeys.pack(pack), { signal: this.signal })));
  }
}

function memo<T>(map: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let p = map.get(key);
  if (!p) {
    p = make();
    map.set(key, p);
  }
  return p;
}

/** An absent record is an answer (the remote lacks it), not a failure. */
async function absentAsUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/** Objects one git ref (a version tag, a pushed branch) needs on the remote. */
export interface PublishGroup {
  /** The ref, for messages: a tag name or a ref such as `refs/heads/main`. */
  ref: string;
  items: TransferItem[];
}

/** Whether one group may be published. */
export interface PublishOutcome {
  ref: string;
  /** True when the remote holds everything the group needs (with dryRun: would hold). */
  ok: boolean;
  /** Items that are neither on the remote nor in the local cache: nothing can upload them. */
  unavailable: Array<{ path: string; oid: string; type: 'file' | 'dir' }>;
  /** What the remote still lacks after the upload (empty with dryRun: nothing was checked). */
  missing: MissingObject[];
}

export interface PublishResult {
  upload: PushResult;
  groups: PublishOutcome[];
  /** Distinct packs checked. */
  packs: number;
}

export interface PublishOptions {
  jobs: number;
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

/**
 * Make the remote hold everything each group needs, then prove it. Items the remote
 * lacks are uploaded from the local cache (only for groups whose every item is on
 * the remote or in the cache: a group with an unavailable item is refused and
 * uploads nothing of its own). Then every remaining group is checked with
 * RemoteChecker; it is ok only if nothing is missing. With `dryRun`, reports what
 * would be uploaded and which groups would be refused, and checks nothing.
 * Throws RemoteError when the remote fails, IntegrityError for a corrupt cache object.
 */
export async function publish(repo: Repo, remote: Remote, groups: readonly PublishGroup[], opts: PublishOptions): Promise<PublishResult> {
  const limit = pLimit(Math.max(1, opts.jobs));
  const unique = new Map<string, TransferItem>();
  for (const g of groups) for (const i of g.items) if (!unique.has(i.oid)) unique.set(i.oid, { oid: i.oid, type: i.type, size: i.size, path: i.path });
  // Where each item is: on the remote already, or at least in the cache.
  const where = new Map<string, 'remote' | 'cache' | 'nowhere'>();
  await Promise.all(
    [...unique.values()].map((item) =>
      limit(async () => {
        opts.signal?.throwIfAborted();
        const onRemote = item.type === 'dir' ? await remote.hasTree(item.oid) : await remote.hasManifest(item.oid);
        where.set(item.oid, onRemote ? 'remote' : (await isCached(repo, item)) ? 'cache' : 'nowhere');
      }),
    ),
  );
  const outcomes: PublishOutcome[] = groups.map((g) => ({
    ref: g.ref,
    ok: true,
    unavailable: g.items.filter((i) => where.get(i.oid) === 'nowhere').map((i) => ({ path: i.path, oid: i.oid, type: i.type })),
    missing: [],
  }));
  for (const o of outcomes) if (o.unavailable.length > 0) o.ok = false;

  const toUpload = new Map<string, TransferItem>();
  groups.forEach((g, i) => {
    if (!outcomes[i]!.ok) return;
    for (const item of g.items) if (where.get(item.oid) === 'cache') toUpload.set(item.oid, unique.get(item.oid)!);
  });
  const upload = await pushObjects(repo.cache, remote, [...toUpload.values()], {
    chunker: repo.config.chunker,
    packSize: repo.config.packSize,
    jobs: opts.jobs,
    dryRun: opts.dryRun,
    signal: opts.signal,
    onProgress: opts.onProgress,
  });
  if (opts.dryRun) return { upload, groups: outcomes, packs: 0 };

  const checker = new RemoteChecker(remote, opts.jobs, opts.signal);
  for (const [i, g] of groups.entries()) {
    const o = outcomes[i]!;
    if (!o.ok) continue;
    o.missing = (await checker.check(g.items)).missing;
    o.ok = o.missing.length === 0;
  }
  return { upload, groups: outcomes, packs: checker.packsChecked };
}

/** Whether the cache holds all of an item's content (a directory: its tree and every file). */
async function isCached(repo: Repo, item: TransferItem): Promise<boolean> {
  if (item.type === 'file') return repo.cache.hasFile(item.oid);
  if (!(await repo.cache.hasTree(item.oid))) return false;
  const entries = await repo.cache.readTree(item.oid);
  for (const e of entries) if (!(await repo.cache.hasFile(e.oid))) return false;
  return true;
}

/**
 * publish (see publish.ts) across remotes: each group's items go to the remote they
 * route to (the explicit one, else team remotes, else the default); a group is ok
 * only when every remote it touches holds all of its part.
 */
export async function publishRouted(
  repo: Repo,
  explicit: string | undefined,
  groups: readonly PublishGroup[],
  opts: Omit<PublishOptions, 'jobs'> & { jobs?: number },
): Promise<PublishResult & { remotes: string[] }> {
  const all = groups.flatMap((g, gi) => g.items.map((item) => ({ ...item, gi })));
  const outcomes: PublishOutcome[] = groups.map((g) => ({ ref: g.ref, ok: true, unavailable: [], missing: [] }));
  let upload: PushResult | undefined;
  let packs = 0;
  const remotes: string[] = [];
  for (const route of await routeItems(repo, explicit, all)) {
    const part: PublishGroup[] = groups.map((g, gi) => ({ ref: g.ref, items: route.items.filter((i) => i.gi === gi).map(({ gi: _gi, ...i }) => i) }));
    const used = part.map((g, gi) => ({ g, gi })).filter(({ g }) => g.items.length > 0);
    if (used.length === 0 && all.length > 0) continue;
    await withRemote(repo, route.remote, async (remote) => {
      remotes.push(remote.name);
      const r = await publish(
        repo,
        remote,
        used.map(({ g }) => g),
        { ...opts, jobs: opts.jobs ?? remoteJobs(repo, remote.name) },
      );
      upload = upload === undefined ? r.upload : addCounts(upload, r.upload);
      packs += r.packs;
      r.groups.forEach((o, k) => {
        const out = outcomes[used[k]!.gi]!;
        out.ok &&= o.ok;
        out.unavailable.push(...o.unavailable);
        out.missing.push(...o.missing.map((m) => ({ ...m, remote: remote.name })));
      });
    });
  }
  return { upload: upload!, groups: outcomes, packs, remotes };
}
