import { join, resolve } from 'node:path';
import { ConflictError, NotFoundError, UsageError } from '../errors.js';
import { dirtyPaths, headCommit, isValidRefName, pushRefs, requireGit, tagExists } from '../git/git.js';
import { commitPaths, requireIdentity } from '../git/history.js';
import { isValidArtifactName, POINTER_SUFFIX, type MetaValue } from '../pointer/pointer.js';
import { REGISTRY_FILE, sectionOf, teamOf, isValidTeamName, type Registry, type RegistryEntry, type RegistryKind } from '../registry/registry.js';
import { relPathProblem } from '../store/tree.js';
import type { PushResult } from '../transfer/push.js';
import type { ProgressEvent } from '../transfer/types.js';
import { pathExists } from '../util/fs-atomic.js';
import { add, checkValues } from './add.js';
import { globToRegExp, hasGlob, toRel } from './pointers.js';
import type { Repo } from './repo.js';
import { readRegistry, writeRegistry } from './routing.js';
import { push, pushTags, type Routed } from './sync.js';
import { checkVersionMessage, createTag, filesToCommit } from './tags.js';
import { isInside } from './workspace.js';

/** A registered model or dataset, as commands see it. */
export interface ArtifactRef {
  kind: RegistryKind;
  name: string;
  team?: string;
  path: string;
  description?: string;
}

function refOf(kind: RegistryKind, name: string, e: RegistryEntry): ArtifactRef {
  const team = teamOf(name);
  return { kind, name, ...(team ? { team } : {}), path: e.path, ...(e.description !== undefined ? { description: e.description } : {}) };
}

export const KIND_WORD: Record<RegistryKind, string> = { model: 'model', data: 'dataset' };
export const CMD: Record<RegistryKind, string> = { model: 'model', data: 'data' };

/** `name` qualified by `team` (`team/name`); checks both. Throws UsageError. */
export function qualifiedName(name: string, team: string | undefined): string {
  if (team !== undefined && !isValidTeamName(team)) throw new UsageError(`invalid team name ${JSON.stringify(team)}`, { hint: 'use letters, digits, ".", "_", "-"' });
  const full = team !== undefined && !name.includes('/') ? `${team}/${name}` : name;
  if (!isValidArtifactName(full)) throw new UsageError(`invalid name ${JSON.stringify(name)}`, { hint: 'use letters, digits, ".", "_", "-", optionally "team/name"' });
  if (team !== undefined && teamOf(full) !== team) throw new UsageError(`${name} names team ${teamOf(full)}, but --team is ${team}`, { hint: 'give the name without a team, or drop --team' });
  return full;
}

/**
 * Registered artifacts of a kind matching names or globs over names (`vision/*`);
 * all of them when `names` is empty. Filtered by `team`. Throws NotFoundError for a
 * name that is not registered or a glob that matches nothing.
 */
export function selectArtifacts(registry: Registry, kind: RegistryKind, names: readonly string[], team?: string): ArtifactRef[] {
  const section = registry[sectionOf(kind)];
  const all = Object.keys(section).sort();
  const picked = new Set<string>();
  for (const n of names) {
    if (hasGlob(n)) {
      const re = globToRegExp(n);
      const m = all.filter((x) => re.test(x));
      if (m.length === 0) throw new NotFoundError(`no ${KIND_WORD[kind]} name matches ${JSON.stringify(n)}`, { hint: `list them with \`cpv ${CMD[kind]} list\`` });
      m.forEach((x) => picked.add(x));
    } else {
      const full = team !== undefined && !n.includes('/') ? `${team}/${n}` : n;
      if (!section[full]) {
        throw new NotFoundError(`no ${KIND_WORD[kind]} named ${JSON.stringify(full)} in ${REGISTRY_FILE}`, {
          hint: `register it with \`cpv ${CMD[kind]} init ${full} --path PATH\`, or list them with \`cpv ${CMD[kind]} list\``,
          data: { name: full },
        });
      }
      picked.add(full);
    }
  }
  const chosen = names.length === 0 ? all : [...picked].sort();
  return chosen.filter((n) => team === undefined || teamOf(n) === team).map((n) => refOf(kind, n, section[n]!));
}

