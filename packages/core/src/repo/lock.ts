import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { ConflictError } from '../errors.js';
import { errnoCode, removeIfExists } from '../util/fs-atomic.js';

/** What a lock file records about its holder (docs/format.md, "Repository lock"). */
export interface LockInfo {
  format: 'cpv-lock';
  version: 1;
  pid: number;
  hostname: string;
  /** When the lock was taken, ISO 8601. */
  started: string;
  /** The operation holding it (`push`, `gc`…), for messages. */
  command: string;
  /** Random per process: cpv processes started beneath the holder share its lock. */
  token: string;
}

export interface LockOptions {
  /** The operation that takes the lock, named in the message another process gets. */
  command: string;
  /** Do not lock at all (a dry run changes nothing). */
  skip?: boolean;
  /** A lock older than this is stale whoever holds it. Default 24 hours. */
  maxAgeMs?: number;
}

/** A lock older than this is stale even if its holder still seems to run (pid reuse, a hung process). */
export const LOCK_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** The environment variable naming the token of the lock this process (or its parent) holds. */
export const LOCK_TOKEN_ENV = 'CPV_LOCK_TOKEN';
/** A lock file that cannot be read is someone's write in progress for this long, then stale. */
const UNREADABLE_GRACE_MS = 10_000;
/** A stale-lock breaker that has held its guard this long has died. */
const BREAK_GUARD_MS = 30_000;

const TOKEN = randomBytes(16).toString('hex');

interface Held {
  info: LockInfo;
  count: number;
  /** The lock belongs to a parent cpv process: never remove it here. */
  inherited: boolean;
  /** Taking the lock created `.cpv/tmp`: removed again on release if still empty. */
  createdDir?: boolean;
}
const held = new Map<string, Held>();
const acquiring = new Map<string, Promise<Held>>();

/** The lock file of the repository at `root`. */
export function lockPath(root: string): string {
  return join(root, '.cpv', 'tmp', 'lock');
}

/**
 * Run `fn` holding the repository lock of `root` (`.cpv/tmp/lock`), so that no other
 * cpv process writes to this workspace and its cache meanwhile; the lock is released
 * when `fn` settles, whatever happens. With `skip` (a dry run), just runs `fn`.
 *
 * The lock is created atomically (a complete file hard-linked into place, O_EXCL where
 * hard links are unsupported) and records pid, host, start time and command. Nested
 * use is free: within one process the lock is re-entrant (pull = fetch + checkout),
 * and a cpv process started beneath the holder (a git hook run by a `git push` that
 * cpv runs) inherits it through `CPV_LOCK_TOKEN`. A lock is stale, and is taken over,
 * when its holder ran on this host and is no longer running, or when it is older than
 * `maxAgeMs`. Throws ConflictError naming the holder when another live process holds
 * it.
 */
export async function withRepoLock<T>(root: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  if (opts.skip) return fn();
  const path = lockPath(root);
  const h = await enter(path, opts);
  try {
    return await fn();
  } finally {
    await leave(path, h);
  }
}

/**
 * The current holder of the repository lock of `root`, or undefined when it is free
 * (or its file cannot be read). Read-only.
 */
export async function readLock(root: string): Promise<LockInfo | undefined> {
  return (await readHolder(lockPath(root))).info;
}

async function enter(path: string, opts: LockOptions): Promise<Held> {
  for (;;) {
    const h = held.get(path);
    if (h) {
      h.count++;
      return h;
    }
    const pending = acquiring.get(path);
    if (!pending) break;
    await pending.catch(() => undefined);
  }
  const p = create(path, opts).then((h) => {
    held.set(path, h);
    if (!h.inherited) process.env[LOCK_TOKEN_ENV] = TOKEN;
    return h;
  });
  acquiring.set(path, p);
  try {
    return await p;
  } finally {
    acquiring.delete(path);
  }
}

async function leave(path: string, h: Held): Promise<void> {
  if (--h.count > 0) return;
  held.delete(path);
  if (![...held.values()].some((x) => !x.inherited) && process.env[LOCK_TOKEN_ENV] === TOKEN) delete process.env[LOCK_TOKEN_ENV];
  if (h.inherited) return;
  // Remove only our own lock: a process that judged ours stale may have replaced it.
  const now = await readHolder(path);
  if (now.info?.token === TOKEN && now.info.pid === process.pid) await removeIfExists(path);
  // An operation that failed before writing anything leaves no trace, not even the directory.
  if (h.createdDir) {
    await rmdir(dirname(path)).catch((err: unknown) => {
      const code = errnoCode(err);
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw err;
    });
  }
}

