import { simpleGit, type SimpleGit } from 'simple-git';
import { GitError, NotAGitRepoError } from '../errors.js';

/** A git client rooted at `dir` (simple-git stays inside this module). */
function client(dir: string): SimpleGit {
  return simpleGit({ baseDir: dir, binary: 'git', maxConcurrentProcesses: 4, trimmed: false });
}

/** The top level of the git work tree containing `dir`, or undefined if none. */
export async function gitTopLevel(dir: string): Promise<string | undefined> {
  try {
    const out = await client(dir).revparse(['--show-toplevel']);
    return out.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Throws NotAGitRepoError unless `dir` is inside a git work tree. */
export async function requireGit(dir: string): Promise<string> {
  const top = await gitTopLevel(dir);
  if (!top) throw new NotAGitRepoError(dir);
  return top;
}

/** Resolve a revision to a commit id; throws GitError naming the revision. */
export async function resolveRev(dir: string, rev: string): Promise<string> {
  const unknown = (cause?: unknown): GitError =>
    new GitError(`unknown git revision ${JSON.stringify(rev)}`, { hint: 'use a branch, tag or commit that exists (see `git log`)', cause });
  let commit: string;
  try {
    commit = (await client(dir).revparse(['--verify', '--quiet', `${rev}^{commit}`])).trim();
  } catch (err) {
    throw unknown(err);
  }
  // With --quiet git fails silently, and simple-git rejects only when git writes to
  // stderr: an unknown revision arrives here as empty output.
  if (commit === '') throw unknown();
  return commit;
}

/**
 * Paths of all `*.cpv` files in revision `rev`, relative to the git top level, and
 * their contents. `prefix` limits to pointers under a directory (the cpv root
 * relative to the git top level, '' for the top).
 */
export async function pointersAt(top: string, rev: string, prefix: string): Promise<Map<string, string>> {
  const git = client(top);
  const commit = await resolveRev(top, rev);
  const listing = await git.raw(['ls-tree', '-r', '-z', '--full-tree', commit, ...(prefix ? ['--', prefix] : [])]);
  const out = new Map<string, string>();
  for (const rec of listing.split('\0')) {
    if (!rec) continue;
    const tab = rec.indexOf('\t');
    const [, type, oid] = rec.slice(0, tab).split(' ');
    const path = rec.slice(tab + 1);
    if (type !== 'blob' || !path.endsWith('.cpv')) continue;
    out.set(path, await git.raw(['cat-file', 'blob', oid!]));
  }
  return out;
}
