import { lstat, realpath, stat } from 'node:fs/promises';
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { dirname, relative, sep } from 'node:path';
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

/** A name that may need a closer look: control characters, backslash, U+FFFD, `.`/`..`. */
// eslint-disable-next-line no-control-regex
const SUSPECT_NAME = /[\u0000-\u001f\u007f\\\uFFFD]|^\.\.?$/;
/** UTF-16 code units whose order differs from UTF-8 byte order (surrogates and above). */
const NOT_BMP_ORDERED = /[\uD800-\uFFFF]/;

/**
 * Every regular file under `absDir`, sorted canonically. Rejects special files,
 * symlinks that leave the repo and names cpv cannot record, with UsageError naming
 * the path. Empty directories are not recorded.
 */
export async function listDirFiles(repo: Repo, absDir: string): Promise<DirFile[]> {
  const out: DirFile[] = [];
  // Synchronous readdir and lstat: on a warm dentry cache each takes microseconds,
  // far less than one thread-pool round trip, and a dataset has tens of thousands of
  // entries. Only symbolic links take the slower path that checks where they lead.
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const ents = readdirSync(dir, { withFileTypes: true });
    const base = dir.endsWith(sep) ? dir : dir + sep;
    for (const ent of ents) {
      const name = ent.name;
      const abs = base + name;
      const rel = prefix ? `${prefix}/${name}` : name;
      // `prefix` was checked one level up, so checking the new component is enough;
      // the full check (and its message) only for names the quick test flags.
      const problem = SUSPECT_NAME.test(name) ? relPathProblem(name) : undefined;
      if (problem) throw new UsageError(`cannot track ${JSON.stringify(abs)}: ${problem}`, { hint: 'rename the file' });
      if (ent.isDirectory()) {
        await walk(abs, rel);
        continue;
      }
      const st = lstatSync(abs, { throwIfNoEntry: false });
      // Removed since the readdir: as if it had never been there.
      if (!st) continue;
      if (st.isDirectory()) {
        await walk(abs, rel);
        continue;
      }
      let target: Stats | undefined = st;
      if (st.isSymbolicLink()) {
        target = await statTracked(repo, abs);
        if (!target) continue;
        if (target.isDirectory()) throw new UsageError(`${relative(repo.root, abs)} is a symbolic link to a directory`, { hint: 'cpv does not follow directory links; replace it with the directory' });
      }
      if (!target.isFile()) throw new UsageError(`${relative(repo.root, abs)} is not a regular file`, { hint: 'remove sockets, pipes and devices from tracked directories' });
      out.push({ path: rel, abs, st: target, mode: target.mode & 0o100 ? 0o755 : 0o644 });
    }
  };
  await walk(absDir, '');
  return sortCanonical(out);
}

/**
 * Sort files by the UTF-8 bytes of their paths (canonical tree order). UTF-16 order
 * is the same unless a path holds a surrogate or a code unit at or above U+E000: only
 * those comparisons encode.
 */
function sortCanonical(files: DirFile[]): DirFile[] {
  if (!files.some((f) => NOT_BMP_ORDERED.test(f.path))) return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const keyed = files.map((f) => ({ f, key: Buffer.from(f.path) }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return keyed.map((k) => k.f);
}

/** Tree entries of a workspace directory, hashing only files the stat cache does not know. */
export async function dirEntries(repo: Repo, absDir: string, relDir: string, state: StatCache, onProgress?: (bytes: number) => void): Promise<TreeEntry[]> {
  const files = await listDirFiles(repo, absDir);
  const entries: TreeEntry[] = [];
  for (const f of files) {
    const rel = `${relDir}/${f.path}`;
    const oid = state.lookup(rel, f.st) ?? (await workspaceOid(f.abs, rel, f.st, state, onProgress));
    entries.push({ path: f.path, oid, size: f.st.size, mode: f.mode });
  }
  return entries;
}
