import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { UsageError } from '../errors.js';
import { hashPath } from '../hash/hash-file.js';
import { relPathProblem, type TreeEntry } from '../store/tree.js';
import { toFileOid } from '../util/oid.js';
import type { Repo } from './repo.js';
import type { StatCache } from './state.js';

/** Whether `child` is `parent` or inside it (both absolute, resolved). */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && rel !== '..');
}

/**
 * Throw UsageError unless the directory holding `abs` (a tracked path, or one to be
 * tracked; `rel` names it in the message) really lies inside the workspace: not
 * reached through a symbolic link that leaves the repository or leads into `.git` or
 * `.cpv`. cpv reads the pointer and writes the file and `.gitignore` there.
 */
export async function assertRealParent(repo: Repo, abs: string, rel: string): Promise<void> {
  const realRoot = await realpath(repo.root);
  const realParent = await realpath(dirname(abs)).catch(() => dirname(abs));
  const realTop = relative(realRoot, realParent).split(sep)[0];
  if (!isInside(realRoot, realParent) || realTop === '.git' || realTop === '.cpv') {
    throw new UsageError(`${rel} is reached through a symbolic link to ${realParent}, outside the workspace`, { hint: 'use paths inside the repository itself' });
  }
}

/** Hash a file's whole content: its file oid. */
export async function hashFile(path: string, onProgress?: (bytes: number) => void): Promise<string> {
  return toFileOid((await hashPath(path, onProgress)).hex);
}

/**
 * The stat of a workspace path that cpv may read, following a symbolic link only when
 * it resolves inside the repo or the cache (as `symlink` checkouts make); the result
 * may be a file or a directory (callers check). A broken link, or one that leaves the
 * repo, throws UsageError naming the path. Returns undefined if absent.
 */
export async function statTracked(repo: Repo, abs: string): Promise<Stats | undefined> {
  let st: Stats;
  try {
    st = await lstat(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (st.isSymbolicLink()) {
    let target: string;
    try {
      target = await realpath(abs);
    } catch {
      throw new UsageError(`${relative(repo.root, abs)} is a broken symbolic link`, { hint: 'remove it or point it at a file inside the repository' });
    }
    const cacheReal = await realpath(repo.cache.dir).catch(() => repo.cache.dir);
    const rootReal = await realpath(repo.root);
    if (!isInside(rootReal, target) && !isInside(cacheReal, target)) {
      throw new UsageError(`${relative(repo.root, abs)} is a symbolic link to ${target}, outside the repository`, { hint: 'cpv only follows links that stay inside the repository; copy the file in instead' });
    }
    st = await stat(abs);
  }
  return st;
}

/** The oid of a workspace file, from the stat cache when its stat is unchanged. */
export async function workspaceOid(abs: string, rel: string, st: Stats, state: StatCache, onProgress?: (bytes: number) => void): Promise<string> {
  const cached = state.lookup(rel, st);
  if (cached) return cached;
  const oid = await hashFile(abs, onProgress);
  state.record(rel, st, oid);
  return oid;
}

/** A regular file under a directory being tracked. */
export interface DirFile {
  /** Path relative to the tracked directory, `/`-separated. */
  path: string;
  abs: string;
  st: Stats;
  mode: number;
}

/**
 * Every regular file under `absDir`, sorted canonically. Rejects special files,
 * symlinks that leave the repo and names cpv cannot record, with UsageError naming
 * the path. Empty directories are not recorded.
 */
export async function listDirFiles(repo: Repo, absDir: string): Promise<DirFile[]> {
  const out: DirFile[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const names = await readdir(dir);
    for (const name of names) {
      const abs = join(dir, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const problem = relPathProblem(rel);
      if (problem) throw new UsageError(`cannot track ${JSON.stringify(abs)}: ${problem}`, { hint: 'rename the file' });
      const lst = await lstat(abs);
      if (lst.isDirectory()) {
        await walk(abs, rel);
        continue;
      }
      const st = await statTracked(repo, abs);
      if (!st) continue;
      if (st.isDirectory()) throw new UsageError(`${relative(repo.root, abs)} is a symbolic link to a directory`, { hint: 'cpv does not follow directory links; replace it with the directory' });
      if (!st.isFile()) throw new UsageError(`${relative(repo.root, abs)} is not a regular file`, { hint: 'remove sockets, pipes and devices from tracked directories' });
      out.push({ path: rel, abs, st, mode: st.mode & 0o100 ? 0o755 : 0o644 });
    }
  };
  await walk(absDir, '');
  out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  return out;
}

/** Tree entries of a workspace directory, hashing only files the stat cache does not know. */
export async function dirEntries(repo: Repo, absDir: string, relDir: string, state: StatCache, onProgress?: (bytes: number) => void): Promise<TreeEntry[]> {
  const files = await listDirFiles(repo, absDir);
  const entries: TreeEntry[] = [];
  for (const f of files) {
    const oid = await workspaceOid(f.abs, `${relDir}/${f.path}`, f.st, state, onProgress);
    entries.push({ path: f.path, oid, size: f.st.size, mode: f.mode });
  }
  return entries;
}
