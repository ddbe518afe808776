import { FormatError, PointerParseError } from '../errors.js';
import { listTagRefs, pushRefs, requireGit } from '../git/git.js';
import { hasVersionBlock, parseVersionBlock } from '../pointer/version-block.js';
import { fetchObjects, type FetchResult } from '../transfer/fetch.js';
import { push as pushObjects, type PushResult } from '../transfer/push.js';
import type { ProgressEvent, TransferItem } from '../transfer/types.js';
import { Remote } from '../remote/remote.js';
import { checkout, type CheckoutResult } from './checkout.js';
import { checkInnerPaths, resolveTargets, type Target } from './pointers.js';
import { publishRouted, type MissingObject, type PublishGroup } from './publish.js';
import { addCounts, remoteJobs, routeItems, withRemote } from './routing.js';
import { withRepoLock } from './lock.js';
import type { Repo } from './repo.js';
import { checkTagMatchesCommit, itemsOfArtifacts, pointersAtCommit } from './tags.js';

export interface SyncOptions {
  cwd: string;
  targets: readonly string[];
  /** Remote name; the default remote when undefined. */
  remote?: string;
  /** Parallel requests (default: config). */
  jobs?: number;
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

function itemsOf(targets: Target[]): TransferItem[] {
  return targets.map((t) => ({
    oid: t.pointer.oid,
    type: t.pointer.type,
    size: t.pointer.size,
    path: t.path,
    ...(t.pointer.name !== undefined ? { name: t.pointer.name } : {}),
    ...(t.only ? { only: t.only } : {}),
  }));
}

/** Results of a transfer that may span several remotes (team remotes, see routing). */
export type Routed<T> = T & {
  /** The remote, or the remotes joined with ", " when items went to several. */
  remote: string;
  /** Every remote used, in order. */
  remotes: string[];
};

/** Run `fn` once per remote the items route to and add up the counters. */
async function perRemote<T extends object>(repo: Repo, explicit: string | undefined, items: readonly TransferItem[], fn: (remote: Remote, items: TransferItem[]) => Promise<T>): Promise<Routed<T>> {
  let total: T | undefined;
  const remotes: string[] = [];
  for (const group of await routeItems(repo, explicit, items)) {
    const r = await withRemote(repo, group.remote, async (remote) => {
      remotes.push(remote.name);
      return fn(remote, group.items);
    });
    total = total === undefined ? r : addCounts(total, r);
  }
  return { ...total!, remote: remotes.join(', '), remotes };
}

/**
 * Upload what the targets' pointers reference (all pointers when no targets) to the
 * remote: the one named, else each artifact's team remote or the default remote.
 * Only chunks the remote lacks move. See transfer/push for the guarantees. Holds the
 * repository lock (unless `dryRun`): ConflictError while another cpv process holds it.
 */
export async function push(repo: Repo, opts: SyncOptions): Promise<Routed<PushResult>> {
  if (opts.remote !== undefined) Remote.resolveName(repo.config, opts.remote); // a wrong name is an error before the lock
  return withRepoLock(repo.root, { command: 'push', skip: opts.dryRun }, () => pushLocked(repo, opts));
}

async function pushLocked(repo: Repo, opts: SyncOptions): Promise<Routed<PushResult>> {
  const targets = await resolveTargets(repo, opts.cwd, opts.targets);
  await checkInnerPaths(repo, targets);
  // Pushing part of a directory is pushing the directory: trees are atomic on the remote.
  const items = itemsOf(targets).map(({ only: _only, ...i }) => i);
  return perRemote(repo, opts.remote, items, (remote, its) =>
    pushObjects(repo.cache, remote, its, {
      chunker: repo.config.chunker,
      packSize: repo.config.packSize,
      jobs: jobsFor(repo, remote.name, opts.jobs),
      dryRun: opts.dryRun,
      signal: opts.signal,
      onProgress: opts.onProgress,
    }),
  );
}

/**
 * Download what the targets' pointers reference into the cache, verified (remotes as
 * push). Holds the repository lock (unless `dryRun`).
 */
export async function fetch(repo: Repo, opts: SyncOptions): Promise<Routed<FetchResult>> {
  if (opts.remote !== undefined) Remote.resolveName(repo.config, opts.remote);
  return withRepoLock(repo.root, { command: 'fetch', skip: opts.dryRun }, () => fetchLocked(repo, opts));
}

async function fetchLocked(repo: Repo, opts: SyncOptions): Promise<Routed<FetchResult>> {
  const targets = await resolveTargets(repo, opts.cwd, opts.targets);
  return fetchItems(repo, itemsOf(targets), opts);
}

/**
 * Download arbitrary items (e.g. the pointers of an older version) into the cache,
 * verified, each from the remote it routes to.
 */
export async function fetchItems(repo: Repo, items: readonly TransferItem[], opts: Omit<SyncOptions, 'cwd' | 'targets'>): Promise<Routed<FetchResult>> {
  return perRemote(repo, opts.remote, items, (remote, its) =>
    fetchObjects(repo.cache, remote, its, {
      jobs: jobsFor(repo, remote.name, opts.jobs),
      dryRun: opts.dryRun,
      signal: opts.signal,
      onProgress: opts.onProgress,
    }),
  );
}

/**
 * fetch, then checkout, under one hold of the repository lock (unless `dryRun`). If
 * the fetch fails (missing or corrupt objects), the workspace is not touched.
 */
export async function pull(repo: Repo, opts: SyncOptions & { force?: boolean }): Promise<{ fetch: Routed<FetchResult>; checkout: CheckoutResult }> {
  if (opts.remote !== undefined) Remote.resolveName(repo.config, opts.remote);
  return withRepoLock(repo.root, { command: 'pull', skip: opts.dryRun }, async () => {
    const fetched = await fetch(repo, opts);
    const co = await checkout(repo, { cwd: opts.cwd, targets: opts.targets, force: opts.force, dryRun: opts.dryRun, signal: opts.signal, onProgress: opts.onProgress });
    return { fetch: fetched, checkout: co };
  });
}

export interface PushTagsOptions {
  /** cpv remote name; the default remote when undefined. */
  remote?: string;
  /** git remote (name or URL) that gets the tags; default `origin`. */
  gitRemote?: string;
  /** Only these tags (default: every version tag). */
  only?: readonly string[];
  jobs?: number;
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

/** What happened to one version tag. */
export interface TagPushOutcome {
  tag: string;
  /** pushed: objects proven on the remote, tag pushed to git; would-push: dryRun; refused: not pushed. */
  status: 'pushed' | 'would-push' | 'refused';
  /** Artifacts neither on the remote nor in the local cache. */
  unavailable: Array<{ path: string; oid: string; type: 'file' | 'dir' }>;
  /** Objects the remote still lacks after the upload. */
  missing: MissingObject[];
  /** Why the tag could not even be read (malformed block, tag and commit disagree). */
  error?: string;
}

export interface PushTagsResult {
  remote: string;
  gitRemote: string;
  upload: PushResult;
  tags: TagPushOutcome[];
}

/**
 * Publish every version tag: upload what each references (the artifacts listed in
 * its block, checked against the pointers of the tagged commit, content from the
 * cache), prove the remote holds all of it, and only then push the proven tags to
 * the git remote (`git push GITREMOTE refs/tags/T...`). A tag that cannot be read,
 * disagrees with its commit, references content that is neither on the remote nor
 * in the cache, or is still incomplete on the remote after the upload is refused
 * (not pushed to git); the others go ahead. Returns each tag's outcome; callers
 * decide whether a refusal is an error. With dryRun nothing is uploaded or pushed.
 * Throws RemoteError, GitError (git push failed), NotAGitRepoError. Holds the
 * repository lock (unless `dryRun`), which the pre-push hook run by its `git push`
 * shares.
 */
export async function pushTags(repo: Repo, opts: PushTagsOptions): Promise<PushTagsResult> {
  return withRepoLock(repo.root, { command: 'push --tags', skip: opts.dryRun }, () => pushTagsLocked(repo, opts));
}

async function pushTagsLocked(repo: Repo, opts: PushTagsOptions): Promise<PushTagsResult> {
  const top = await requireGit(repo.root);
  const gitRemote = opts.gitRemote ?? 'origin';
  const outcomes: TagPushOutcome[] = [];
  const groups: PublishGroup[] = [];
  const only = opts.only === undefined ? undefined : new Set(opts.only);
  for (const t of await listTagRefs(repo.root)) {
    if (t.type !== 'tag' || !hasVersionBlock(t.message) || (only && !only.has(t.name))) continue;
    try {
      const { block } = parseVersionBlock(t.message, t.name)!;
      if (!t.commit) throw new FormatError(`version tag ${JSON.stringify(t.name)} does not point at a commit`);
      checkTagMatchesCommit(t.name, t.commit, block.artifacts, await pointersAtCommit(repo, top, t.commit));
      groups.push({ ref: t.name, items: itemsOfArtifacts(block.artifacts) });
    } catch (err) {
      if (!(err instanceof FormatError || err instanceof PointerParseError)) throw err;
      outcomes.push({ tag: t.name, status: 'refused', unavailable: [], missing: [], error: err.message });
    }
  }
  const empty: PushResult = { upToDate: 0, uploaded: 0, files: 0, chunks: 0, bytes: 0, dedupBytes: 0, packs: 0, wireBytes: 0 };
  if (groups.length === 0) return { remote: opts.remote ?? repo.config.remote ?? '', gitRemote, upload: empty, tags: outcomes };
  const r = await publishRouted(repo, opts.remote, groups, { jobs: opts.jobs, dryRun: opts.dryRun, signal: opts.signal, onProgress: opts.onProgress });
  for (const g of r.groups) {
    outcomes.push({ tag: g.ref, status: !g.ok ? 'refused' : opts.dryRun ? 'would-push' : 'pushed', unavailable: g.unavailable, missing: g.missing });
  }
  outcomes.sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  const proven = outcomes.filter((o) => o.status === 'pushed').map((o) => `refs/tags/${o.tag}`);
  if (!opts.dryRun) await pushRefs(repo.root, gitRemote, proven);
  return { remote: r.remotes.join(', '), gitRemote, upload: r.upload, tags: outcomes };
}

/** Parallel requests: the flag, else the remote's own `jobs`, else `core.jobs`. */
function jobsFor(repo: Repo, remote: string, flag: number | undefined): number {
  return flag ?? remoteJobs(repo, remote);
}
