import { simpleGit, type SimpleGit } from 'simple-git';
import { GitError } from '../errors.js';
import { headCommit } from './git.js';

/** A git client rooted at `dir` (simple-git stays inside the git module). */
function client(dir: string): SimpleGit {
  return simpleGit({ baseDir: dir, binary: 'git', maxConcurrentProcesses: 4, trimmed: false });
}

async function raw(dir: string, args: readonly string[]): Promise<string> {
  try {
    return await client(dir).raw([...args]);
  } catch (err) {
    throw new GitError(`git ${args[0]} failed: ${String((err as Error).message ?? err).trim().split('\n').pop()}`, { cause: err });
  }
}

/**
 * The commits that the branches of the repository at `top` point at: local branches
 * (`refs/heads`) and remote-tracking branches (`refs/remotes`, as of the last
 * `git fetch`), each commit once, sorted. Read-only. Throws GitError.
 */
export async function branchCommits(top: string): Promise<string[]> {
  const out = await raw(top, ['for-each-ref', '--format=%(objectname) %(objecttype)', 'refs/heads', 'refs/remotes']);
  const commits = new Set<string>();
  for (const line of out.split('\n')) {
    const [oid, type] = line.trim().split(' ');
    if (oid && type === 'commit') commits.add(oid);
  }
  return [...commits].sort();
}

/**
 * Every commit reachable from any ref or HEAD (`git rev-list --all`), sorted; none
 * in a repository without commits. Read-only. Throws GitError.
 */
export async function allCommits(top: string): Promise<string[]> {
  if ((await headCommit(top)) === undefined && (await raw(top, ['for-each-ref', '--count=1', '--format=%(refname)'])).trim() === '') return [];
  const out = await raw(top, ['rev-list', '--all']);
  return [...new Set(out.split('\n').map((l) => l.trim()).filter(Boolean))].sort();
}
