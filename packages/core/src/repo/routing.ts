import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { emptyRegistry, parseRegistry, REGISTRY_FILE, serializeRegistry, teamOf, type Registry } from '../registry/registry.js';
import { writeAtomic } from '../util/fs-atomic.js';
import { Remote } from '../remote/remote.js';
import type { Repo } from './repo.js';

/**
 * Read `.cpv/registry.yaml` of the repository; an empty registry when there is none.
 * Throws FormatError naming the file when it is malformed.
 */
export async function readRegistry(repo: Repo): Promise<Registry> {
  let text: string;
  try {
    text = await readFile(join(repo.root, REGISTRY_FILE), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return emptyRegistry();
    throw new ConfigError(`cannot read ${REGISTRY_FILE}: ${(err as Error).message}`, { hint: `check that ${REGISTRY_FILE} is a readable file`, cause: err });
  }
  return parseRegistry(text, REGISTRY_FILE);
}

/**
 * The name an artifact routes by: the registry's name for its path (the registry is
 * the source of truth), else the name its pointer records. A pointer without a name
 * of its own (its "name" is its path) routes nowhere.
 */
export function routingName(registry: Registry, item: { path: string; name?: string }): string | undefined {
  for (const section of [registry.models, registry.data]) {
    for (const [name, e] of Object.entries(section)) if (e.path === item.path) return name;
  }
  return item.name !== undefined && item.name !== item.path ? item.name : undefined;
}

/** Write `.cpv/registry.yaml` atomically. */
export async function writeRegistry(repo: Repo, reg: Registry): Promise<void> {
  await writeAtomic(join(repo.root, REGISTRY_FILE), Buffer.from(serializeRegistry(reg)), { mode: 0o644 });
}

/**
 * The remote an artifact's objects live on: the one asked for, else its team's
 * remote (`team/name` with `teams.team.remote` in the registry), else the default
 * remote. Undefined means "the default remote" (Remote.open reports when none is set).
 */
export function remoteFor(registry: Registry, name: string | undefined, explicit: string | undefined): string | undefined {
  if (explicit !== undefined) return explicit;
  const team = name === undefined ? undefined : teamOf(name);
  return team === undefined ? undefined : registry.teams[team]?.remote;
}

/**
 * Split items (paths relative to the repository root) by the remote each routes to
 * (remoteFor of routingName), in first-seen order. With no items, one empty group for
 * the explicit or default remote, so callers still open (and check) it. Throws
 * ConfigError when a team's remote is not configured in this clone.
 */
export async function routeItems<T extends { path: string; name?: string }>(repo: Repo, explicit: string | undefined, items: readonly T[]): Promise<Array<{ remote: string | undefined; items: T[] }>> {
  const registry = explicit === undefined ? await readRegistry(repo) : emptyRegistry();
  const groups = new Map<string | undefined, T[]>();
  for (const item of items) {
    const name = routingName(registry, item);
    const r = remoteFor(registry, name, explicit);
    if (r !== undefined && !repo.config.remotes[r]) {
      throw new ConfigError(`${name} belongs to team ${teamOf(name ?? '')}, whose remote "${r}" is not configured here`, {
        hint: `add it with \`cpv remote add ${r} URL\` (see ${REGISTRY_FILE}), or pass -r NAME`,
        data: { remote: r },
      });
    }
    groups.set(r, [...(groups.get(r) ?? []), item]);
  }
  if (groups.size === 0) groups.set(explicit, []);
  return [...groups].map(([remote, its]) => ({ remote, items: its }));
}

/** Open a remote, run `fn`, close it. */
export async function withRemote<T>(repo: Repo, name: string | undefined, fn: (r: Remote) => Promise<T>): Promise<T> {
  const remote = await Remote.open(repo.config, repo.root, repo.cache, name);
  try {
    return await fn(remote);
  } finally {
    await remote.close();
  }
}

/** Add numeric fields of `b` into `a` (result counters of several remotes). */
export function addCounts<T extends object>(a: T, b: T): T {
  const out = { ...a } as Record<string, unknown>;
  for (const [k, v] of Object.entries(b)) if (typeof v === 'number' && typeof out[k] === 'number') out[k] = (out[k] as number) + v;
  return out as T;
}

/** Parallel requests for a remote: its own `jobs`, else `core.jobs`. */
export function remoteJobs(repo: Repo, remote: string): number {
  const own = repo.config.remotes[remote]?.jobs;
  return typeof own === 'number' ? own : repo.config.jobs;
}
