import { NotFoundError, UsageError } from '../errors.js';
import { headCommit, requireGit } from '../git/git.js';
import type { MetaValue, Pointer } from '../pointer/pointer.js';
import type { VersionArtifact } from '../pointer/version-block.js';
import type { RegistryKind } from '../registry/registry.js';
import { CMD, KIND_WORD, selectArtifacts, type ArtifactRef } from './artifacts.js';
import { pointerAtVersion, resolveVersion } from './download.js';
import { log } from './log.js';
import { readPointer } from './pointers.js';
import type { Repo } from './repo.js';
import { revert, type RevertOptions, type RevertResult } from './revert.js';
import { readRegistry, remoteFor } from './routing.js';
import { createTag, type CreateTagResult } from './tags.js';
import { versionTags } from './version-tags.js';

/** A registered artifact and its state in the workspace. */
export interface ArtifactSummary extends ArtifactRef {
  /** Whether the workspace has a pointer for it. */
  tracked: boolean;
  type?: 'file' | 'dir';
  oid?: string;
  size?: number;
  files?: number;
  /** Version tags that bind it (any version), oldest first. */
  tags: string[];
  /** The cpv remote its objects go to (undefined: the default remote). */
  remote?: string;
}

/**
 * The registered models or datasets (matching `names`, all when empty; filtered by
 * team) with their workspace pointer and the version tags that bind them. Read-only.
 */
export async function artifactList(repo: Repo, opts: { kind: RegistryKind; names?: readonly string[]; team?: string }): Promise<ArtifactSummary[]> {
  const registry = await readRegistry(repo);
  const refs = selectArtifacts(registry, opts.kind, opts.names ?? [], opts.team);
  const tags = await versionTags(repo);
  const out: ArtifactSummary[] = [];
  for (const ref of refs) {
    // Not uploaded yet: no pointer. A pointer that cannot be read is an error, not "absent".
    const p = await readPointer(repo, `${ref.path}.cpv`).then(
      (r) => r.pointer,
      (err: unknown) => (err instanceof NotFoundError ? undefined : Promise.reject(err)),
    );
    const remote = remoteFor(registry, ref.name, undefined);
    out.push({
      ...ref,
      tracked: p !== undefined,
      ...(p ? { type: p.type, oid: p.oid, size: p.size, ...(p.files !== undefined ? { files: p.files } : {}) } : {}),
      tags: tags.filter((t) => t.block?.artifacts.some((a) => bindsArtifact(a, ref))).map((t) => t.name),
      ...(remote ? { remote } : {}),
    });
  }
  return out;
}

function bindsArtifact(a: VersionArtifact, ref: ArtifactRef): boolean {
  return a.name === ref.name || a.path === ref.path;
}

/** One version of an artifact: a commit that changed its pointer. */
export interface ArtifactVersion {
  commit: string;
  date: string;
  author: string;
  subject: string;
  /** Tags on that commit. */
  tags: string[];
  type: 'file' | 'dir';
  oid: string;
  size: number;
  files?: number;
  meta?: Record<string, MetaValue>;
  params?: Record<string, MetaValue>;
  metrics?: Record<string, MetaValue>;
}

/**
 * The versions of registered artifacts, newest first: each commit that changed the
 * pointer, with its tags, params and metrics (none for a name never committed).
 * Read-only. Throws NotFoundError for a name that is not registered.
 */