async function create(path: string, opts: LockOptions): Promise<Held> {
  const maxAge = opts.maxAgeMs ?? LOCK_MAX_AGE_MS;
  const createdDir = (await mkdir(dirname(path), { recursive: true })) !== undefined;
  for (let attempt = 0; ; attempt++) {
    const info: LockInfo = { format: 'cpv-lock', version: 1, pid: process.pid, hostname: hostname(), started: new Date().toISOString(), command: opts.command, token: TOKEN };
    if (await place(path, info)) return { info, count: 1, inherited: false, createdDir };
    const holder = await readHolder(path);
    if (holder.absent && attempt < 20) continue; // released meanwhile: try again
    if (holder.info && holder.info.token === process.env[LOCK_TOKEN_ENV] && holder.info.token !== TOKEN) {
      return { info: holder.info, count: 1, inherited: true };
    }
    const stale = staleness(holder, maxAge);
    if (stale === undefined || attempt >= 5) throw busy(path, holder.info);
    await breakStale(path, holder);
  }
}

/** Create the lock file holding `info`; false if one exists. */
async function place(path: string, info: LockInfo): Promise<boolean> {
  const body = JSON.stringify(info) + '\n';
  const tmp = `${path}.${process.pid}-${randomBytes(6).toString('hex')}`;
  await writeFile(tmp, body, { mode: 0o644, flag: 'wx' });
  try {
    await link(tmp, path);
    return true;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
  } finally {
    await removeIfExists(tmp);
  }
  // No hard links on this filesystem: O_EXCL; a reader may briefly see a partial file.
  try {
    const fh = await open(path, 'wx', 0o644);
    try {
      await fh.writeFile(body);
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false;
    throw err;
  }
}

interface Holder {
  absent: boolean;
  info?: LockInfo;
  /** The raw text, to tell whether the file changed before breaking it. */
  text?: string;
  mtimeMs?: number;
}

async function readHolder(path: string): Promise<Holder> {
  let text: string;
  let mtimeMs: number;
  try {
    [text, mtimeMs] = await Promise.all([readFile(path, 'utf8'), stat(path).then((s) => s.mtimeMs)]);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { absent: true };
    throw err;
  }
  return { absent: false, info: parseLock(text), text, mtimeMs };
}

function parseLock(text: string): LockInfo | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockInfo>;
    if (o.format !== 'cpv-lock' || o.version !== 1 || !Number.isSafeInteger(o.pid) || typeof o.hostname !== 'string' || typeof o.started !== 'string' || typeof o.token !== 'string') return undefined;
    return { format: 'cpv-lock', version: 1, pid: o.pid!, hostname: o.hostname, started: o.started, command: typeof o.command === 'string' ? o.command : '?', token: o.token };
  } catch {
    return undefined;
  }
}

/** Why the lock is stale, or undefined while its holder may still be working. */
function staleness(holder: Holder, maxAge: number): string | undefined {
  const now = Date.now();
  const info = holder.info;
  if (!info) return now - (holder.mtimeMs ?? now) > UNREADABLE_GRACE_MS ? 'unreadable' : undefined;
  // Ours, but not held: left behind by a release that could not remove it.
  if (info.token === TOKEN && info.pid === process.pid) return 'left behind by this process';
  if (info.hostname === hostname() && !isRunning(info.pid)) return `process ${info.pid} is not running`;
  const started = Date.parse(info.started);
  if (!Number.isFinite(started) || now - started > maxAge) return 'too old';
  return undefined;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM'; // it exists, under another user
  }
}

/**
 * Remove a stale lock, unless it changed since it was judged: one breaker at a time
 * (a `.break` guard file), so two processes cannot both take over and one of them
 * delete the other's fresh lock.
 */
async function breakStale(path: string, judged: Holder): Promise<void> {
  const guard = `${path}.break`;
  try {
    await writeFile(guard, String(process.pid), { flag: 'wx' });
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
    const age = await stat(guard).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > BREAK_GUARD_MS) await removeIfExists(guard);
    else await new Promise((r) => setTimeout(r, 50));
    return;
  }
  try {
    const now = await readHolder(path);
    if (!now.absent && now.text === judged.text) await unlink(path).catch((err: unknown) => (errnoCode(err) === 'ENOENT' ? undefined : Promise.reject(err)));
  } finally {
    await removeIfExists(guard);
  }
}

function busy(path: string, info: LockInfo | undefined): ConflictError {
  const who = info ? `cpv ${info.command} (pid ${info.pid} on ${info.hostname}, started ${info.started})` : 'another cpv process';
  return new ConflictError(`${who} holds the repository lock ${path}`, {
    hint: info
      ? `wait for it to finish and run the command again; if no cpv process ${info.pid} is running on ${info.hostname}, delete ${path}`
      : `wait for the other cpv command to finish; if none is running, delete ${path}`,
    data: { lock: path, ...(info ? { pid: info.pid, hostname: info.hostname, started: info.started, command: info.command } : {}) },
  });
}
