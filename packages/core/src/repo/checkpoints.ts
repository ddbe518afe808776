import { NotFoundError, UsageError } from '../errors.js';
import { requireGit } from '../git/git.js';
import type { MetaValue, Pointer } from '../pointer/pointer.js';
import { teamOf } from '../registry/registry.js';
import type { ProgressEvent } from '../transfer/types.js';
import { selectArtifacts } from './artifacts.js';
import type { Repo } from './repo.js';
import { revert, type RevertResult } from './revert.js';
import type { RevertRunOptions } from './artifact-history.js';
import { readRegistry } from './routing.js';
import { pushTags, type PushTagsResult } from './sync.js';
import { createTag, pointersAtCommit, showTag, type CreateTagResult, type TagInfo } from './tags.js';
import { versionTags, type VersionTag } from './version-tags.js';

export interface CheckpointCreateOptions {
  cwd: string;
  /** The checkpoint's tag name (e.g. `exp-42` or `release/2024-05`). */
  tag: string;
  /** Registered model names or globs. */
  models: readonly string[];
  /** Registered dataset names or globs. */
  data: readonly string[];
  team?: string;
  message?: string;
  meta?: Record<string, MetaValue>;
  /** Publish at once: upload the objects, prove them, push the tag to this git remote. */
  gitPush?: string;
  remote?: string;
  jobs?: number;
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

export interface CheckpointCreateResult extends CreateTagResult {
  published?: PushTagsResult;
}

/**
 * A checkpoint: one version tag binding registered models and the data they were
 * trained on, atomically (createTag over their paths). Needs at least one model or
 * dataset. With `gitPush`, the tag is published like `cpv push --tags` (objects
 * first). Throws what createTag and pushTags throw; NotFoundError for unknown names.
 */
export async function checkpointCreate(repo: Repo, opts: CheckpointCreateOptions): Promise<CheckpointCreateResult> {
  if (opts.models.length === 0 && opts.data.length === 0) {
    throw new UsageError('a checkpoint needs --model NAME and/or --data NAME', { hint: 'e.g. cpv checkpoint create exp-1 --model resnet --data imagenet' });
  }
  const registry = await readRegistry(repo);
  const models = opts.models.length ? selectArtifacts(registry, 'model', opts.models, opts.team) : [];
  const data = opts.data.length ? selectArtifacts(registry, 'data', opts.data, opts.team) : [];
  const r: CheckpointCreateResult = await createTag(repo, {
    cwd: repo.root,
    name: opts.tag,
    models: models.map((m) => m.path),
    data: data.map((d) => d.path),
    message: opts.message ?? `Checkpoint ${opts.tag}`,
    meta: opts.meta,
    dryRun: opts.dryRun,
  });
  if (opts.gitPush !== undefined) {
    r.published = await pushTags(repo, { remote: opts.remote, gitRemote: opts.gitPush, only: [opts.tag], jobs: opts.jobs, dryRun: opts.dryRun, signal: opts.signal, onProgress: opts.onProgress });
  }
  return r;
}

/** A checkpoint in a list. */
export interface CheckpointSummary {
  tag: string;
  date: string;
  commit: string | undefined;
  subject: string;
  models: Array<{ name: string; path: string; oid: string }>;
  data: Array<{ name: string; path: string; oid: string }>;
  meta?: Record<string, MetaValue>;
  error?: string;
}

/** Whether a version tag is a per-artifact tag `NAME@VERSION` (from upload/tag) rather than a checkpoint. */
export function isArtifactTag(t: Pick<VersionTag, 'name' | 'block'>): boolean {
  const at = t.name.lastIndexOf('@');
  const arts = t.block?.artifacts ?? [];
  return at > 0 && arts.length === 1 && arts[0]!.name === t.name.slice(0, at);
}

/**
 * Checkpoints: version tags other than per-artifact `NAME@VERSION` tags, oldest
 * first, with the models and data each binds; `team` keeps those binding any
 * artifact of that team. Read-only.
 */
export async function checkpointList(repo: Repo, opts: { team?: string } = {}): Promise<CheckpointSummary[]> {
  const out: CheckpointSummary[] = [];
  for (const t of await versionTags(repo)) {
    if (isArtifactTag(t)) continue;
    const arts = t.block?.artifacts ?? [];
    if (opts.team !== undefined && !arts.some((a) => teamOf(a.name) === opts.team)) continue;
    const pick = (kind: string) => arts.filter((a) => a.kind === kind).map((a) => ({ name: a.name, path: a.path, oid: a.oid }));
    out.push({
      tag: t.name,
      date: t.date,
      commit: t.commit,
      subject: t.message.split('\n')[0] ?? '',
      models: pick('model'),
      data: pick('data'),
      ...(t.block?.meta ? { meta: t.block.meta } : {}),
      ...(t.error !== undefined ? { error: t.error } : {}),
    });
  }
  return out;
}

/** A checkpoint in full: the tag and each artifact's pointer at its commit. */
export interface CheckpointInfo extends TagInfo {
  artifacts: Array<{ name: string; kind: string; path: string; pointer: Pointer }>;
}

/**
 * Everything a checkpoint records: the tag (message, tagger, date, metadata) and, per
 * bound artifact, its pointer at the tagged commit (metadata, params, metrics).
 * Read-only. Throws NotFoundError when the tag is not a version tag.
 */
export async function checkpointInfo(repo: Repo, tag: string): Promise<CheckpointInfo> {
  const top = await requireGit(repo.root);
  const t = await showTag(repo, tag);
  const pointers = await pointersAtCommit(repo, top, t.commit);
  return {
    ...t,
    artifacts: t.block.artifacts.map((a) => {
      const p = pointers.get(a.path);
      if (!p) throw new NotFoundError(`checkpoint ${tag} lists ${a.path}, but its commit has no pointer for it`, { hint: 'the tag was edited by hand; recreate it with `cpv checkpoint create`' });
      return { name: a.name, kind: a.kind, path: a.path, pointer: p };
    }),
  };
}

export interface CheckpointRevertOptions extends RevertRunOptions {
  tag: string;
}

/**
 * Restore every artifact a checkpoint binds, models and data together, as one new
 * commit (see revert), then check the content out, fetching what the cache lacks.
 */
export async function checkpointRevert(repo: Repo, opts: CheckpointRevertOptions): Promise<RevertResult> {
  const t = await showTag(repo, opts.tag);
  const r = await revert(repo, {
    cwd: repo.root,
    targets: t.block.artifacts.map((a) => a.path),
    // Never a branch of the same name (git would prefer refs/heads/NAME to refs/tags/NAME).
    to: t.commit,
    message: opts.message ?? `cpv: revert to checkpoint ${t.name}`,
    force: opts.force,
    dryRun: opts.dryRun,
    remote: opts.remote,
    jobs: opts.jobs,
    signal: opts.signal,
    onProgress: opts.onProgress,
  });
  return { ...r, rev: t.name };
}
