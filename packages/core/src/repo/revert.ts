import { readFile, rm } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { ConflictError, NotFoundError, PointerParseError, UsageError } from '../errors.js';
import { pointerBlobsAt, requireGit, resolveRev } from '../git/git.js';
import { commitPaths, readBlob, requireIdentity, uncommittedPaths } from '../git/history.js';
import { parsePointer, type Pointer } from '../pointer/pointer.js';
import type { FetchResult } from '../transfer/fetch.js';
import type { ProgressEvent } from '../transfer/types.js';
import { writeAtomic } from '../util/fs-atomic.js';
import { checkout, type CheckoutResult } from './checkout.js';
import { resolveHistoryTargets, type HistoryTarget } from './history-targets.js';
import { ignoreInGit } from './pointers.js';
import type { Repo } from './repo.js';
import { withRepoLock } from './lock.js';
import { StatCache } from './state.js';
import { status } from './status.js';
import { fetch } from './sync.js';
import { dirEntries, statTracked, workspaceOid } from './workspace.js';

export interface RevertOptions {
  cwd: string;
  /** Tracked paths or pointer files; a path tracked only at `to` may be named too. */
  targets: readonly string[];
  /** The revision (branch, tag, commit, `HEAD~1`) whose pointers to restore. */
  to: string;
  /** Commit message (default `cpv: revert PATH... to REV`). */
  message?: string;
  /** Commit the restored pointers (default true). */
  commit?: boolean;
  /** Overwrite uncommitted pointer edits and workspace data that is not in the cache. */
  force?: boolean;
  dryRun?: boolean;
  /** Remote to fetch missing content from (default: the default remote). */
  remote?: string;
  jobs?: number;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

/** One reverted path. */
export interface RevertItem {
  /** Tracked path relative to the repo root. */
  path: string;
  pointerPath: string;
  type: 'file' | 'dir';
  kind: Pointer['kind'];
  /** oid the workspace pointer named before; absent if the path was not tracked (or its pointer was unreadable, with force). */
  from?: string;
  /** oid at the revision: what the path holds now. */
  to: string;
  /** Whether the pointer file changed. */
  changed: boolean;
}

export interface RevertResult {
  /** The revision as given. */
  rev: string;
  /** The commit it resolved to. */
  revCommit: string;
  /** The new commit; absent with `commit: false`, `dryRun`, or when no pointer changed. */
  commit?: string;
  reverted: RevertItem[];
  /** Tracked paths whose content was not in the cache (fetched from the remote, or to be fetched with dryRun). */
  fetchNeeded: string[];
  fetch?: FetchResult & { remote: string };
  /** What checkout did (absent with dryRun). */
  checkout?: CheckoutResult;
  /** Files written (pointers and .gitignore files), relative to the repo root. */
  written: string[];
}

interface Plan {
  target: HistoryTarget;
  /** The pointer's text at the revision, byte for byte. */
  text: string;
  pointer: Pointer;
  /** The workspace pointer's text, undefined if absent. */
  currentText: string | undefined;
  current: Pointer | undefined;
}

/**
 * Make tracked paths hold what they held at revision `to`: write each pointer file
 * exactly as it is in that revision, fetch its content from the remote if the cache
 * lacks it, check it out, git-ignore the path, and record the pointers as a new commit
 * (`cpv: revert PATH... to REV`). History is never rewritten.
 *
 * Refuses with ConflictError, before changing anything, when a target's pointer file
 * has uncommitted edits, or its workspace data has changes that are not saved in the
 * cache (checkout's rules), unless `force`. If fetch or checkout fails, the pointer
 * files are put back as they were and nothing is committed. Throws GitError for an
 * unknown revision (or a failed commit, after the workspace was updated),
 * NotFoundError for a path not tracked at the revision, UsageError for no targets or a
 * path inside a tracked directory. Idempotent: reverting to the same revision again
 * changes and commits nothing. Holds the repository lock (unless `dryRun`).
 */
export async function revert(repo: Repo, opts: RevertOptions): Promise<RevertResult> {
  return withRepoLock(repo.root, { command: 'revert', skip: opts.dryRun }, () => revertLocked(repo, opts));
}

async function revertLocked(repo: Repo, opts: RevertOptions): Promise<RevertResult> {
  if (opts.targets.length === 0) {
    throw new UsageError('name the tracked paths to revert', { hint: 'e.g. `cpv revert model.safetensors --to HEAD~1`' });
  }
  const top = await requireGit(repo.root);
  const prefix = relative(top, repo.root).split(sep).join('/');
  const fromTop = (rel: string): string => (prefix ? `${prefix}/${rel}` : rel);
  const revCommit = await resolveRev(top, opts.to);
  const atRev = await pointerBlobsAt(top, revCommit, prefix);
  const known = [...atRev.keys()].map((p) => (prefix ? p.slice(prefix.length + 1) : p));
  const targets = await resolveHistoryTargets(repo, opts.cwd, opts.targets, known);

  const plans: Plan[] = [];
  for (const t of targets) {
    if (t.inner !== undefined) {
      throw new UsageError(`${t.arg} is inside the tracked directory ${t.path}; a tracked directory is reverted as a whole`, { hint: `revert the directory: \`cpv revert ${t.path} --to ${opts.to}\`` });
    }
    const blob = atRev.get(fromTop(t.pointerPath));
    if (blob === undefined) {
      throw new NotFoundError(`${t.path} is not tracked at ${opts.to}`, { hint: `see the versions cpv knows with \`cpv log ${t.path}\``, data: { path: t.path, rev: opts.to } });
    }
    const text = await readBlob(top, blob);
    const pointer = parsePointer(text, `${opts.to}:${t.pointerPath}`, basename(t.pointerPath));
    const currentText = await readFile(join(repo.root, t.pointerPath), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    let current: Pointer | undefined;
    if (currentText !== undefined) {
      try {
        current = parsePointer(currentText, t.pointerPath);
      } catch (err) {
        // A mangled pointer (a merge conflict, say) is exactly what --force may replace.
        if (!(err instanceof PointerParseError) || !opts.force) throw err;
      }
    }
    plans.push({ target: t, text, pointer, currentText, current });
  }

  if (!opts.force) {
    const dirty = await uncommittedPaths(top, plans.map((p) => fromTop(p.target.pointerPath)));
    if (dirty.length > 0) {
      throw new ConflictError(`pointer files have uncommitted changes: ${dirty.join(', ')}`, {
        hint: 'commit or discard them first (see `git status`), or pass --force to overwrite them',
        data: { paths: dirty },
      });
    }
    const unsaved = await unsavedData(repo, plans);
    if (unsaved.length > 0) {
      throw new ConflictError(`revert would overwrite changes that are not saved in the cache: ${unsaved.slice(0, 5).join(', ')}${unsaved.length > 5 ? ', …' : ''}`, {
        hint: 'save them with `cpv add` (and commit the pointer), or pass --force to discard them',
        data: { paths: unsaved },
      });
    }
  }

  const reverted: RevertItem[] = plans.map((p) => ({
    path: p.target.path,
    pointerPath: p.target.pointerPath,
    type: p.pointer.type,
    kind: p.pointer.kind,
    ...(p.current ? { from: p.current.oid } : {}),
    to: p.pointer.oid,
    changed: p.currentText !== p.text,
  }));
  const fetchNeeded: string[] = [];
  for (const p of plans) if (!(await isCached(repo, p.pointer))) fetchNeeded.push(p.target.path);
  const result: RevertResult = { rev: opts.to, revCommit, reverted, fetchNeeded, written: [] };
  if (opts.dryRun) return result;

  const commit = opts.commit !== false;
  if (commit) await requireIdentity(top);

  // Write the pointers, then bring the content: a failure puts the pointers back.
  const changed = plans.filter((p) => p.currentText !== p.text);
  const pointerPaths = plans.map((p) => p.target.pointerPath);
  try {
    for (const p of changed) {
      await writeAtomic(join(repo.root, p.target.pointerPath), Buffer.from(p.text, 'utf8'), { mode: 0o644 });
      result.written.push(p.target.pointerPath);
    }
    if (fetchNeeded.length > 0) {
      const need = plans.filter((p) => fetchNeeded.includes(p.target.path)).map((p) => p.target.pointerPath);
      result.fetch = await fetch(repo, { cwd: repo.root, targets: need, remote: opts.remote, jobs: opts.jobs, signal: opts.signal, onProgress: opts.onProgress });
    }
    result.checkout = await checkout(repo, { cwd: repo.root, targets: pointerPaths, force: opts.force, signal: opts.signal, onProgress: opts.onProgress });
  } catch (err) {
    for (const p of changed) {
      const file = join(repo.root, p.target.pointerPath);
      if (p.currentText === undefined) await rm(file, { force: true });
      else await writeAtomic(file, Buffer.from(p.currentText, 'utf8'), { mode: 0o644 });
    }
    result.written = [];
    throw err;
  }
  const ignores = await ignoreInGit(
    repo,
    plans.map((p) => p.target.path),
  );
  result.written.push(...ignores);

  if (commit) {
    const toCommit = await uncommittedPaths(top, [...pointerPaths, ...ignores].map(fromTop));
    if (toCommit.length > 0) {
      const names = plans.map((p) => p.target.path);
      const listed = names.length <= 3 ? names.join(' ') : `${names.slice(0, 3).join(' ')} and ${names.length - 3} more`;
      const message = opts.message ?? `cpv: revert ${listed} to ${opts.to}\n\nPointers restored from commit ${revCommit}.`;
      result.commit = await commitPaths(top, toCommit, message);
    }
  }
  return result;
}

/** Whether everything `p` names is in the cache (for a directory: its tree and every file). */
async function isCached(repo: Repo, p: Pointer): Promise<boolean> {
  if (p.type === 'file') return repo.cache.hasFile(p.oid);
  if (!(await repo.cache.hasTree(p.oid))) return false;
  for (const e of await repo.cache.readTree(p.oid)) if (!(await repo.cache.hasFile(e.oid))) return false;
  return true;
}

/**
 * Workspace data under the targets that differs from the pointer it is tracked by
 * now and is not in the cache (so checking out another version would lose it), or
 * that sits untracked where a reverted path goes. Conservative where checkout would be
 * finer (a modified directory's files are checked one by one against the cache).
 */
async function unsavedData(repo: Repo, plans: readonly Plan[]): Promise<string[]> {
  const out: string[] = [];
  const tracked = plans.filter((p) => p.current !== undefined);
  const items = tracked.length === 0 ? [] : await status(repo, { cwd: repo.root, targets: tracked.map((p) => p.target.pointerPath) });
  const state = await StatCache.load(repo.root);
  const wanted = new Map(plans.map((p) => [p.target.path, p.pointer]));
  for (const item of items) {
    if (item.workspace !== 'modified') continue;
    const want = wanted.get(item.path)!;
    if (item.current?.oid === want.oid) continue; // already holds the version wanted
    if (item.type === 'file') {
      if (!item.current || !(await repo.cache.hasFile(item.current.oid))) out.push(item.path);
      continue;
    }
    if (!item.current) {
      out.push(`${item.path} (a file where a directory is tracked)`);
      continue;
    }
    if (await repo.cache.hasTree(item.current.oid)) continue; // added with `cpv add` before
    for (const e of await dirEntries(repo, join(repo.root, item.path), item.path, state)) {
      if (!(await repo.cache.hasFile(e.oid))) out.push(`${item.path}/${e.path}`);
    }
  }
  // Paths cpv does not track now: whatever is there would be replaced.
  for (const p of plans) {
    if (p.currentText !== undefined) continue;
    const abs = join(repo.root, p.target.path);
    const st = await statTracked(repo, abs);
    if (!st) continue;
    if (st.isFile()) {
      const oid = await workspaceOid(abs, p.target.path, st, state);
      if (oid !== p.pointer.oid && !(await repo.cache.hasFile(oid))) out.push(`${p.target.path} (not tracked)`);
    } else out.push(`${p.target.path} (not tracked)`);
  }
  await state.save();
  return out;
}
