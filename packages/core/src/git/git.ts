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

/** Names and fetch URLs of the git remotes of the repository at `dir`. */
export async function gitRemotes(dir: string): Promise<Array<{ name: string; url: string }>> {
  const remotes = await client(dir).getRemotes(true);
  return remotes.map((r) => ({ name: r.name, url: r.refs.fetch }));
}

/**
 * Ask a git remote for its refs (`git ls-remote --heads`), bounded by `timeoutMs`.
 * Returns undefined on success, or git's error text (host key, permission, network).
 * SSH never prompts: BatchMode is forced so a missing key fails instead of hanging.
 */
export async function lsRemote(dir: string, remote: string, timeoutMs = 20_000): Promise<string | undefined> {
  const env = {
    ...process.env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_SSH_COMMAND: process.env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes -o ConnectTimeout=10',
  };
  // simple-git refuses an explicit GIT_SSH_COMMAND, and any GIT_* variable passed in
  // `env`, unless told otherwise: these are the user's own settings plus the two above.
  const git = simpleGit({
    baseDir: dir,
    timeout: { block: timeoutMs },
    unsafe: { allowUnsafeSshCommand: true },
    allowEnvironment: Object.keys(env).filter((k) => /^GIT_/i.test(k)),
  }).env(env);
  try {
    await git.raw(['ls-remote', '--heads', remote]);
    return undefined;
  } catch (err) {
    // git ends most failures with the same three lines ("Could not read from remote
    // repository. Please make sure you have the correct access rights and the repository
    // exists."): drop them, so the line that says what went wrong is kept.
    const text = String((err as Error).message ?? err);
    const lines = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/^(fatal: Could not read from remote repository\.?|Please make sure you have the correct access rights|and the repository exists\.?)$/.test(l));
    return (lines.length > 0 ? lines : [text.trim()]).slice(-3).join(' ');
  }
}
