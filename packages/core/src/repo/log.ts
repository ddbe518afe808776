import { relative, sep } from 'node:path';
import { NotFoundError } from '../errors.js';
import { requireGit } from '../git/git.js';
import { commitsTouching, fileAt, readBlob, tagsByCommit } from '../git/history.js';
import { headCommit, pointerBlobsAt } from '../git/git.js';
import { parsePointer, type ArtifactKind, type MetaValue, type Pointer } from '../pointer/pointer.js';
import { resolveHistoryTargets } from './history-targets.js';
import type { Repo } from './repo.js';

export interface LogOptions {
  cwd: string;
  /** Tracked paths or pointer files (default: every pointer in HEAD). Paths tracked only in the past may be named too. */
  targets: readonly string[];
  /** At most this many versions per path (newest first). */
  maxCount?: number;
}

/** A data artifact recorded next to a model version: the data it was trained on. */
export interface LineageItem {
  /** Tracked path relative to the repo root. */
  path: string;
  oid: string;
  name?: string;
}

/** One commit that changed a path's pointer, and the pointer as that commit has it. */
export interface LogVersion {
  commit: string;
  /** Author date, ISO 8601. */
  date: string;
  author: string;
  email: string;
  subject: string;
  /** Tags that point at this commit. */
  tags: string[];
  /** Set when this commit removed the pointer; the pointer fields are then absent. */
  deleted?: true;
  kind?: ArtifactKind;
  name?: string;
  type?: 'file' | 'dir';
  oid?: string;
  size?: number;
  files?: number;
  meta?: Record<string, MetaValue>;
  params?: Record<string, MetaValue>;
  metrics?: Record<string, MetaValue>;
  /** Model versions only: the data artifacts whose pointers are in the same commit, by path. */
  data?: LineageItem[];
}

/** The history of one tracked path. */
export interface PathLog {
  path: string;
  pointerPath: string;
  /** Newest first. */
  versions: LogVersion[];
}

export interface LogResult {
  items: PathLog[];
}

/**
 * The versions of tracked paths in git history: for each commit that changed a
 * path's pointer file (following only that file, newest first), the commit, its
 * tags, the pointer at that commit, and for a model the data artifacts whose pointers
 * the same commit holds ("which data was this model trained on"). Read-only. Throws
 * NotAGitRepoError, NotFoundError for a named path git never tracked, and
 * PointerParseError (naming `COMMIT:path`) for a malformed pointer in history.
 */
export async function log(repo: Repo, opts: LogOptions): Promise<LogResult> {
  const top = await requireGit(repo.root);
  const prefix = relative(top, repo.root).split(sep).join('/');
  const fromTop = (rel: string): string => (prefix ? `${prefix}/${rel}` : rel);
  const toRoot = (topRel: string): string => (prefix ? topRel.slice(prefix.length + 1) : topRel);
  if ((await headCommit(top)) === undefined) {
    if (opts.targets.length === 0) return { items: [] };
    throw new NotFoundError(`${opts.targets[0]} has no history: the repository has no commits yet`, { hint: 'commit the pointer files first' });
  }
  const atHead = [...(await pointerBlobsAt(top, 'HEAD', prefix)).keys()].map(toRoot);
  const targets =
    opts.targets.length === 0
      ? atHead.map((p) => ({ path: p.slice(0, -'.cpv'.length), pointerPath: p, arg: p }))
      : await resolveHistoryTargets(repo, opts.cwd, opts.targets, atHead);

  const tags = await tagsByCommit(top);
  const blobs = new Map<string, Promise<string>>();
  const readCached = (oid: string): Promise<string> => {
    let p = blobs.get(oid);
    if (!p) blobs.set(oid, (p = readBlob(top, oid)));
    return p;
  };
  const lineage = new Map<string, Promise<LineageItem[]>>();
  const dataAt = (commit: string): Promise<LineageItem[]> => {
    let p = lineage.get(commit);
    if (!p) {
      p = (async () => {
        const out: LineageItem[] = [];
        for (const [path, oid] of await pointerBlobsAt(top, commit, prefix)) {
          const ptr = parsePointer(await readCached(oid), `${commit.slice(0, 12)}:${toRoot(path)}`, path.slice(path.lastIndexOf('/') + 1));
          if (ptr.kind !== 'data') continue;
          const rel = toRoot(path).slice(0, -'.cpv'.length);
          out.push({ path: rel, oid: ptr.oid, ...(ptr.name !== undefined ? { name: ptr.name } : {}) });
        }
        return out;
      })();
      lineage.set(commit, p);
    }
    return p;
  };

  const items: PathLog[] = [];
  for (const t of targets) {
    const commits = await commitsTouching(top, fromTop(t.pointerPath), { maxCount: opts.maxCount });
    if (commits.length === 0) {
      throw new NotFoundError(`${t.arg} has no history in git: no commit recorded ${t.pointerPath}`, { hint: 'commit the pointer file, or list tracked paths with `cpv log`', data: { path: t.path } });
    }
    const versions: LogVersion[] = [];
    for (const c of commits) {
      const base = { commit: c.commit, date: c.date, author: c.author, email: c.email, subject: c.subject, tags: tags.get(c.commit) ?? [] };
      const text = await fileAt(top, c.commit, fromTop(t.pointerPath));
      if (text === undefined) {
        versions.push({ ...base, deleted: true });
        continue;
      }
      const p: Pointer = parsePointer(text, `${c.commit.slice(0, 12)}:${t.pointerPath}`, t.pointerPath.slice(t.pointerPath.lastIndexOf('/') + 1));
      versions.push({
        ...base,
        kind: p.kind,
        ...(p.name !== undefined ? { name: p.name } : {}),
        type: p.type,
        oid: p.oid,
        size: p.size,
        ...(p.files !== undefined ? { files: p.files } : {}),
        ...(p.meta !== undefined ? { meta: p.meta } : {}),
        ...(p.params !== undefined ? { params: p.params } : {}),
        ...(p.metrics !== undefined ? { metrics: p.metrics } : {}),
        ...(p.kind === 'model' ? { data: await dataAt(c.commit) } : {}),
      });
    }
    items.push({ path: t.path, pointerPath: t.pointerPath, versions });
  }
  return { items };
}
