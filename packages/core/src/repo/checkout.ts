import { chmod, copyFile, link, lstat, rm, symlink } from 'node:fs/promises';
import { chmodSync, constants as fsConstants, copyFileSync, mkdirSync, readdirSync, rmdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { ConflictError, IntegrityError, NotFoundError, PointerParseError } from '../errors.js';
import type { LinkMode } from '../config/config.js';
import { selectEntries, type TreeEntry } from '../store/tree.js';
import type { ProgressEvent } from '../transfer/types.js';
import { shortOid, toFileOid } from '../util/oid.js';
import { loadHasher } from '../hash/blake3.js';
import { TaskGroup } from '../util/task-group.js';
import { resolveTargets, type Target } from './pointers.js';
import type { Repo } from './repo.js';
import { withRepoLock } from './lock.js';
import { missingFiles } from '../store/missing-files.js';
import { StatCache } from './state.js';
import { listDirFiles, statTracked, workspaceOid, type DirFile } from './workspace.js';

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
  size?: number;
  mode?: number;
}

/**
 * Make the workspace match the pointers of `targets` (all pointers when empty), from
 * the cache. Plans everything first: if any change would destroy content that is
 * not in the cache (uncommitted work), throws ConflictError listing it and changes
 * nothing, unless `force`. Throws NotFoundError if a needed object is not cached
 * (run fetch first). Every cache object is rehashed before it is linked or copied
 * (unless the download just before, in this process, wrote it from verified bytes:
 * `Cache.takeFresh`),
 * and each file appears through a temp name and a rename, so the workspace never
 * holds a partial or unverified file. Idempotent. Holds the repository lock (unless
 * `dryRun`): ConflictError while another cpv process holds it.
 */
export async function checkout(repo: Repo, opts: CheckoutOptions): Promise<CheckoutResult> {
  return withRepoLock(repo.root, { command: 'checkout', skip: opts.dryRun }, () => checkoutLocked(repo, opts));
}

