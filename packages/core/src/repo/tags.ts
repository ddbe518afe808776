import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { ConflictError, FormatError, GitError, NotFoundError, UsageError } from '../errors.js';
import {
  commitPaths,
  createAnnotatedTag,
  dirtyPaths,
  headCommit,
  isValidRefName,
  pointersAt,
  readTagObject,
  requireGit,
  resolveRev,
  tagExists,
} from '../git/git.js';
import { isValidMetaKey, parsePointer, POINTER_SUFFIX, type ArtifactKind, type MetaValue, type Pointer } from '../pointer/pointer.js';
import { formatVersionMessage, parseVersionBlock, type VersionArtifact, type VersionBlock, type VersionMessage } from '../pointer/version-block.js';
import type { ProgressEvent, TransferItem } from '../transfer/types.js';
import { pathExists } from '../util/fs-atomic.js';
import { shortOid } from '../util/oid.js';
import { listPointers, resolveTargets, type PointerRef } from './pointers.js';
import { RemoteChecker, type MissingObject } from './publish.js';
import { withRepoLock } from './lock.js';
import type { Repo } from './repo.js';
import { remoteJobs, routeItems, withRemote } from './routing.js';
import { status } from './status.js';
import { versionTags } from './version-tags.js';

export interface CreateTagOptions {
  /** Directory the paths are relative to. */
  cwd: string;
  /** Tag name (a valid git ref name component, e.g. `v1` or `release/2024-05`). */
  name: string;
  /** Tracked paths, pointer files or globs to bind as models. */
  models?: readonly string[];
  /** Tracked paths, pointer files or globs to bind as data. */
  data?: readonly string[];
  /** The user's message (default `Version NAME`). */
  message?: string;
  meta?: Record<string, MetaValue>;
  dryRun?: boolean;
}

export interface CreateTagResult {
  tag: string;
  /** The tagged commit; undefined only with dryRun when a commit would be made first. */
  commit: string | undefined;
  /** Whether a commit was made (or, with dryRun, would be) to record the pointers. */
  newCommit: boolean;
  /** Files committed (or to commit), relative to the repo root. */
  committed: string[];
  artifacts: VersionArtifact[];
  message: string;
  meta?: Record<string, MetaValue>;
  dryRun: boolean;
}

/**
 * Create a version tag: an annotated git tag binding the given models and data
 * (docs/format.md, "Version tag"). With neither `models` nor `data`, binds every
 * tracked path with the kind its pointer records. Pointers (and the `.gitignore`
 * files next to them, and `.cpv/config` if it was never committed) that are
 * uncommitted or modified are committed first (`cpv: version NAME`, only those
 * files), so the tagged commit's pointers are exactly the listed artifacts.
 *
 * Throws UsageError for an invalid tag name, metadata, or a path inside a tracked
 * directory; ConflictError when the tag exists or when workspace data differs from
 * its pointer (run `cpv add` first); NotFoundError when a path is not tracked or its
 * content is not in the cache; GitError when git fails. Nothing is written with
 * dryRun; every check still runs. Holds the repository lock (unless `dryRun`).
 */
export async function createTag(repo: Repo, opts: CreateTagOptions): Promise<CreateTagResult> {
  return withRepoLock(repo.root, { command: 'tag create', skip: opts.dryRun }, () => createTagLocked(repo, opts));
}