export interface ArtifactInitOptions {
  cwd: string;
  kind: RegistryKind;
  name: string;
  /** The tracked path (relative to `cwd`); it need not exist yet. */
  path: string;
  team?: string;
  description?: string;
  dryRun?: boolean;
}

export interface ArtifactInitResult extends ArtifactRef {
  /** False when the same registration existed already. */
  created: boolean;
  /** The registry file, relative to the root (commit it; `upload` does). */
  file: string;
  dryRun: boolean;
}

/**
 * Register a model or dataset name for a path in `.cpv/registry.yaml`. Idempotent for
 * the same name and path. Throws UsageError for a bad name or a path outside the
 * repository (or inside `.cpv`/`.git`, or a pointer file), ConflictError when the
 * name is registered for another path or the path under another name.
 */
export async function artifactInit(repo: Repo, opts: ArtifactInitOptions): Promise<ArtifactInitResult> {
  const name = qualifiedName(opts.name, opts.team);
  const abs = resolve(opts.cwd, opts.path.replace(/\/+$/, ''));
  if (!isInside(repo.root, abs) || abs === repo.root) throw new UsageError(`${opts.path} is not inside the repository ${repo.root}`, { hint: 'give a path inside the repository' });
  const path = toRel(repo.root, abs);
  const problem = relPathProblem(path);
  if (problem) throw new UsageError(`${opts.path}: ${problem}`);
  const top = path.split('/')[0];
  if (top === '.cpv' || top === '.git') throw new UsageError(`${opts.path} is inside ${top}`, { hint: 'register the data itself, not cpv or git files' });
  if (path.endsWith(POINTER_SUFFIX)) throw new UsageError(`${opts.path} is a pointer file`, { hint: `give the tracked path: ${path.slice(0, -POINTER_SUFFIX.length)}` });
  const reg = await readRegistry(repo);
  const section = reg[sectionOf(opts.kind)];
  const existing = section[name];
  if (existing && existing.path !== path) {
    throw new ConflictError(`${KIND_WORD[opts.kind]} ${name} is already registered for ${existing.path}`, { hint: `pick another name, or edit ${REGISTRY_FILE} to move it` });
  }
  const otherKind = opts.kind === 'model' ? 'data' : 'model';
  if (reg[sectionOf(otherKind)][name]) {
    throw new ConflictError(`${name} is already the name of a ${KIND_WORD[otherKind]}`, { hint: 'models and datasets share one namespace (tags are NAME@VERSION): pick another name' });
  }
  for (const kind of ['model', 'data'] as const) {
    for (const [n, e] of Object.entries(reg[sectionOf(kind)])) {
      if (e.path === path && !(kind === opts.kind && n === name)) {
        throw new ConflictError(`${path} is already registered as ${KIND_WORD[kind]} ${n}`, { hint: `use \`cpv ${CMD[kind]} upload ${n}\`, or edit ${REGISTRY_FILE}` });
      }
    }
  }
  const created = !existing || (opts.description !== undefined && existing.description !== opts.description);
  section[name] = { path, ...(opts.description !== undefined ? { description: opts.description } : existing?.description !== undefined ? { description: existing.description } : {}) };
  if (created && !opts.dryRun) await writeRegistry(repo, reg);
  return { ...refOf(opts.kind, name, section[name]!), created, file: REGISTRY_FILE, dryRun: opts.dryRun === true };
}