export async function artifactVersions(repo: Repo, opts: { kind: RegistryKind; names: readonly string[]; team?: string; maxCount?: number }): Promise<Array<ArtifactRef & { versions: ArtifactVersion[] }>> {
  const refs = selectArtifacts(await readRegistry(repo), opts.kind, opts.names, opts.team);
  const out: Array<ArtifactRef & { versions: ArtifactVersion[] }> = [];
  for (const ref of refs) {
    let versions: ArtifactVersion[] = [];
    try {
      const r = await log(repo, { cwd: repo.root, targets: [ref.path], maxCount: opts.maxCount });
      versions = (r.items[0]?.versions ?? [])
        .filter((v) => !v.deleted)
        .map((v) => ({
          commit: v.commit,
          date: v.date,
          author: v.author,
          subject: v.subject,
          tags: v.tags,
          type: v.type!,
          oid: v.oid!,
          size: v.size!,
          ...(v.files !== undefined ? { files: v.files } : {}),
          ...(v.meta ? { meta: v.meta } : {}),
          ...(v.params ? { params: v.params } : {}),
          ...(v.metrics ? { metrics: v.metrics } : {}),
        }));
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    out.push({ ...ref, versions });
  }
  return out;
}

export interface ArtifactTagOptions {
  cwd: string;
  kind: RegistryKind;
  names: readonly string[];
  team?: string;
  /** The version label; each artifact gets the git tag `NAME@TAG`. */
  tag: string;
  message?: string;
  meta?: Record<string, MetaValue>;
  dryRun?: boolean;
}

/**
 * Tag the current version of each artifact as `NAME@TAG`: a version tag (see
 * createTag) binding that artifact alone, so `--version TAG` finds it. Throws what
 * createTag throws (tag exists, workspace differs from the pointer, content not cached).
 */
export async function artifactTag(repo: Repo, opts: ArtifactTagOptions): Promise<CreateTagResult[]> {
  const refs = selectArtifacts(await readRegistry(repo), opts.kind, opts.names, opts.team);
  if (refs.length === 0) throw new NotFoundError(`no ${KIND_WORD[opts.kind]} is registered`);
  const out: CreateTagResult[] = [];
  for (const ref of refs) {
    out.push(
      await createTag(repo, {
        cwd: repo.root,
        name: `${ref.name}@${opts.tag}`,
        ...(opts.kind === 'model' ? { models: [ref.path] } : { data: [ref.path] }),
        message: opts.message ?? `${ref.name} ${opts.tag}`,
        meta: opts.meta,
        dryRun: opts.dryRun,
      }),
    );
  }
  return out;
}

/** What a revert of named artifacts passes on to revert: everything but what to revert. */
export type RevertRunOptions = Pick<RevertOptions, 'cwd' | 'message' | 'force' | 'dryRun' | 'remote' | 'jobs' | 'signal' | 'onProgress'>;

export interface ArtifactRevertOptions extends RevertRunOptions {
  kind: RegistryKind;
  names: readonly string[];
  team?: string;
  /** `NAME@TO` tag, or any revision. */
  to: string;
}

/**
 * Bring artifacts back to an older version as a new commit (see revert): the pointer
 * of `NAME@TO` (or of revision TO) is restored, committed and checked out, fetching
 * content the cache lacks. Artifacts resolving to the same commit are reverted in
 * one commit. History is never rewritten.
 */
export async function artifactRevert(repo: Repo, opts: ArtifactRevertOptions): Promise<RevertResult[]> {
  const refs = selectArtifacts(await readRegistry(repo), opts.kind, opts.names, opts.team);
  if (refs.length === 0) throw new NotFoundError(`no ${KIND_WORD[opts.kind]} is registered`);
  const byRev = new Map<string, { rev: string; refs: ArtifactRef[] }>();
  for (const ref of refs) {
    const v = await resolveVersion(repo, ref.name, opts.to);
    const g = byRev.get(v.commit) ?? { rev: v.rev, refs: [] };
    g.refs.push(ref);
    byRev.set(v.commit, g);
  }
  const out: RevertResult[] = [];
  for (const [commit, g] of byRev) {
    const r = await revert(repo, {
      cwd: repo.root,
      targets: g.refs.map((r) => r.path),
      // The resolved commit: `NAME@TO` is a tag, and a branch of the same name must not win.
      to: commit,
      message: opts.message ?? `cpv: revert ${g.refs.map((r) => r.name).join(', ')} to ${opts.to}`,
      force: opts.force,
      dryRun: opts.dryRun,
      remote: opts.remote,
      jobs: opts.jobs,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
    out.push({ ...r, rev: g.rev });
  }
  return out;
}

/** Everything known about one version of an artifact. */
export interface ArtifactInfo extends ArtifactRef {
  /** The version asked for and the revision it resolved to (HEAD by default). */
  version?: string;
  rev: string;
  commit: string;
  pointer: Pointer;
  /** Version tags binding exactly this content of this artifact. */
  tags: string[];
  /** For a model: the data bound with this version in those tags (what it was trained on). */
  boundWith: Array<{ tag: string; name: string; kind: string; path: string; oid: string }>;
  remote?: string;
}

/**
 * One version of an artifact (default: HEAD's): its pointer with metadata, params
 * and metrics, the version tags that bind it, and what those tags bind with it.
 * Read-only. Throws NotFoundError for an unknown name or version.
 */
export async function artifactInfo(repo: Repo, opts: { kind: RegistryKind; name: string; team?: string; version?: string }): Promise<ArtifactInfo> {
  await requireGit(repo.root);
  if (opts.name.includes('*')) throw new UsageError('info takes one name, not a glob');
  const registry = await readRegistry(repo);
  const [ref] = selectArtifacts(registry, opts.kind, [opts.name], opts.team);
  let rev = 'HEAD';
  let commit: string | undefined;
  if (opts.version !== undefined) ({ rev, commit } = await resolveVersion(repo, ref!.name, opts.version));
  else commit = await headCommit(repo.root);
  if (!commit) throw new NotFoundError('the repository has no commits');
  const at = await pointerAtVersion(repo, ref!, commit);
  if (!at) {
    throw new NotFoundError(`${ref!.name} has no version at ${opts.version ?? 'HEAD'}`, { hint: `upload one with \`cpv ${CMD[opts.kind]} upload ${ref!.name}\``, data: { name: ref!.name } });
  }
  const tags: string[] = [];
  const boundWith: ArtifactInfo['boundWith'] = [];
  for (const t of await versionTags(repo)) {
    const arts = t.block?.artifacts ?? [];
    if (!arts.some((a) => bindsArtifact(a, ref!) && a.oid === at.pointer.oid)) continue;
    tags.push(t.name);
    for (const a of arts) if (!bindsArtifact(a, ref!)) boundWith.push({ tag: t.name, name: a.name, kind: a.kind, path: a.path, oid: a.oid });
  }
  const remote = remoteFor(registry, ref!.name, undefined);
  return { ...ref!, ...(opts.version !== undefined ? { version: opts.version } : {}), rev, commit, pointer: at.pointer, tags, boundWith, ...(remote ? { remote } : {}) };
}
