import { chmod, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IntegrityError } from '../errors.js';
import { DirectoryBackend } from '../backend/directory.js';
import { blake3Hex } from '../hash/blake3.js';
import { Remote } from '../remote/remote.js';
import { seededBytes } from '../testing/seeded.js';
import { push } from '../transfer/push.js';
import { add } from './add.js';
import { init } from './init.js';
import { openRepo, type Repo } from './repo.js';
import { status, type StatusItem } from './status.js';

// An mtime with a sub-second part, in the past: files the stat cache trusts.
const OLD = new Date('2024-01-02T03:04:05.678Z');

let dir: string;
let repo: Repo;
beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-status-')));
  await init({ dir, noScm: true });
  repo = await openRepo({ cwd: dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(rel: string, bytes: Uint8Array | string): Promise<void> {
  const abs = path.join(dir, rel);
  await mkdir(path.dirname(abs), { recursive: true });
  await writeFile(abs, bytes);
}

const oidOf = async (b: Uint8Array | string): Promise<string> => `b3:${await blake3Hex(typeof b === 'string' ? Buffer.from(b) : b)}`;

describe('status', () => {
  it('reports a freshly added file as unchanged and cached', async () => {
    await put('m.bin', 'model');
    await add(repo, { cwd: dir, paths: ['m.bin'], kind: 'model', name: 'm' });
    expect(await status(repo, { cwd: dir, targets: [] })).toEqual([
      { path: 'm.bin', pointerPath: 'm.bin.cpv', type: 'file', kind: 'model', name: 'm', oid: await oidOf('model'), size: 5, workspace: 'unchanged', cache: 'present' },
    ]);
  });

  it('reports a modified file with its current oid and size', async () => {
    await put('m.bin', 'model');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await put('m.bin', 'model v2');
    const [item] = await status(repo, { cwd: dir, targets: ['m.bin'] });
    expect(item).toMatchObject({ workspace: 'modified', cache: 'present', oid: await oidOf('model'), current: { oid: await oidOf('model v2'), size: 8 } });
  });

  it('notices a same-size modification even when the stat cache knows the file', async () => {
    await put('m.bin', 'aaaa');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await status(repo, { cwd: dir, targets: [] });
    await put('m.bin', 'bbbb');
    const [item] = await status(repo, { cwd: dir, targets: [] });
    expect(item!.workspace).toBe('modified');
  });

  it('reports a deleted file as missing from the workspace', async () => {
    await put('m.bin', 'model');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await rm(path.join(dir, 'm.bin'));
    const [item] = await status(repo, { cwd: dir, targets: [] });
    expect(item).toMatchObject({ workspace: 'missing', cache: 'present' });
    expect(item!.current).toBeUndefined();
  });

  it('reports content missing from the cache', async () => {
    await put('m.bin', 'model');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await rm(repo.cache.filePath(await oidOf('model')));
    const [item] = await status(repo, { cwd: dir, targets: [] });
    expect(item).toMatchObject({ workspace: 'unchanged', cache: 'missing' });
  });

  it('reports a directory where a file is tracked as modified', async () => {
    await put('m.bin', 'model');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await rm(path.join(dir, 'm.bin'));
    await mkdir(path.join(dir, 'm.bin'));
    expect((await status(repo, { cwd: dir, targets: [] }))[0]!.workspace).toBe('modified');
  });

  it('lists file-level changes of a tracked directory', async () => {
    await put('data/a.txt', 'a');
    await put('data/keep.txt', 'k');
    await put('data/sub/b.bin', 'b');
    await add(repo, { cwd: dir, paths: ['data'] });
    expect((await status(repo, { cwd: dir, targets: ['data'] }))[0]).toMatchObject({ type: 'dir', workspace: 'unchanged', cache: 'present' });

    await put('data/a.txt', 'a changed');
    await rm(path.join(dir, 'data/sub/b.bin'));
    await put('data/new/c.txt', 'c');
    const [item] = await status(repo, { cwd: dir, targets: ['data'] });
    expect(item!.workspace).toBe('modified');
    expect(item!.changes).toEqual({ added: ['new/c.txt'], modified: ['a.txt'], deleted: ['sub/b.bin'] });
    expect(item!.current!.size).toBe('a changed'.length + 1 + 1);
  });

  it('reports a changed execute bit in a tracked directory', async () => {
    await put('data/run.sh', 'echo');
    await add(repo, { cwd: dir, paths: ['data'] });
    const { chmod } = await import('node:fs/promises');
    await chmod(path.join(dir, 'data/run.sh'), 0o755);
    const [item] = await status(repo, { cwd: dir, targets: [] });
    expect(item!.changes).toEqual({ added: [], modified: ['run.sh'], deleted: [] });
  });

  it('reports a tracked directory that is gone, or whose tree or files are not cached', async () => {
    await put('data/a.txt', 'a');
    await add(repo, { cwd: dir, paths: ['data'] });
    await rm(repo.cache.filePath(await oidOf('a')));
    expect((await status(repo, { cwd: dir, targets: [] }))[0]).toMatchObject({ workspace: 'unchanged', cache: 'missing' });
    const [ref] = await status(repo, { cwd: dir, targets: [] });
    await rm(repo.cache.treePath(ref!.oid));
    await rm(path.join(dir, 'data'), { recursive: true });
    expect((await status(repo, { cwd: dir, targets: [] }))[0]).toMatchObject({ workspace: 'missing', cache: 'missing' });
  });

  it('reports whether a remote has each item', async () => {
    const remoteDir = await mkdtemp(path.join(tmpdir(), 'cpv-status-remote-'));
    try {
      await put('m.bin', seededBytes(1, 1000));
      await put('data/a.txt', 'a');
      await add(repo, { cwd: dir, paths: ['m.bin', 'data'] });
      const remote = await Remote.fromBackend('origin', new DirectoryBackend(remoteDir), repo.cache);
      const before = await status(repo, { cwd: dir, targets: [], remote });
      expect(before.map((i) => [i.path, i.remote])).toEqual([
        ['data', 'missing'],
        ['m.bin', 'missing'],
      ]);
      await push(repo.cache, remote, before.map((i) => ({ oid: i.oid, type: i.type, size: i.size, path: i.path })), { chunker: repo.config.chunker, packSize: 1 << 20, jobs: 2 });
      const after = await status(repo, { cwd: dir, targets: [], remote });
      expect(after.map((i) => i.remote)).toEqual(['present', 'present']);
    } finally {
      await rm(remoteDir, { recursive: true, force: true });
    }
  });

  it('saves the stat cache so unchanged files are not re-read', async () => {
    await put('m.bin', 'model');
    await utimes(path.join(dir, 'm.bin'), OLD, OLD);
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await rm(path.join(dir, '.cpv/tmp/state.json'));
    await status(repo, { cwd: dir, targets: [] });
    const state = JSON.parse(await readFile(path.join(dir, '.cpv/tmp/state.json'), 'utf8')) as { version: number; paths: string[]; oids: string };
    expect(state.version).toBe(2);
    expect(state.paths).toEqual(['m.bin']);
    expect(`b3:${state.oids}`).toBe(await oidOf('model'));
  });

  describe('a directory seen unchanged before', () => {
    const names = Array.from({ length: 24 }, (_, i) => `${i % 3 ? 'sub/' : ''}f${i}.bin`);
    // Seeded content; old mtimes so that the stat cache trusts every file.
    const content = (i: number): Uint8Array => seededBytes(100 + i, 50 + ((i * 37) % 200));
    async function tracked(): Promise<void> {
      for (const [i, n] of names.entries()) {
        await put(`data/${n}`, content(i));
        await utimes(path.join(dir, 'data', n), OLD, OLD);
      }
      await add(repo, { cwd: dir, paths: ['data'] });
      // The first status compares with the tree and remembers the answer.
      expect((await status(repo, { cwd: dir, targets: [] }))[0]).toMatchObject({ workspace: 'unchanged', cache: 'present' });
    }
    const statusOf = async (): Promise<StatusItem> => (await status(repo, { cwd: dir, targets: [] }))[0]!;

    it('answers without reading its tree', async () => {
      await tracked();
      const readTree = vi.spyOn(repo.cache, 'readTree');
      expect(await statusOf()).toMatchObject({ workspace: 'unchanged', cache: 'present' });
      expect(readTree).not.toHaveBeenCalled();
    });

    it('still sees a changed size, mtime or inode, an added and a deleted file', async () => {
      await tracked();
      const abs = (i: number): string => path.join(dir, 'data', names[i]!);
      // Same size, new mtime.
      const same = Buffer.from(content(4)).reverse();
      await writeFile(abs(4), same);
      await utimes(abs(4), OLD, new Date(OLD.getTime() + 1000));
      expect((await statusOf()).changes).toEqual({ added: [], modified: [names[4]], deleted: [] });
      // Same size and mtime, another inode (replaced by rename).
      await writeFile(abs(4), content(4));
      await utimes(abs(4), OLD, OLD);
      expect((await statusOf()).workspace).toBe('unchanged');
      await writeFile(abs(4) + '.tmp', same);
      await utimes(abs(4) + '.tmp', OLD, OLD);
      await rename(abs(4) + '.tmp', abs(4));
      expect((await statusOf()).changes).toEqual({ added: [], modified: [names[4]], deleted: [] });
      // Another size. (File 4 back as it was: its stat now differs from the replaced
      // file's in mtime.)
      await writeFile(abs(4), content(4));
      await utimes(abs(4), OLD, new Date(OLD.getTime() + 2000));
      await writeFile(abs(7), Buffer.concat([content(7), Buffer.from('x')]));
      await utimes(abs(7), OLD, OLD);
      expect((await statusOf()).changes).toEqual({ added: [], modified: [names[7]], deleted: [] });
      await writeFile(abs(7), content(7));
      await utimes(abs(7), OLD, OLD);
      await rm(abs(9));
      await put('data/sub/extra.bin', 'extra');
      expect((await statusOf()).changes).toEqual({ added: ['sub/extra.bin'], modified: [], deleted: [names[9]] });
      await put(`data/${names[9]}`, content(9));
      await rm(path.join(dir, 'data/sub/extra.bin'));
      expect(await statusOf()).toMatchObject({ workspace: 'unchanged', cache: 'present' });
    });

    it('remembers the cache check while the cache directories are unchanged, and sees a removed file', async () => {
      await tracked();
      const fanout = path.join(repo.cache.dir, 'files');
      const stateOf = async (): Promise<{ dirs: Record<string, string[]> }> => JSON.parse(await readFile(path.join(dir, '.cpv/tmp/state.json'), 'utf8'));
      // Just written by add: too recent to remember.
      expect(await statusOf()).toMatchObject({ workspace: 'unchanged', cache: 'present' });
      expect((await stateOf()).dirs.data![2]).toBe('');
      for (const d of await readdir(fanout)) await utimes(path.join(fanout, d), OLD, OLD);
      expect(await statusOf()).toMatchObject({ workspace: 'unchanged', cache: 'present' });
      const remembered = (await stateOf()).dirs.data![2];
      expect(remembered).toMatch(/^[0-9a-f]{64}$/);
      expect(await statusOf()).toMatchObject({ workspace: 'unchanged', cache: 'present' });
      const file = repo.cache.filePath(await oidOf(content(11)));
      await rm(file);
      expect(await statusOf()).toMatchObject({ workspace: 'unchanged', cache: 'missing' });
      expect((await stateOf()).dirs.data![2]).toBe('');
    });

    it('still reports its files or tree missing from the cache, and a corrupt tree', async () => {
      await tracked();
      const file = repo.cache.filePath(await oidOf(content(5)));
      const saved = await readFile(file);
      await rm(file);
      expect(await statusOf()).toMatchObject({ workspace: 'unchanged', cache: 'missing' });
      await writeFile(file, saved);
      const item = await statusOf();
      expect(item).toMatchObject({ workspace: 'unchanged', cache: 'present' });
      const tree = repo.cache.treePath(item.oid);
      const text = await readFile(tree);
      await chmod(tree, 0o644);
      await writeFile(tree, Buffer.concat([text, Buffer.from('\n')]));
      await expect(status(repo, { cwd: dir, targets: [] })).rejects.toBeInstanceOf(IntegrityError);
      await rm(tree);
      expect(await statusOf()).toMatchObject({ workspace: 'unchanged', cache: 'missing' });
    });
  });
});
