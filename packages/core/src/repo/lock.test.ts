import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, UsageError } from '../errors.js';
import { seededBytes } from '../testing/seeded.js';
import { add } from './add.js';
import { fsck } from './fsck.js';
import { gc } from './gc.js';
import { init } from './init.js';
import { LOCK_TOKEN_ENV, lockPath, readLock, withRepoLock, type LockInfo } from './lock.js';
import { openRepo, type Repo } from './repo.js';
import { status } from './status.js';
import { pull, push } from './sync.js';
import { pathExists } from '../util/fs-atomic.js';

let base: string;
let dir: string;
let repo: Repo;
let sleeper: ChildProcess | undefined;

beforeEach(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-lock-')));
  dir = path.join(base, 'work');
  await mkdir(dir);
  await init({ dir, remote: path.join(base, 'remote'), noScm: true });
  repo = await openRepo({ cwd: dir });
});
afterEach(async () => {
  sleeper?.kill();
  sleeper = undefined;
  await rm(base, { recursive: true, force: true });
});

/** A live process that is not this one. */
function liveOtherPid(): number {
  sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  return sleeper.pid!;
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

async function plantLock(info: Partial<LockInfo>): Promise<LockInfo> {
  const full: LockInfo = { format: 'cpv-lock', version: 1, pid: 1, hostname: hostname(), started: new Date().toISOString(), command: 'push', token: 'f'.repeat(32), ...info };
  await mkdir(path.dirname(lockPath(dir)), { recursive: true });
  await writeFile(lockPath(dir), JSON.stringify(full) + '\n');
  return full;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('repository lock', () => {
  it('holds .cpv/tmp/lock with pid, host, start time and command while the operation runs, and releases it', async () => {
    const before = Date.now();
    const seen = await withRepoLock(dir, { command: 'gc' }, async () => readLock(dir));
    expect(seen).toMatchObject({ format: 'cpv-lock', version: 1, pid: process.pid, hostname: hostname(), command: 'gc' });
    expect(Date.parse(seen!.started)).toBeGreaterThanOrEqual(before - 1000);
    expect(await pathExists(lockPath(dir))).toBe(false);
    // Nothing else was there: the directory the lock needed goes too.
    expect(await pathExists(path.dirname(lockPath(dir)))).toBe(false);
    await mkdir(path.join(dir, '.cpv', 'tmp', 'keep'), { recursive: true });
    await withRepoLock(dir, { command: 'gc' }, async () => undefined);
    expect(await readdir(path.join(dir, '.cpv', 'tmp'))).toEqual(['keep']);
  });

  it('is released when the operation throws; a command that fails writes nothing at all', async () => {
    const err = await rejection(withRepoLock(dir, { command: 'add' }, async () => Promise.reject(new Error('boom'))));
    expect((err as Error).message).toBe('boom');
    expect(await pathExists(lockPath(dir))).toBe(false);
    await writeFile(path.join(dir, 'm.bin'), seededBytes(5, 100));
    expect(await rejection(add(repo, { cwd: dir, paths: ['m.bin'], meta: { 'my key': 1 } }))).toBeInstanceOf(UsageError);
    expect(await pathExists(path.join(dir, '.cpv', 'tmp'))).toBe(false);
  });

  it('is re-entrant within a process: nested operations do not deadlock, the outer hold keeps it', async () => {
    const order: string[] = [];
    await withRepoLock(dir, { command: 'pull' }, async () => {
      await withRepoLock(dir, { command: 'fetch' }, async () => order.push('fetch'));
      expect((await readLock(dir))?.command).toBe('pull');
      await withRepoLock(dir, { command: 'checkout' }, async () => order.push('checkout'));
      expect(await pathExists(lockPath(dir))).toBe(true);
    });
    expect(order).toEqual(['fetch', 'checkout']);
    expect(await pathExists(lockPath(dir))).toBe(false);
  });

  it('a real pull (fetch + checkout) and concurrent holds in one process work under the lock', async () => {
    const bytes = seededBytes(1, 5000);
    await writeFile(path.join(dir, 'w.bin'), bytes);
    await add(repo, { cwd: dir, paths: ['w.bin'] });
    await push(repo, { cwd: dir, targets: [] });
    await expect(Promise.all([withRepoLock(dir, { command: 'a' }, async () => 1), withRepoLock(dir, { command: 'b' }, async () => 2)])).resolves.toEqual([1, 2]);
    await rm(path.join(dir, 'w.bin'));
    await rm(repo.cache.filePath((await status(repo, { cwd: dir, targets: [] }))[0]!.oid), { force: true });
    const r = await pull(repo, { cwd: dir, targets: [] });
    expect(r.fetch.files).toBe(1);
    expect(r.checkout.items[0]).toMatchObject({ path: 'w.bin', created: 1 });
    expect(await readFile(path.join(dir, 'w.bin'))).toEqual(Buffer.from(bytes));
    expect(await pathExists(lockPath(dir))).toBe(false);
  });

  it('a second writer gets ConflictError naming the holder pid and the next step; nothing is written', async () => {
    const pid = liveOtherPid();
    await plantLock({ pid, command: 'push' });
    const err = await rejection(withRepoLock(dir, { command: 'gc' }, async () => 'ran'));
    expect(err).toBeInstanceOf(ConflictError);
    const c = err as ConflictError;
    expect(c.message).toContain(`pid ${pid}`);
    expect(c.message).toContain('cpv push');
    expect(c.hint).toMatch(/wait for it to finish/);
    expect(c.hint).toContain(lockPath(dir));
    expect(c.data).toMatchObject({ pid, command: 'push', hostname: hostname() });

    await writeFile(path.join(dir, 'm.bin'), seededBytes(2, 3000));
    expect(await rejection(add(repo, { cwd: dir, paths: ['m.bin'] }))).toBeInstanceOf(ConflictError);
    expect(await pathExists(path.join(dir, 'm.bin.cpv'))).toBe(false);
    // The holder's lock is untouched.
    expect((await readLock(dir))?.pid).toBe(pid);
  });

  it('read-only operations and dry runs do not take the lock', async () => {
    await writeFile(path.join(dir, 'r.bin'), seededBytes(3, 3000));
    await add(repo, { cwd: dir, paths: ['r.bin'] });
    await plantLock({ pid: liveOtherPid() });
    await expect(status(repo, { cwd: dir, targets: [] })).resolves.toHaveLength(1);
    expect((await fsck(repo, { readData: true })).ok).toBe(true);
    expect((await gc(repo, { dryRun: true })).dryRun).toBe(true);
    await writeFile(path.join(dir, 's.bin'), seededBytes(4, 3000));
    expect((await add(repo, { cwd: dir, paths: ['s.bin'], dryRun: true })).items).toHaveLength(1);
    expect(await rejection(gc(repo, {}))).toBeInstanceOf(ConflictError);
    expect(await rejection(fsck(repo, { repair: true }))).toBeInstanceOf(ConflictError);
  });

  it('takes over a stale lock whose process is gone on this host', async () => {
    await plantLock({ pid: deadPid() });
    const holder = await withRepoLock(dir, { command: 'gc' }, async () => readLock(dir));
    expect(holder?.pid).toBe(process.pid);
    expect(await pathExists(lockPath(dir))).toBe(false);
  });

  it('takes over a lock older than the maximum age, even from another host', async () => {
    await plantLock({ hostname: 'elsewhere.example', pid: 4242, started: new Date(Date.now() - 2 * 86_400_000).toISOString() });
    await expect(withRepoLock(dir, { command: 'gc' }, async () => 'ran')).resolves.toBe('ran');
    // A young lock from another host cannot be checked: it holds.
    await plantLock({ hostname: 'elsewhere.example', pid: 4242 });
    expect(await rejection(withRepoLock(dir, { command: 'gc' }, async () => 'ran'))).toBeInstanceOf(ConflictError);
    await expect(withRepoLock(dir, { command: 'gc', maxAgeMs: 0 }, async () => 'ran')).resolves.toBe('ran');
  });

  it('a cpv started beneath the holder (a git hook) shares its lock and leaves it in place', async () => {
    const parent = await plantLock({ pid: liveOtherPid(), token: 'a'.repeat(32) });
    const saved = process.env[LOCK_TOKEN_ENV];
    process.env[LOCK_TOKEN_ENV] = parent.token;
    try {
      await expect(withRepoLock(dir, { command: 'hook pre-push' }, async () => 'ran')).resolves.toBe('ran');
    } finally {
      if (saved === undefined) delete process.env[LOCK_TOKEN_ENV];
      else process.env[LOCK_TOKEN_ENV] = saved;
    }
    expect(JSON.parse(await readFile(lockPath(dir), 'utf8'))).toEqual(parent);
  });

  it('while held, children inherit the token through the environment; it is cleared on release', async () => {
    const token = await withRepoLock(dir, { command: 'push' }, async () => process.env[LOCK_TOKEN_ENV]);
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    expect(process.env[LOCK_TOKEN_ENV]).toBeUndefined();
  });
});