async function createTagLocked(repo: Repo, opts: CreateTagOptions): Promise<CreateTagResult> {
  const top = await requireGit(repo.root);
  const name = opts.name;
  if (name === '' || name.startsWith('-') || !(await isValidRefName(repo.root, `refs/tags/${name}`))) {
    throw new UsageError(`invalid tag name ${JSON.stringify(name)}`, {
      hint: 'use letters, digits, ".", "_", "-" and "/" (e.g. v1 or release/2024-05); no spaces, "..", "~", "^", ":" or a leading "-" (see `git check-ref-format`)',
    });
  }
  for (const [k, v] of Object.entries(opts.meta ?? {})) {
    if (!isValidMetaKey(k)) throw new UsageError(`invalid metadata key ${JSON.stringify(k)}`, { hint: 'keys start with a letter or "_" and use letters, digits, "_", "." or "-"' });
    if (typeof v === 'number' && !Number.isFinite(v)) throw new UsageError(`metadata ${k} must be a finite number`);
  }
  if (await tagExists(repo.root, name)) {
    throw new ConflictError(`tag ${JSON.stringify(name)} already exists`, {
      hint: `a version is never moved: pick another name, or if ${name} was never pushed, delete it with \`git tag -d ${name}\``,
      data: { tag: name },
    });
  }

  const bound = await boundPointers(repo, opts);
  const userMessage = opts.message ?? `Version ${name}`;
  // Check the message now: a bad one must fail before anything is committed.
  checkVersionMessage(userMessage);

  const items = await status(repo, { cwd: repo.root, targets: bound.map((b) => b.ref.pointerPath) });
  const modified = items.filter((i) => i.workspace === 'modified').map((i) => i.path);
  if (modified.length > 0) {
    throw new ConflictError(`the workspace differs from the pointer of ${listed(modified)}; a version must bind what the pointers record`, {
      hint: `record the changes with \`cpv add ${modified.join(' ')}\` (or discard them with \`cpv checkout --force\`), then tag again`,
      data: { paths: modified },
    });
  }
  const uncached = items.filter((i) => i.cache === 'missing').map((i) => i.path);
  if (uncached.length > 0) {
    throw new NotFoundError(`the content of ${listed(uncached)} is not in the local cache`, {
      hint: `fetch it with \`cpv fetch ${uncached.join(' ')}\` first, so the version can always be pushed`,
      data: { paths: uncached },
    });
  }

  const committed = await filesToCommit(repo, bound.map((b) => b.ref.pointerPath));
  const artifactsNow = bound.map(({ ref, kind }) => artifactOf(ref.path, ref.pointer, kind)).sort(byPath);
  const meta = opts.meta && Object.keys(opts.meta).length > 0 ? opts.meta : undefined;
  if (opts.dryRun) {
    const head = committed.length > 0 ? undefined : await headCommit(repo.root);
    return { tag: name, commit: head, newCommit: committed.length > 0, committed, artifacts: artifactsNow, message: userMessage, ...(meta ? { meta } : {}), dryRun: true };
  }

  const commit = committed.length > 0 ? await commitPaths(repo.root, committed, `cpv: version ${name}`) : await headCommit(repo.root);
  if (commit === undefined) throw new GitError('the repository has no commits and nothing to commit', { hint: 'commit the pointer files first' });
  // The tag must describe the commit, not the workspace: read the pointers back from git.
  const atCommit = await pointersAtCommit(repo, top, commit);
  const artifacts = bound
    .map(({ ref, kind }) => {
      const p = atCommit.get(ref.path);
      if (!p || p.oid !== ref.pointer.oid || p.type !== ref.pointer.type || p.size !== ref.pointer.size) {
        throw new GitError(`commit ${commit.slice(0, 12)} does not hold the pointer ${ref.pointerPath} as it is in the workspace`, {
          hint: `is the pointer git-ignored, or changed by a git filter or hook? Check \`git check-ignore -v ${ref.pointerPath}\` and \`git status\``,
          data: { path: ref.pointerPath, commit },
        });
      }
      return artifactOf(ref.path, p, kind);
    })
    .sort(byPath);
  const block: VersionBlock = { version: 1, artifacts, ...(meta ? { meta } : {}) };
  const text = formatVersionMessage(userMessage, block);
  const tmpDir = join(repo.root, '.cpv', 'tmp');
  await mkdir(tmpDir, { recursive: true });
  const messageFile = join(tmpDir, `tag-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(messageFile, text, { mode: 0o600 });
    await createAnnotatedTag(repo.root, name, commit, messageFile);
  } finally {
    await rm(messageFile, { force: true });
  }
  return { tag: name, commit, newCommit: committed.length > 0, committed, artifacts, message: userMessage, ...(meta ? { meta } : {}), dryRun: false };
}

/** Throw UsageError if `message` cannot be the user's part of a version tag's message. */
export function checkVersionMessage(message: string): void {
  formatVersionMessage(message, { version: 1, artifacts: [{ name: 'x', kind: 'other', path: 'x', type: 'file', oid: `b3:${'0'.repeat(64)}`, size: 0 }] });
}

/**
 * The files to commit so that a commit records the given pointers: those pointers,
 * the `.gitignore` files next to them, and `also` (repo-relative) when they are
 * uncommitted or modified; plus cpv's own `.cpv/config` and `.cpv/.gitignore` if they
 * were never committed (a clone must be able to `cpv pull`). Sorted.
 */
export async function filesToCommit(repo: Repo, pointerPaths: readonly string[], also: readonly string[] = []): Promise<string[]> {
  const candidates = new Set<string>(also);
  for (const pointerPath of pointerPaths) {
    candidates.add(pointerPath);
    const ignore = posixJoin(posixDirname(pointerPath), '.gitignore');
    if (await pathExists(join(repo.root, ignore))) candidates.add(ignore);
  }
  const cpvOwn = ['.cpv/config', '.cpv/.gitignore'];
  const dirty = await dirtyPaths(repo.root, [...candidates, ...cpvOwn]);
  return [...dirty]
    .filter(([path, code]) => candidates.has(path) || (cpvOwn.includes(path) && code === '??'))
    .map(([path]) => path)
    .sort();
}

/** The pointers a new tag binds, with the kind each is bound as. */
async function boundPointers(repo: Repo, opts: CreateTagOptions): Promise<Array<{ ref: PointerRef; kind: ArtifactKind }>> {
  const models = opts.models ?? [];
  const data = opts.data ?? [];
  if (models.length === 0 && data.length === 0) {
    const all = await listPointers(repo);
    if (all.length === 0) throw new UsageError('nothing to tag: no tracked paths', { hint: 'track a model or dataset with `cpv add PATH` first' });
    return all.map((ref) => ({ ref, kind: ref.pointer.kind }));
  }
  const out = new Map<string, { ref: PointerRef; kind: ArtifactKind }>();
  const bind = async (paths: readonly string[], kind: ArtifactKind): Promise<void> => {
    if (paths.length === 0) return;
    for (const t of await resolveTargets(repo, opts.cwd, paths)) {
      if (t.only) {
        throw new UsageError(`${[...t.only][0]} is inside the tracked directory ${t.path}; a version binds whole tracked paths`, { hint: `bind the directory: --${kind === 'model' ? 'model' : 'data'} ${t.path}` });
      }
      const had = out.get(t.pointerPath);
      if (had && had.kind !== kind) throw new UsageError(`${t.path} is given both as --model and as --data`);
      const { only: _only, ...ref } = t;
      out.set(t.pointerPath, { ref, kind });
    }
  };
  await bind(models, 'model');
  await bind(data, 'data');
  return [...out.values()];
}

/** One line of the list of version tags. */
export interface TagSummary {
  name: string;
  /** Tagger date, ISO 8601. */
  date: string;
  /** The tagged commit. */
  commit: string | undefined;
  /** Number of artifacts bound (0 when the block cannot be read). */
  artifacts: number;
  /** First line of the user's message. */
  subject: string;
  /** Set when the tag has a block this cpv cannot read: the reason. */
  error?: string;
}

/**
 * Every version tag (annotated tags with a version block), oldest first. A tag whose
 * block cannot be read is listed with `error` set rather than failing the list.
 * Read-only. Throws NotAGitRepoError.
 */
export async function listTags(repo: Repo): Promise<TagSummary[]> {
  return (await versionTags(repo)).map((t) => ({
    name: t.name,
    date: t.date,
    commit: t.commit,
    artifacts: t.block?.artifacts.length ?? 0,
    subject: t.message.split('\n')[0] ?? '',
    ...(t.error !== undefined ? { error: t.error } : {}),
  }));
}

/** A version tag in full. */
export interface TagInfo extends VersionMessage {
  name: string;
  /** Id of the tag object. */
  object: string;
  /** The tagged commit. */
  commit: string;
  /** `Name <email>` of whoever made the tag. */
  tagger: string;
  /** Tagger date, ISO 8601. */
  date: string;
}

/**
 * Read a version tag: its message, parsed block and commit. Read-only. Throws
 * NotFoundError when the tag does not exist or is not a version tag, FormatError
 * when its block is malformed or of an unknown version.
 */
export async function showTag(repo: Repo, name: string): Promise<TagInfo> {
  await requireGit(repo.root);
  if (name.startsWith('-') || !(await tagExists(repo.root, name))) {
    throw new NotFoundError(`no tag ${JSON.stringify(name)}`, { hint: 'list version tags with `cpv tag list`', data: { tag: name } });
  }
  const obj = await readTagObject(repo.root, `refs/tags/${name}`);
  const parsed = obj ? parseVersionBlock(obj.message, name) : undefined;
  if (!obj || !parsed) {
    throw new NotFoundError(`tag ${JSON.stringify(name)} is not a cpv version tag`, { hint: 'create one with `cpv tag create NAME`; list them with `cpv tag list`', data: { tag: name } });
  }
  const commit = await resolveRev(repo.root, obj.object);
  return { name, object: obj.object, commit, tagger: obj.tagger, date: obj.date, ...parsed };
}

export interface VerifyTagOptions {
  name: string;
  /** Remote name; the default remote when undefined. */
  remote?: string;
  jobs?: number;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

export interface VerifyTagResult {
  tag: string;
  remote: string;
  /** True when the remote holds every object the tag references. */
  ok: boolean;
  artifacts: number;
  /** Distinct packs checked. */
  packs: number;
  missing: MissingObject[];
}

/**
 * Prove that a remote holds every object a version tag references: each artifact's
 * manifest or tree index, the manifests of multi-chunk files inside directories, and
 * every pack those name. Read-only. Returns `ok: false` with what is missing; throws
 * (NotFoundError, FormatError) for a tag that cannot be read, RemoteError when the
 * remote cannot be reached, FormatError/IntegrityError for a damaged remote record.
 */
export async function verifyTag(repo: Repo, opts: VerifyTagOptions): Promise<VerifyTagResult> {
  const tag = await showTag(repo, opts.name);
  const remotes: string[] = [];
  const missing: MissingObject[] = [];
  let packs = 0;
  for (const route of await routeItems(repo, opts.remote, itemsOfArtifacts(tag.block.artifacts))) {
    await withRemote(repo, route.remote, async (remote) => {
      remotes.push(remote.name);
      const jobs = opts.jobs ?? remoteJobs(repo, remote.name);
      const proof = await new RemoteChecker(remote, jobs, opts.signal).check(route.items, opts.onProgress);
      missing.push(...proof.missing.map((m) => ({ ...m, remote: remote.name })));
      packs += proof.packs;
    });
  }
  return { tag: tag.name, remote: remotes.join(', '), ok: missing.length === 0, artifacts: tag.block.artifacts.length, packs, missing };
}

/** Transfer items for artifacts (paths relative to the repo root). */
export function itemsOfArtifacts(artifacts: readonly VersionArtifact[]): TransferItem[] {
  return artifacts.map((a) => ({ oid: a.oid, type: a.type, size: a.size, path: a.path, name: a.name }));
}

/**
 * Every pointer in commit `rev`, by tracked path relative to the repo root. Throws
 * PointerParseError naming `rev:path` for a malformed pointer, GitError for an
 * unknown revision.
 */
export async function pointersAtCommit(repo: Repo, top: string, rev: string): Promise<Map<string, Pointer>> {
  const prefix = relative(top, repo.root).split(sep).join('/');
  const out = new Map<string, Pointer>();
  for (const [path, text] of await pointersAt(top, rev, prefix)) {
    const rel = prefix ? path.slice(prefix.length + 1) : path;
    out.set(rel.slice(0, -POINTER_SUFFIX.length), parsePointer(text, `${rev.slice(0, 12)}:${path}`, path.slice(path.lastIndexOf('/') + 1)));
  }
  return out;
}

/**
 * Check that a version's artifacts are exactly the pointers of its commit (the
 * invariant of docs/format.md, "Version tag"). Throws FormatError naming the tag and
 * the first path that differs.
 */
export function checkTagMatchesCommit(tag: string, commit: string, artifacts: readonly VersionArtifact[], pointers: ReadonlyMap<string, Pointer>): void {
  for (const a of artifacts) {
    const p = pointers.get(a.path);
    if (p && p.oid === a.oid && p.type === a.type && p.size === a.size && p.files === a.files) continue;
    throw new FormatError(
      `version tag ${JSON.stringify(tag)} lists ${a.path} as ${shortOid(a.oid)}, but its commit ${commit.slice(0, 12)} ${p ? `has ${shortOid(p.oid)}` : 'has no pointer for it'}`,
      { hint: 'the tag does not describe its commit (edited or made by hand); delete it and create it again with `cpv tag create`', data: { tag, path: a.path, commit } },
    );
  }
}


function artifactOf(path: string, p: Pointer, kind: ArtifactKind): VersionArtifact {
  return { name: p.name ?? path, kind, path, type: p.type, oid: p.oid, size: p.size, ...(p.type === 'dir' ? { files: p.files ?? 0 } : {}) };
}

function byPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

function listed(paths: readonly string[]): string {
  return paths.slice(0, 5).join(', ') + (paths.length > 5 ? `, … (${paths.length} paths)` : '');
}

function posixDirname(p: string): string {
  const d = dirname(p);
  return d === '.' ? '' : d;
}

function posixJoin(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
