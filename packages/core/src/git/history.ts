import type { SimpleGit } from 'simple-git';
import { loadSimpleGit } from './load-simple-git.js';
import { GitError } from '../errors.js';
import { headCommit } from './git.js';

/** A git client rooted at `dir` (simple-git stays inside the git module). */
async function client(dir: string): Promise<SimpleGit> {
  return (await loadSimpleGit())({ baseDir: dir, binary: 'git', maxConcurrentProcesses: 4, trimmed: false });
}

/**
 * A path as a literal pathspec: git would otherwise read `*`, `?` and `[` in a
 * tracked name (`w[v2].bin.cpv`) as a pattern.
 */
function literal(path: string): string {
  return `:(literal)${path}`;
}

/** One commit as `git log` reports it. */
export interface CommitInfo {
  /** Full commit id. */
  commit: string;
  /** Author date, ISO 8601 with offset (`%aI`). */
  date: string;
  author: string;
  email: string;
  subject: string;
}

/**
 * Commits that changed `path` (relative to the git top level `top`), newest first,
 * following only that path (no rename detection), with git's default history
 * simplification. At most `maxCount` commits when given. An empty list means git
 * never recorded the path (or the repository has no commits). Read-only.
 */
export async function commitsTouching(top: string, path: string, opts: { maxCount?: number } = {}): Promise<CommitInfo[]> {
  if ((await headCommit(top)) === undefined) return [];
  const out = await (await client(top)).raw([
    'log',
    '--no-color',
    '--format=%H%x00%aI%x00%an%x00%ae%x00%s%x00',
    ...(opts.maxCount !== undefined ? [`--max-count=${opts.maxCount}`] : []),
    'HEAD',
    '--',
    literal(path),
  ]);
  const fields = out.split('\0');
  const commits: CommitInfo[] = [];
  // Records are five NUL-terminated fields; git puts a newline between records.
  for (let i = 0; i + 5 <= fields.length; i += 5) {
    const [commit, date, author, email, subject] = fields.slice(i, i + 5).map((f, j) => (j === 0 ? f.trim() : f)) as [string, string, string, string, string];
    if (!commit) break;
    commits.push({ commit, date, author, email, subject });
  }
  return commits;
}


/**
 * Tag names by the commit they point at, for every tag in the repository: a
 * lightweight tag by its own target, an annotated tag by the commit it peels to (what
 * `git tag --points-at COMMIT` lists). Names within a commit are sorted. Read-only.
 */
export async function tagsByCommit(top: string): Promise<Map<string, string[]>> {
  const out = await (await client(top)).raw(['for-each-ref', '--format=%(objectname)%00%(*objectname)%00%(refname:strip=2)', 'refs/tags']);
  const map = new Map<string, string[]>();
  for (const line of out.split('\n')) {
    if (!line) continue;
    const [object, peeled, name] = line.split('\0') as [string, string, string];
    const commit = peeled || object;
    map.set(commit, [...(map.get(commit) ?? []), name].sort());
  }
  return map;
}


/** The text of blob `oid`. Throws GitError if it is not a blob of this repository. */
export async function readBlob(top: string, oid: string): Promise<string> {
  try {
    return await (await client(top)).raw(['cat-file', 'blob', oid]);
  } catch (err) {
    throw new GitError(`cannot read git object ${oid}`, { cause: err, hint: 'the repository may be shallow or damaged; try `git fetch --unshallow` or `git fsck`' });
  }
}

/**
 * The text of file `path` (relative to the top level) in `commit`, or undefined if the
 * commit has no file there. `commit` should be a resolved commit id. Read-only.
 */
export async function fileAt(top: string, commit: string, path: string): Promise<string | undefined> {
  const git = await client(top);
  // `<commit>:<path>` takes the path literally; --quiet makes a missing one empty output.
  const oid = (await git.raw(['rev-parse', '--verify', '--quiet', `${commit}:${path}`])).trim();
  if (!oid) return undefined;
  const type = (await git.raw(['cat-file', '-t', oid])).trim();
  if (type !== 'blob') return undefined;
  return readBlob(top, oid);
}

/**
 * The subset of `paths` (relative to the top level) that differ from HEAD in the
 * index or the work tree, or are untracked and not ignored: uncommitted edits.
 * Read-only.
 */
export async function uncommittedPaths(top: string, paths: readonly string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const out = await (await client(top)).raw(['status', '--porcelain=v1', '-z', '--untracked-files=all', '--no-renames', '--', ...paths.map(literal)]);
  const found = new Set<string>();
  for (const rec of out.split('\0')) {
    if (rec.length > 3) found.add(rec.slice(3));
  }
  return paths.filter((p) => found.has(p));
}

/**
 * Throws GitError with a hint unless git knows who commits here (user.name and
 * user.email, or what git derives from the system). Read-only.
 */
export async function requireIdentity(top: string): Promise<void> {
  try {
    await (await client(top)).raw(['var', 'GIT_COMMITTER_IDENT']);
  } catch (err) {
    throw new GitError('git does not know who you are, so cpv cannot commit', {
      cause: err,
      hint: 'set it with `git config user.name "Your Name"` and `git config user.email you@example.com`, or pass --no-commit',
    });
  }
}

/**
 * Stage `paths` (relative to the top level) and commit exactly them with `message`,
 * leaving anything else that is staged out of the commit (and still staged).
 * Returns the new commit id. Throws GitError when git refuses (a hook, no identity).
 */
export async function commitPaths(top: string, paths: readonly string[], message: string): Promise<string> {
  const git = await client(top);
  const specs = paths.map(literal);
  try {
    await git.raw(['add', '--', ...specs]);
    await git.raw(['commit', '--quiet', '--only', '-m', message, '--', ...specs]);
  } catch (err) {
    throw new GitError(`git commit failed: ${firstLine(err)}`, { cause: err, hint: 'the files are written; commit them yourself with `git commit`, or fix what git reports and run the command again' });
  }
  return (await git.revparse(['HEAD'])).trim();
}

function firstLine(err: unknown): string {
  const text = String((err as Error)?.message ?? err).trim();
  return text.split('\n').find((l) => l.trim() !== '') ?? text;
}