export interface ArtifactUploadOptions {
  cwd: string;
  kind: RegistryKind;
  /** Names or globs over names; all registered of the kind when empty. */
  names: readonly string[];
  team?: string;
  /** Also tag each uploaded artifact as `NAME@TAG` (a version tag binding it alone). */
  tag?: string;
  /** Commit message (default `cpv: upload NAME...`). */
  message?: string;
  meta?: Record<string, MetaValue>;
  params?: Record<string, MetaValue>;
  metrics?: Record<string, MetaValue>;
  /** Upload to the cpv remote (default true). */
  push?: boolean;
  /** After the upload, push the branch and the new tags to this git remote. */
  gitPush?: string;
  remote?: string;
  jobs?: number;
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

export interface UploadedArtifact extends ArtifactRef {
  type: 'file' | 'dir';
  oid: string;
  size: number;
  files?: number;
  status: 'new' | 'modified' | 'unchanged';
}

export interface ArtifactUploadResult {
  items: UploadedArtifact[];
  /** The commit that records the pointers (HEAD when nothing needed committing). */
  commit?: string;
  /** Files committed (or to commit). */
  committed: string[];
  push?: Routed<PushResult>;
  /** Version tags created (or to create), `NAME@TAG`. */
  tags: string[];
  gitPushed?: { remote: string; refs: string[] };
  /** `.cpv/config` has uncommitted changes (e.g. a team's remote): commit them so teammates share them. */
  configModified?: boolean;
  dryRun: boolean;
}

/**
 * Publish new versions of registered artifacts in one step: `add` each path (kind,
 * name, metadata, params, metrics), commit the pointers with the registry, upload the
 * content to the cpv remote (the team's remote for `team/name`), optionally tag each
 * as `NAME@TAG`, and optionally push the branch and tags to git. The remote holds the
 * objects before any tag or git push names them. With dryRun every check runs and
 * nothing is written. Throws NotFoundError (unregistered name, missing path),
 * ConflictError (tag exists), RemoteError, GitError.
 */
export async function artifactUpload(repo: Repo, opts: ArtifactUploadOptions): Promise<ArtifactUploadResult> {
  await requireGit(repo.root);
  // Every check first: nothing is written, committed or uploaded for a request that fails.
  if (opts.push === false && opts.gitPush !== undefined) {
    throw new UsageError('--no-push with --git-push would publish commits whose content is on no remote', { hint: 'drop --no-push, or push to git later yourself' });
  }
  checkValues('metadata', opts.meta);
  checkValues('parameter', opts.params);
  checkValues('metric', opts.metrics);
  const refs = selectArtifacts(await readRegistry(repo), opts.kind, opts.names, opts.team);
  if (refs.length === 0) throw new NotFoundError(`no ${KIND_WORD[opts.kind]} is registered${opts.team ? ` for team ${opts.team}` : ''}`, { hint: `register one with \`cpv ${CMD[opts.kind]} init NAME --path PATH\`` });
  const tags = opts.tag === undefined ? [] : refs.map((r) => `${r.name}@${opts.tag}`);
  for (const t of tags) {
    if (opts.tag!.startsWith('-') || !(await isValidRefName(repo.root, `refs/tags/${t}`))) {
      throw new UsageError(`invalid tag ${JSON.stringify(opts.tag)}: ${t} is not a valid git tag name`, { hint: 'use letters, digits, ".", "_", "-" and "/" (e.g. v2); no spaces, "..", "~", "^" or ":"' });
    }
    if (await tagExists(repo.root, t)) throw new ConflictError(`tag ${t} already exists`, { hint: 'a version is never moved: pick another tag', data: { tag: t } });
  }
  if (opts.message !== undefined) checkVersionMessage(opts.message);
  for (const r of refs) {
    if (!(await pathExists(join(repo.root, r.path)))) {
      throw new NotFoundError(`${r.path} (${KIND_WORD[opts.kind]} ${r.name}) does not exist`, { hint: `put the ${KIND_WORD[opts.kind]} there, or fix its path in ${REGISTRY_FILE}`, data: { path: r.path } });
    }
  }
  if (!opts.dryRun) await requireIdentity(repo.root);
  const items: UploadedArtifact[] = [];
  for (const r of refs) {
    const added = await add(repo, {
      cwd: repo.root,
      paths: [r.path],
      kind: opts.kind,
      name: r.name,
      meta: opts.meta,
      params: opts.params,
      metrics: opts.metrics,
      dryRun: opts.dryRun,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
    const it = added.items[0]!;
    items.push({ ...r, type: it.type, oid: it.oid, size: it.size, ...(it.files !== undefined ? { files: it.files } : {}), status: it.status });
  }
  const pointerPaths = refs.map((r) => r.path + POINTER_SUFFIX);
  // The pointers (with their .gitignore files), the registry, and cpv's own config
  // only if it was never committed: never unrelated edits. A dry run wrote no
  // pointer, so it adds those that would change.
  const changedPointers = opts.dryRun ? items.filter((i) => i.status !== 'unchanged').map((i) => i.path + POINTER_SUFFIX) : [];
  const committed = [...new Set([...(await filesToCommit(repo, pointerPaths, [REGISTRY_FILE])), ...changedPointers])].sort();
  const configCode = (await dirtyPaths(repo.root, ['.cpv/config'])).get('.cpv/config');
  const configModified = configCode !== undefined && configCode !== '??';
  const message = opts.message ?? `cpv: upload ${refs.map((r) => r.name).join(', ')}`;
  let commit: string | undefined;
  if (!opts.dryRun) commit = committed.length > 0 ? await commitPaths(repo.root, committed, message) : await headCommit(repo.root);
  const result: ArtifactUploadResult = { items, ...(commit ? { commit } : {}), committed, tags, ...(configModified ? { configModified } : {}), dryRun: opts.dryRun === true };
  // A dry run stores nothing, so there is nothing in the cache to measure an upload
  // against: it reports the items and the commit only.
  if (opts.push !== false && !opts.dryRun) {
    result.push = await push(repo, { cwd: repo.root, targets: pointerPaths, remote: opts.remote, jobs: opts.jobs, dryRun: opts.dryRun, signal: opts.signal, onProgress: opts.onProgress });
  }
  if (opts.dryRun) return result;
  for (const [i, r] of opts.tag === undefined ? [] : refs.entries()) {
    await createTag(repo, { cwd: repo.root, name: tags[i]!, ...(opts.kind === 'model' ? { models: [r.path] } : { data: [r.path] }), message: opts.message ?? `${r.name} ${opts.tag}`, meta: opts.meta });
  }
  if (opts.gitPush !== undefined) result.gitPushed = await gitPublish(repo, opts.gitPush, tags, opts);
  return result;
}

/**
 * Push the current branch and `tags` to a git remote, tags only after the cpv remote
 * proves it holds their objects (pushTags). Throws GitError, ConflictError when a tag
 * is refused.
 */
async function gitPublish(repo: Repo, gitRemote: string, tags: readonly string[], opts: { remote?: string; jobs?: number; signal?: AbortSignal }): Promise<{ remote: string; refs: string[] }> {
  await pushRefs(repo.root, gitRemote, ['HEAD']);
  const refs = ['HEAD'];
  if (tags.length > 0) {
    const r = await pushTags(repo, { remote: opts.remote, gitRemote, jobs: opts.jobs, signal: opts.signal, only: tags });
    const refused = r.tags.filter((t) => t.status === 'refused');
    if (refused.length > 0) {
      throw new ConflictError(`tag ${refused.map((t) => t.tag).join(', ')} was not pushed: the remote lacks objects it references`, {
        hint: 'run `cpv push` and then `cpv push --tags`',
        data: { tags: refused.map((t) => t.tag) },
      });
    }
    refs.push(...r.tags.filter((t) => t.status === 'pushed').map((t) => `refs/tags/${t.tag}`));
  }
  return { remote: gitRemote, refs };
}

