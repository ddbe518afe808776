import { fetchObjects, type FetchResult } from '../transfer/fetch.js';
import { push as pushObjects, type PushResult } from '../transfer/push.js';
import type { ProgressEvent, TransferItem } from '../transfer/types.js';
import { Remote } from '../remote/remote.js';
import { checkout, type CheckoutResult } from './checkout.js';
import { checkInnerPaths, resolveTargets, type Target } from './pointers.js';
import type { Repo } from './repo.js';

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
    ...(t.only ? { only: t.only } : {}),
  }));
}

async function withRemote<T>(repo: Repo, name: string | undefined, fn: (r: Remote) => Promise<T>): Promise<T> {
  const remote = await Remote.open(repo.config, repo.root, repo.cache, name);
  try {
    return await fn(remote);
  } finally {
    await remote.close();
  }
}

/**
 * Upload what the targets' pointers reference (all pointers when no targets) to the
 * remote. Only chunks the remote lacks move. See transfer/push for the guarantees.
 */
export async function push(repo: Repo, opts: SyncOptions): Promise<PushResult & { remote: string }> {
  const targets = await resolveTargets(repo, opts.cwd, opts.targets);
  await checkInnerPaths(repo, targets);
  // Pushing part of a directory is pushing the directory: trees are atomic on the remote.
  const items = itemsOf(targets).map(({ only: _only, ...i }) => i);
  return withRemote(repo, opts.remote, async (remote) => ({
    remote: remote.name,
    ...(await pushObjects(repo.cache, remote, items, {
      chunker: repo.config.chunker,
      packSize: repo.config.packSize,
      jobs: jobsFor(repo, remote.name, opts.jobs),
      dryRun: opts.dryRun,
      signal: opts.signal,
      onProgress: opts.onProgress,
    })),
  }));
}

/** Download what the targets' pointers reference into the cache, verified. */
export async function fetch(repo: Repo, opts: SyncOptions): Promise<FetchResult & { remote: string }> {
  const targets = await resolveTargets(repo, opts.cwd, opts.targets);
  return withRemote(repo, opts.remote, async (remote) => ({
    remote: remote.name,
    ...(await fetchObjects(repo.cache, remote, itemsOf(targets), {
      jobs: jobsFor(repo, remote.name, opts.jobs),
      dryRun: opts.dryRun,
      signal: opts.signal,
      onProgress: opts.onProgress,
    })),
  }));
}

/**
 * fetch, then checkout. If the fetch fails (missing or corrupt objects), the
 * workspace is not touched.
 */
export async function pull(repo: Repo, opts: SyncOptions & { force?: boolean }): Promise<{ fetch: FetchResult & { remote: string }; checkout: CheckoutResult }> {
  const fetched = await fetch(repo, opts);
  const co = await checkout(repo, { cwd: opts.cwd, targets: opts.targets, force: opts.force, dryRun: opts.dryRun, signal: opts.signal, onProgress: opts.onProgress });
  return { fetch: fetched, checkout: co };
}


/** Parallel requests: the flag, else the remote's own `jobs`, else `core.jobs`. */
function jobsFor(repo: Repo, remote: string, flag: number | undefined): number {
  const own = repo.config.remotes[remote]?.jobs;
  return flag ?? (typeof own === 'number' ? own : repo.config.jobs);
}
