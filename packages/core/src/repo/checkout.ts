import { chmod, copyFile, link, mkdir, rename, rm, stat, symlink } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { ConflictError, IntegrityError, NotFoundError } from '../errors.js';
import type { LinkMode } from '../config/config.js';
import type { TreeEntry } from '../store/tree.js';
import type { ProgressEvent } from '../transfer/types.js';
import { shortOid } from '../util/oid.js';
import { resolveTargets, type Target } from './pointers.js';
import type { Repo } from './repo.js';
import { StatCache } from './state.js';
import { listDirFiles, statTracked, workspaceOid } from './workspace.js';

export interface CheckoutOptions {
  cwd: string;
  targets: readonly string[];
  /** Overwrite or delete workspace content that exists nowhere else. */
  force?: boolean;
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

/** What checkout did (or would do) to one tracked path. */
export interface CheckoutItem {
  path: string;
  type: 'file' | 'dir';
  oid: string;
  /** Files created, replaced or deleted in the workspace. */
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
}

export interface CheckoutResult {
  items: CheckoutItem[];
  /** Link mode used for the last file materialized (undefined if none). */
  linkMode?: LinkMode;
}

interface Op {
  kind: 'create' | 'update' | 'delete';
  /** Workspace path relative to root (for the stat cache). */
  rel: string;
  abs: string;
  oid?: string;
  mode?: number;
}

/**
 * Make the workspace match the pointers of `targets` (all pointers when empty), from
 * the cache. Plans everything first: if any change would destroy content that is
 * not in the cache (uncommitted work), throws ConflictError listing it and changes
 * nothing, unless `force`. Throws NotFoundError if a needed object is not cached
 * (run fetch first). Every cache object is rehashed before it is linked or copied,
 * and each file appears through a temp name and a rename, so the workspace never
 * holds a partial or unverified file. Idempotent.
 */
export async function checkout(repo: Repo, opts: CheckoutOptions): Promise<CheckoutResult> {
  const targets = await resolveTargets(repo, opts.cwd, opts.targets);
  const state = await StatCache.load(repo.root);
  const plans: Array<{ item: CheckoutItem; ops: Op[] }> = [];
  const conflicts: string[] = [];
  const missing: string[] = [];

  for (const t of targets) {
    const plan = await planTarget(repo, t, state, opts.force ?? false, conflicts, missing);
    plans.push(plan);
  }
  if (missing.length > 0) {
    throw new NotFoundError(`${missing.length} object(s) needed for checkout are not in the cache: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`, {
      hint: 'run `cpv pull` (or `cpv fetch`) to download them',
      data: { missing },
    });
  }
  if (conflicts.length > 0) {
    throw new ConflictError(`checkout would overwrite changes that are not saved in the cache: ${conflicts.slice(0, 5).join(', ')}${conflicts.length > 5 ? ', …' : ''}`, {
      hint: 'save them with `cpv add`, or pass --force to discard them',
      data: { paths: conflicts },
    });
  }
  const result: CheckoutResult = { items: plans.map((p) => p.item) };
  if (opts.dryRun) return result;

  const total = plans.reduce((n, p) => n + p.ops.length, 0);
  let done = 0;
  const verified = new Set<string>();
  try {
    for (const { ops } of plans) {
      // Deletes first: a path that changed between file and directory must be cleared
      // before the new file or directory is created there.
      const ordered = [...ops.filter((o) => o.kind === 'delete'), ...ops.filter((o) => o.kind !== 'delete')];
      for (const op of ordered) {
        opts.signal?.throwIfAborted();
        if (op.kind === 'delete') {
          // Planned only for content that is cached, or under --force.
          await rm(op.abs, { force: true, recursive: true });
          state.forget(op.rel);
        } else {
          const oid = op.oid!;
          if (!verified.has(oid)) {
            if (!(await repo.cache.verifyFile(oid))) {
              throw new IntegrityError(`cache object ${shortOid(oid)} for ${op.rel} is corrupt (${repo.cache.filePath(oid)}); the workspace file was left as it was`, {
                hint: `delete ${repo.cache.filePath(oid)} and run \`cpv pull\` to fetch a good copy`,
                data: { oid, path: op.rel },
              });
            }
            verified.add(oid);
          }
          result.linkMode = await materialize(repo.cache.filePath(oid), op.abs, op.mode ?? 0o644, repo.config.link);
          state.record(op.rel, await stat(op.abs), oid);
        }
        opts.onProgress?.({ phase: 'checkout', done: ++done, total, path: op.rel });
      }
    }
  } finally {
    await state.save();
  }
  return result;
}

async function planTarget(repo: Repo, t: Target, state: StatCache, force: boolean, conflicts: string[], missing: string[]): Promise<{ item: CheckoutItem; ops: Op[] }> {
  const p = t.pointer;
  const item: CheckoutItem = { path: t.path, type: p.type, oid: p.oid, created: 0, updated: 0, deleted: 0, unchanged: 0 };
  const ops: Op[] = [];
  const saved = async (oid: string): Promise<boolean> => force || (await repo.cache.hasFile(oid));

  if (p.type === 'file') {
    if (!(await repo.cache.hasFile(p.oid))) missing.push(t.path);
    const st = await statTracked(repo, t.abs);
    if (!st) {
      ops.push({ kind: 'create', rel: t.path, abs: t.abs, oid: p.oid });
      item.created++;
    } else if (st.isDirectory()) {
      if (!force) conflicts.push(`${t.path} (a directory where a file is tracked)`);
      ops.push({ kind: 'delete', rel: t.path, abs: t.abs }, { kind: 'create', rel: t.path, abs: t.abs, oid: p.oid });
      item.updated++;
    } else {
      const ws = await workspaceOid(t.abs, t.path, st, state);
      if (ws === p.oid) item.unchanged++;
      else {
        if (!(await saved(ws))) conflicts.push(t.path);
        ops.push({ kind: 'update', rel: t.path, abs: t.abs, oid: p.oid, mode: st.mode & 0o100 ? 0o755 : 0o644 });
        item.updated++;
      }
    }
    return { item, ops };
  }

  let entries: TreeEntry[];
  try {
    entries = await repo.cache.readTree(p.oid);
  } catch (err) {
    if (err instanceof NotFoundError) {
      missing.push(t.path);
      return { item, ops };
    }
    throw err;
  }
  const wanted = t.only ? entries.filter((e) => [...t.only!].some((o) => e.path === o || e.path.startsWith(o + '/'))) : entries;
  const wsSt = await statTracked(repo, t.abs);
  if (wsSt && !wsSt.isDirectory()) {
    const ws = await workspaceOid(t.abs, t.path, wsSt, state);
    if (!(await saved(ws))) conflicts.push(`${t.path} (a file where a directory is tracked)`);
    ops.push({ kind: 'delete', rel: t.path, abs: t.abs });
  }
  const present = new Map((wsSt?.isDirectory() ? await listDirFiles(repo, t.abs) : []).map((f) => [f.path, f]));
  for (const e of wanted) {
    if (!(await repo.cache.hasFile(e.oid))) missing.push(`${t.path}/${e.path}`);
    const rel = `${t.path}/${e.path}`;
    const abs = join(t.abs, ...e.path.split('/'));
    const f = present.get(e.path);
    if (!f) {
      ops.push({ kind: 'create', rel, abs, oid: e.oid, mode: e.mode });
      item.created++;
      continue;
    }
    const ws = await workspaceOid(f.abs, rel, f.st, state);
    if (ws === e.oid && f.mode === e.mode) item.unchanged++;
    else {
      if (ws !== e.oid && !(await saved(ws))) conflicts.push(rel);
      ops.push({ kind: 'update', rel, abs, oid: e.oid, mode: e.mode });
      item.updated++;
    }
  }
  if (!t.only) {
    const inTree = new Set(entries.map((e) => e.path));
    for (const [path, f] of present) {
      if (inTree.has(path)) continue;
      const rel = `${t.path}/${path}`;
      const ws = await workspaceOid(f.abs, rel, f.st, state);
      if (!(await saved(ws))) conflicts.push(`${rel} (not in the tracked version)`);
      ops.push({ kind: 'delete', rel, abs: f.abs });
      item.deleted++;
    }
  }
  return { item, ops };
}

/**
 * Put a verified cache object at `dest` using the first link mode that works, through
 * a temp name in the destination directory and a rename. Returns the mode used.
 */
export async function materialize(src: string, dest: string, mode: number, prefs: readonly LinkMode[]): Promise<LinkMode> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = join(dirname(dest), `.${basename(dest)}.cpv-${randomBytes(4).toString('hex')}`);
  let lastErr: unknown;
  for (const m of prefs) {
    try {
      if (m === 'reflink') await copyFile(src, tmp, fsConstants.COPYFILE_FICLONE_FORCE);
      else if (m === 'hardlink') await link(src, tmp);
      else if (m === 'symlink') await symlink(src, tmp);
      else await copyFile(src, tmp);
      // Links share the read-only cache object; only private copies get a normal mode.
      if (m === 'reflink' || m === 'copy') await chmod(tmp, mode);
      try {
        await rename(tmp, dest);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EISDIR' && (err as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw err;
        await rm(dest, { recursive: true, force: true });
        await rename(tmp, dest);
      }
      return m;
    } catch (err) {
      lastErr = err;
      await rm(tmp, { force: true });
    }
  }
  throw lastErr;
}