async function checkoutLocked(repo: Repo, opts: CheckoutOptions): Promise<CheckoutResult> {
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

  const ops = plans.flatMap((p) => p.ops);
  const writes = ops.filter((o) => o.kind !== 'delete');
  const total = writes.length;
  let done = 0;
  const corrupt = (oid: string, rel: string): IntegrityError =>
    new IntegrityError(`cache object ${shortOid(oid)} for ${rel} is corrupt (${repo.cache.filePath(oid)}); the workspace was left as it was`, {
      hint: `delete ${repo.cache.filePath(oid)} and run \`cpv pull\` to fetch a good copy`,
      data: { oid, path: rel },
    });
  const verified = new Map<string, Promise<void>>();
  const verify = (oid: string, rel: string): Promise<void> => {
    let v = verified.get(oid);
    // Just downloaded and verified by this process (a pull): no second read of it.
    if (!v && repo.cache.takeFresh(oid)) v = Promise.resolve();
    if (!v) {
      v = repo.cache.verifyFile(oid).then((ok) => {
        if (!ok) throw corrupt(oid, rel);
      });
      verified.set(oid, v);
    }
    return v;
  };
  const newHasher = await loadHasher();
  const links: LinkState = { prefs: repo.config.link, disabled: new Set() };
  const staged = new Map<Op, string>();
  // Staging lives inside the repository (same filesystem as the workspace, so the
  // final step is a rename) but outside the tracked paths, whose directories may
  // still be files, or the other way round, until phase 2.
  const stage = join(repo.root, '.cpv', 'tmp', `checkout-${randomBytes(6).toString('hex')}`);
  mkdirSync(stage, { recursive: true });
  let seq = 0;

  // Phase 1: stage every new file, verified. Any failure removes the staged files and
  // leaves the workspace exactly as it was.
  const group = new TaskGroup(repo.config.jobs);
  for (const op of writes) {
    void group.run(async () => {
      opts.signal?.throwIfAborted();
      const src = repo.cache.filePath(op.oid!);
      const tmp = join(stage, String(seq++));
      if ((op.size ?? Infinity) <= SMALL_FILE && copyFirst(links)) {
        // Small files: read once, verify those bytes, write exactly them. Synchronous
        // calls: for many small files the thread-pool round trips cost more than the IO.
        const bytes = readFileSync(src);
        if (!repo.cache.takeFresh(op.oid!)) {
          const h = newHasher();
          h.update(bytes);
          if (toFileOid(h.digestHex()) !== op.oid) throw corrupt(op.oid!, op.rel);
        }
        staged.set(op, tmp);
        writeFileSync(tmp, bytes, { mode: op.mode ?? 0o644 });
        chmodSync(tmp, op.mode ?? 0o644); // writeFileSync's mode is subject to the umask
        result.linkMode = 'copy';
      } else {
        await verify(op.oid!, op.rel);
        staged.set(op, tmp);
        result.linkMode = await linkInto(src, tmp, op.mode ?? 0o644, links);
      }
      opts.onProgress?.({ phase: 'checkout', done: ++done, total, path: op.rel });
    });
  }
  try {
    await group.all();
  } catch (err) {
    await group.settle();
    rmSync(stage, { recursive: true, force: true });
    throw err;
  }

  // Phase 2: deletions (a path may change between file and directory), then renames.
  try {
    for (const op of ops) {
      if (op.kind !== 'delete') continue;
      // Planned only for content that is cached, or under --force.
      rmSync(op.abs, { force: true, recursive: true });
      state.forget(op.rel);
    }
    const made = new Set<string>();
    for (const op of writes) {
      place(staged.get(op)!, op.abs, made);
      staged.delete(op);
      state.record(op.rel, statSync(op.abs), op.oid!);
    }
  } finally {
    rmSync(stage, { recursive: true, force: true });
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
    if (!(await cachedWithSize(repo, p.oid, p.size, () => new PointerParseError(t.pointerPath, `size ${p.size} does not match its content ${shortOid(p.oid)}`)))) missing.push(t.path);
    const st = await statTracked(repo, t.abs);
    if (!st) {
      ops.push({ kind: 'create', rel: t.path, abs: t.abs, oid: p.oid, size: p.size });
      item.created++;
    } else if (st.isDirectory()) {
      if (!force) conflicts.push(`${t.path} (a directory where a file is tracked)`);
      ops.push({ kind: 'delete', rel: t.path, abs: t.abs }, { kind: 'create', rel: t.path, abs: t.abs, oid: p.oid, size: p.size });
      item.updated++;
    } else {
      const ws = await workspaceOid(t.abs, t.path, st, state);
      if (ws === p.oid) item.unchanged++;
      else {
        if (!(await saved(ws))) conflicts.push(t.path);
        ops.push({ kind: 'update', rel: t.path, abs: t.abs, oid: p.oid, size: p.size, mode: st.mode & 0o100 ? 0o755 : 0o644 });
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
  // The pointer's totals must be those of the tree it names.
  const total = entries.reduce((n, e) => n + e.size, 0);
  if (total !== p.size || entries.length !== p.files) {
    throw new PointerParseError(t.pointerPath, `size ${p.size} and files ${p.files} do not match its tree ${shortOid(p.oid)} (${total} bytes in ${entries.length} files)`);
  }
  const selected = selectEntries(entries, t.only, t.path);
  const wanted = entries.filter((e) => selected.has(e.path));
  // The tracked directory itself. A symbolic link there is replaced, never written
  // through: it could point anywhere in the repository (even into .git).
  const lst = await lstat(t.abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  let present = new Map<string, DirFile>();
  if (lst?.isSymbolicLink()) {
    if (!force) conflicts.push(`${t.path} (a symbolic link where a directory is tracked)`);
    ops.push({ kind: 'delete', rel: t.path, abs: t.abs });
  } else if (lst && !lst.isDirectory()) {
    const ws = await workspaceOid(t.abs, t.path, lst, state);
    if (!(await saved(ws))) conflicts.push(`${t.path} (a file where a directory is tracked)`);
    ops.push({ kind: 'delete', rel: t.path, abs: t.abs });
  } else if (lst) {
    present = new Map((await listDirFiles(repo, t.abs)).map((f) => [f.path, f]));
  }
  // One listing per fan-out directory instead of a stat per file.
  const absent = missingFiles(repo.cache, wanted.map((e) => e.oid));
  for (const e of wanted) {
    const rel = `${t.path}/${e.path}`;
    const sizeLie = () => new IntegrityError(`tree ${shortOid(p.oid)} of ${t.path} lists ${rel} as ${e.size} bytes, but its content ${shortOid(e.oid)} has another size`, { data: { oid: p.oid, path: rel } });
    if (absent.has(e.oid) || !(await cachedWithSize(repo, e.oid, e.size, sizeLie))) missing.push(rel);
    const abs = join(t.abs, ...e.path.split('/'));
    const f = present.get(e.path);
    if (!f) {
      ops.push({ kind: 'create', rel, abs, oid: e.oid, size: e.size, mode: e.mode });
      item.created++;
      continue;
    }
    const ws = await workspaceOid(f.abs, rel, f.st, state);
    if (ws === e.oid && f.mode === e.mode) item.unchanged++;
    else {
      if (ws !== e.oid && !(await saved(ws))) conflicts.push(rel);
      ops.push({ kind: 'update', rel, abs, oid: e.oid, size: e.size, mode: e.mode });
      item.updated++;
    }
  }
  // Workspace files the tracked version does not have: all of them for a whole
  // directory; for selected paths only those in the way (a file where a wanted file
  // needs a directory, or files where a wanted file goes).
  const inTree = new Set(entries.map((e) => e.path));
  const inTheWay = (path: string): boolean => !t.only || wanted.some((w) => w.path.startsWith(path + '/') || path.startsWith(w.path + '/'));
  for (const [path, f] of present) {
    if (inTree.has(path) || !inTheWay(path)) continue;
    const rel = `${t.path}/${path}`;
    const ws = await workspaceOid(f.abs, rel, f.st, state);
    if (!(await saved(ws))) conflicts.push(`${rel} (not in the tracked version)`);
    ops.push({ kind: 'delete', rel, abs: f.abs });
    item.deleted++;
  }
  return { item, ops };
}

/**
 * Whether the cache holds `oid`, with exactly `size` bytes. A cached object of another
 * size is either damaged (it then fails its hash: IntegrityError naming it) or sound,
 * and then the record that gave `size` is wrong: throws `recordError()`.
 */
async function cachedWithSize(repo: Repo, oid: string, size: number, recordError: () => Error): Promise<boolean> {
  const have = await repo.cache.fileSize(oid);
  if (have === undefined || have === size) return have !== undefined;
  if (!(await repo.cache.verifyFile(oid))) {
    throw new IntegrityError(`cache object ${shortOid(oid)} is corrupt (${repo.cache.filePath(oid)})`, { hint: `delete it and run \`cpv pull\` to fetch a good copy`, data: { oid } });
  }
  throw recordError();
}

/** Files up to this size are checked out from memory: read once, verified, written. */
const SMALL_FILE = 1024 * 1024;

/** Whether the preferred usable link mode makes a private copy (reflink or copy). */
function copyFirst(links: LinkState): boolean {
  const m = links.prefs.find((p) => !links.disabled.has(p));
  return m === 'copy' || m === 'reflink';
}

/**
 * Move a staged file onto `dest`: a rename, replacing a file or an empty directory
 * (the plan only replaces what is cached or forced); a copy if `dest` is on another
 * filesystem (a tracked directory that is a mount point). `made` holds directories
 * this checkout already created or found.
 */
function place(tmp: string, dest: string, made: Set<string>): void {
  const dir = dirname(dest);
  try {
    // Once per directory: thousands of small files share a few directories.
    if (!made.has(dir)) mkdirSync(dir, { recursive: true });
    made.add(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTDIR') throw err;
    throw new ConflictError(`cannot create ${dirname(dest)}: a file is in the way`, { hint: 'move it away, or run the command again with --force' });
  }
  try {
    renameSync(tmp, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') {
      // The plan deleted every file in the way; what is left can only be empty
      // directories. Anything else is a change made since planning: stop.
      removeEmptyDirs(dest);
      renameSync(tmp, dest);
    } else if (code === 'EXDEV') {
      const part = `${dest}.cpv-${randomBytes(4).toString('hex')}`;
      copyFileSync(tmp, part);
      renameSync(part, dest);
      rmSync(tmp, { force: true });
    } else throw err;
  }
}

/** Remove a tree of empty directories; throws ConflictError if it holds anything else. */
function removeEmptyDirs(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) throw new ConflictError(`${join(dir, e.name)} is in the way and is not part of the plan`, { hint: 'it appeared during checkout; move it away and run the command again' });
    removeEmptyDirs(join(dir, e.name));
  }
  rmdirSync(dir);
}

/** Link modes to try, and those found not to work on this filesystem during this run. */
export interface LinkState {
  prefs: readonly LinkMode[];
  disabled: Set<LinkMode>;
}

/** Errors that mean "this link mode cannot work here", not "this file failed". */
const UNSUPPORTED = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EPERM', 'EINVAL', 'ENOSYS', 'EMLINK']);

/**
 * Create `tmp` from the cache object `src` with the first link mode that works
 * (reflink, hardlink, symlink or copy). A mode that fails for lack of support is not
 * tried again in this run. Returns the mode used. On failure nothing is left at `tmp`.
 */
export async function linkInto(src: string, tmp: string, mode: number, links: LinkState): Promise<LinkMode> {
  let lastErr: unknown;
  for (const m of links.prefs) {
    if (links.disabled.has(m)) continue;
    try {
      if (m === 'reflink') await copyFile(src, tmp, fsConstants.COPYFILE_FICLONE_FORCE);
      else if (m === 'hardlink') await link(src, tmp);
      else if (m === 'symlink') await symlink(src, tmp);
      else await copyFile(src, tmp);
      // Links share the read-only cache object; only private copies get a normal mode.
      if (m === 'reflink' || m === 'copy') await chmod(tmp, mode);
      return m;
    } catch (err) {
      lastErr = err;
      await rm(tmp, { force: true });
      if (UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) {
        links.disabled.add(m);
        continue;
      }
      throw err;
    }
  }
  throw lastErr ?? new Error(`no link mode configured for ${tmp}`);
}
