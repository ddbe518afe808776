import type { SimpleGit } from 'simple-git';
import { loadSimpleGit } from './load-simple-git.js';
import { resolve as resolvePath } from 'node:path';
import { GitError, NotAGitRepoError } from '../errors.js';

/** A git client rooted at `dir` (simple-git stays inside this module). */
async function client(dir: string): Promise<SimpleGit> {
  return (await loadSimpleGit())({ baseDir: dir, binary: 'git', maxConcurrentProcesses: 4, trimmed: false });
}

/** The top level of the git work tree containing `dir`, or undefined if none. */
export async function gitTopLevel(dir: string): Promise<string | undefined> {
  try {
    const out = await (await client(dir)).revparse(['--show-toplevel']);
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
    commit = (await (await client(dir)).revparse(['--verify', '--quiet', `${rev}^{commit}`])).trim();
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
  const commit = await resolveRev(top, rev);
  const git = await client(top);
  const out = new Map<string, string>();
  for (const [path, oid] of await pointerBlobsAt(top, commit, prefix)) out.set(path, await git.raw(['cat-file', 'blob', oid]));
  return out;
}

/**
 * Blob ids of every `*.cpv` file in `commit` under `prefix` (relative to the git top
 * level; '' for all), by path relative to the top level. Read-only.
 */
export async function pointerBlobsAt(top: string, commit: string, prefix: string): Promise<Map<string, string>> {
  const listing = await (await client(top)).raw(['ls-tree', '-r', '-z', '--full-tree', commit, ...(prefix ? ['--', prefix] : [])]);
  const out = new Map<string, string>();
  for (const rec of listing.split('\0')) {
    if (!rec) continue;
    const tab = rec.indexOf('\t');
    const [, type, oid] = rec.slice(0, tab).split(' ');
    const path = rec.slice(tab + 1);
    if (type === 'blob' && path.endsWith('.cpv')) out.set(path, oid!);
  }
  return out;
}

/** Names and fetch URLs of the git remotes of the repository at `dir`. */
export async function gitRemotes(dir: string): Promise<Array<{ name: string; url: string }>> {
  const remotes = await (await client(dir)).getRemotes(true);
  return remotes.map((r) => ({ name: r.name, url: r.refs.fetch }));
}

/** A path as a literal pathspec: `*`, `?` and `[` in a tracked name are not patterns. */
function literal(path: string): string {
  return `:(literal)${path}`;
}

/** Run git; a failure becomes a GitError quoting git's last lines and naming the command. */
async function run(dir: string, args: readonly string[], what: string, hint?: string): Promise<string> {
  try {
    return await (await client(dir)).raw([...args]);
  } catch (err) {
    const text = String((err as Error).message ?? err)
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .slice(-4)
      .join(' ');
    throw new GitError(`${what} failed: ${text}`, { cause: err, ...(hint ? { hint } : {}) });
  }
}

/** Whether `ref` (e.g. `refs/tags/v1`) is a valid ref name as written (`git check-ref-format`). */
export async function isValidRefName(dir: string, ref: string): Promise<boolean> {
  // git exits 1 silently for a bad name, and simple-git only rejects when git writes
  // to stderr: --normalize prints the name when (and only when) it is valid.
  const out = await (await client(dir))
    .raw(['check-ref-format', '--normalize', ref])
    .catch(() => '');
  return out.trim() === ref;
}

/** The commit HEAD names, or undefined before the first commit. */
export async function headCommit(dir: string): Promise<string | undefined> {
  const out = await (await client(dir))
    .raw(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'])
    .catch(() => '');
  return out.trim() || undefined;
}

/** Whether the tag `name` exists (lightweight or annotated). */
export async function tagExists(dir: string, name: string): Promise<boolean> {
  const out = await (await client(dir))
    .raw(['rev-parse', '--verify', '--quiet', `refs/tags/${name}`])
    .catch(() => '');
  return out.trim() !== '';
}

/** The type of the object a revision names: `commit`, `tag`, `tree` or `blob`. Throws GitError if unknown. */
export async function objectType(dir: string, rev: string): Promise<string> {
  return (await run(dir, ['cat-file', '-t', rev], `git cat-file -t ${rev}`)).trim();
}

/** An annotated tag object, as `git cat-file tag` shows it. */
export interface TagObject {
  /** Id of the tag object itself. */
  object: string;
  /** The tag's own name (its `tag` header). */
  name: string;
  /** Type and id of what it points at (usually a commit). */
  targetType: string;
  target: string;
  /** `Name <email>` of the tagger; '' when absent. */
  tagger: string;
  /** Tagger date, ISO 8601 (UTC); '' when absent. */
  date: string;
  /** The full message, verbatim (including any signature git appended). */
  message: string;
}

/**
 * Read the annotated tag object `rev` names (a tag name or object id). Returns
 * undefined when `rev` names something else (a lightweight tag's commit). Throws
 * GitError when `rev` does not exist.
 */
export async function readTagObject(dir: string, rev: string): Promise<TagObject | undefined> {
  const object = (await run(dir, ['rev-parse', '--verify', `${rev}^{object}`], `git rev-parse ${rev}`)).trim();
  if ((await objectType(dir, object)) !== 'tag') return undefined;
  const raw = await run(dir, ['cat-file', 'tag', object], `git cat-file tag ${rev}`);
  const split = raw.indexOf('\n\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  const message = split < 0 ? '' : raw.slice(split + 2);
  const headers = new Map<string, string>();
  for (const line of head.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0 && !headers.has(line.slice(0, sp))) headers.set(line.slice(0, sp), line.slice(sp + 1));
  }
  const taggerLine = headers.get('tagger') ?? '';
  // `Name <email> 1712345678 +0200`
  const m = /^(.*) (\d+) ([+-]\d{4})$/.exec(taggerLine);
  return {
    object,
    name: headers.get('tag') ?? '',
    targetType: headers.get('type') ?? '',
    target: headers.get('object') ?? '',
    tagger: m ? m[1]! : taggerLine,
    date: m ? new Date(Number(m[2]) * 1000).toISOString() : '',
    message,
  };
}

/** One tag as `git for-each-ref` lists it. */
export interface TagRef {
  name: string;
  /** `tag` for an annotated tag, else the type of the object a lightweight tag names. */
  type: string;
  /** The tag object (annotated) or the object named (lightweight). */
  object: string;
  /** The commit the tag peels to; undefined when it names no commit. */
  commit: string | undefined;
  /** Creation date (tagger date, or the commit date of a lightweight tag), ISO 8601. */
  date: string;
  /** Full message of an annotated tag; '' for a lightweight tag. */
  message: string;
}

/** Every tag in the repository, oldest first (then by name). Read-only. */
export async function listTagRefs(dir: string): Promise<TagRef[]> {
  const fields = ['%(refname)', '%(objecttype)', '%(objectname)', '%(*objecttype)', '%(*objectname)', '%(creatordate:iso-strict)', '%(contents)'];
  const out = await run(dir, ['for-each-ref', '--sort=creatordate', `--format=${fields.join('%00')}%00`, 'refs/tags'], 'git for-each-ref refs/tags');
  const parts = out.split('\0');
  const tags: TagRef[] = [];
  // Records are NUL-terminated fields; git puts a newline between records.
  for (let i = 0; i + fields.length <= parts.length; i += fields.length) {
    const [ref, type, object, peeledType, peeled, date, message] = parts.slice(i, i + fields.length) as [string, string, string, string, string, string, string];
    const refname = ref.replace(/^\n/, '');
    if (!refname.startsWith('refs/tags/')) break;
    let commit: string | undefined;
    if (type === 'commit') commit = object;
    else if (type === 'tag' && peeledType === 'commit') commit = peeled;
    else if (type === 'tag') commit = await resolveRev(dir, object).catch(() => undefined); // a tag of a tag
    tags.push({ name: refname.slice('refs/tags/'.length), type, object, commit, date, message: type === 'tag' ? message : '' });
  }
  return tags;
}

/**
 * Which of `paths` (relative to `dir`) differ from HEAD, in the index or the work
 * tree, or are untracked: path → the two-letter `git status --porcelain` code
 * (`??` untracked). Paths that are clean (or ignored) are absent. Read-only.
 */
export async function dirtyPaths(dir: string, paths: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (paths.length === 0) return out;
  const prefix = (await run(dir, ['rev-parse', '--show-prefix'], 'git rev-parse --show-prefix')).trim();
  const listing = await run(dir, ['status', '--porcelain=v1', '-z', '--untracked-files=all', '--', ...paths.map(literal)], 'git status');
  const recs = listing.split('\0');
  for (let i = 0; i < recs.length; i++) {
    const rec = recs[i]!;
    if (rec.length < 4) continue;
    const code = rec.slice(0, 2);
    // Porcelain paths are relative to the top level.
    const top = rec.slice(3);
    if (top.startsWith(prefix)) out.set(top.slice(prefix.length), code);
    if (code[0] === 'R' || code[0] === 'C') i++; // the next field is the old path
  }
  return out;
}

/**
 * Stage `paths` (relative to `dir`) and commit exactly them (`git commit --only`):
 * whatever else is staged stays staged and out of the commit. Runs the user's commit
 * hooks. Returns the new commit id. Throws GitError (e.g. no user identity, a hook
 * refused, a merge in progress).
 */
export async function commitPaths(dir: string, paths: readonly string[], message: string): Promise<string> {
  const specs = paths.map(literal);
  await run(dir, ['add', '--', ...specs], 'git add');
  await run(dir, ['commit', '--quiet', '-m', message, '--only', '--', ...specs], 'git commit', 'set your identity with `git config user.name` and `git config user.email`, and finish any merge or rebase in progress');
  return resolveRev(dir, 'HEAD');
}

/**
 * Create the annotated tag `name` on `commit` with the message in `messageFile`,
 * stored verbatim. Throws GitError (e.g. the tag exists, no user identity).
 */
export async function createAnnotatedTag(dir: string, name: string, commit: string, messageFile: string): Promise<void> {
  await run(dir, ['tag', '--annotate', '--cleanup=verbatim', '--file', messageFile, name, commit], `git tag ${name}`, 'set your identity with `git config user.name` and `git config user.email`');
}

/** `git push REMOTE REFSPEC...`. Throws GitError quoting git (rejected, hook refused, unreachable). */
export async function pushRefs(dir: string, remote: string, refspecs: readonly string[]): Promise<void> {
  if (refspecs.length === 0) return;
  await run(dir, ['push', '--quiet', remote, ...refspecs], `git push ${remote}`, 'see git\'s message above; `git push` by hand shows the details');
}

/**
 * The directory git runs hooks from: `core.hooksPath` when set (relative to the top
 * level), else `.git/hooks` (the common directory's, in a linked worktree). Absolute.
 */
export async function hooksDir(top: string): Promise<string> {
  const out = (await run(top, ['rev-parse', '--git-path', 'hooks'], 'git rev-parse --git-path hooks')).trim();
  return resolvePath(top, out);
}
