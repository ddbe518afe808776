import { chmod, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotFoundError, UsageError } from '../errors.js';
import { blake3Hex } from '../hash/blake3.js';
import { parsePointer } from '../pointer/pointer.js';
import { serializeTree } from '../store/tree.js';
import { seededBytes } from '../testing/seeded.js';
import { writeConfigFile } from '../config/config.js';
import { add } from './add.js';
import { init } from './init.js';
import { openRepo, type Repo } from './repo.js';

let dir: string;
let repo: Repo;
beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-add-')));
  await init({ dir, noScm: true });
  // Small chunks, so modest files have many.
  await writeConfigFile(path.join(dir, '.cpv', 'config.local'), { chunker: { min: 1024, avg: 4096, max: 16384 } });
  repo = await openRepo({ cwd: dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(rel: string, bytes: Uint8Array | string, mode?: number): Promise<string> {
  const abs = path.join(dir, rel);
  await mkdir(path.dirname(abs), { recursive: true });
  await writeFile(abs, bytes);
  if (mode !== undefined) await chmod(abs, mode);
  return abs;
}

const oidOf = async (b: Uint8Array | string): Promise<string> => `b3:${await blake3Hex(typeof b === 'string' ? Buffer.from(b) : b)}`;

async function cachedObjects(): Promise<string[]> {
  try {
    return (await readdir(path.join(repo.cache.dir, 'files'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function expectReject<T>(p: Promise<unknown>, cls: new (...a: never[]) => T): Promise<T> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(cls);
  return err as T;
}

describe('add', () => {
  it('tracks a file: caches it, writes its pointer and git-ignores it', async () => {
    const bytes = seededBytes(1, 100_000);
    await put('model.bin', bytes);
    const r = await add(repo, { cwd: dir, paths: ['model.bin'] });
    const oid = await oidOf(bytes);
    expect(r.items).toEqual([{ path: 'model.bin', pointerPath: 'model.bin.cpv', type: 'file', oid, size: 100_000, status: 'new', storedBytes: 100_000 }]);
    expect(r.gitAdd.sort()).toEqual(['.gitignore', 'model.bin.cpv']);
    expect(await readFile(path.join(dir, 'model.bin.cpv'), 'utf8')).toBe(`version: 1\nkind: other\npath: model.bin\ntype: file\noid: ${oid}\nsize: 100000\n`);
    expect(await readFile(path.join(dir, '.gitignore'), 'utf8')).toBe('/model.bin\n');
    expect((await readFile(repo.cache.filePath(oid))).equals(bytes)).toBe(true);
    // 100 kB at 4 KiB average: a manifest with many chunks.
    expect((await repo.cache.readManifest(oid))!.chunks.length).toBeGreaterThan(5);
  });

  it('records kind, name and meta', async () => {
    await put('m.bin', 'weights');
    await add(repo, { cwd: dir, paths: ['m.bin'], kind: 'model', name: 'team/m', meta: { epochs: 3, final: true } });
    const p = parsePointer(await readFile(path.join(dir, 'm.bin.cpv'), 'utf8'), 'm.bin.cpv');
    expect(p).toEqual({ version: 1, kind: 'model', name: 'team/m', path: 'm.bin', type: 'file', oid: await oidOf('weights'), size: 7, meta: { epochs: 3, final: true } });
  });

  it('keeps kind, name and meta of the previous pointer when re-adding changed content', async () => {
    await put('m.bin', 'v1');
    await add(repo, { cwd: dir, paths: ['m.bin'], kind: 'model', name: 'm', meta: { a: 1 } });
    await put('m.bin', 'v2!');
    const r = await add(repo, { cwd: dir, paths: ['m.bin'], meta: { b: 'x' } });
    expect(r.items[0]!.status).toBe('modified');
    expect(r.items[0]!.storedBytes).toBe(3);
    const p = parsePointer(await readFile(path.join(dir, 'm.bin.cpv'), 'utf8'), 'm.bin.cpv');
    expect(p).toMatchObject({ kind: 'model', name: 'm', oid: await oidOf('v2!'), size: 3, meta: { a: 1, b: 'x' } });
  });

  it('tracks a directory as a tree of its regular files', async () => {
    const big = seededBytes(2, 50_000);
    await put('data/a.txt', 'hello\n');
    await put('data/sub/b.bin', big);
    await put('data/run.sh', '#!/bin/sh\n', 0o755);
    await mkdir(path.join(dir, 'data', 'empty'));
    const r = await add(repo, { cwd: dir, paths: ['data/'] });
    const entries = [
      { path: 'a.txt', oid: await oidOf('hello\n'), size: 6, mode: 0o644 },
      { path: 'run.sh', oid: await oidOf('#!/bin/sh\n'), size: 10, mode: 0o755 },
      { path: 'sub/b.bin', oid: await oidOf(big), size: 50_000, mode: 0o644 },
    ];
    const treeOid = await oidOf(serializeTree(entries));
    expect(r.items).toEqual([{ path: 'data', pointerPath: 'data.cpv', type: 'dir', oid: treeOid, size: 50_016, files: 3, status: 'new', storedBytes: 50_016 }]);
    expect(await repo.cache.readTree(treeOid)).toEqual(entries);
    expect(await readFile(path.join(dir, 'data.cpv'), 'utf8')).toBe(`version: 1\nkind: other\npath: data\ntype: dir\noid: ${treeOid}\nsize: 50016\nfiles: 3\n`);
    expect(await readFile(path.join(dir, '.gitignore'), 'utf8')).toBe('/data\n');
    for (const e of entries) expect(await repo.cache.verifyFile(e.oid)).toBe(true);
  });

  it('stores identical files in a directory once', async () => {
    await put('d/x', 'same');
    await put('d/y', 'same');
    const r = await add(repo, { cwd: dir, paths: ['d'] });
    expect(r.items[0]!.storedBytes).toBe(4);
    expect(await cachedObjects()).toHaveLength(1);
  });

  it('puts the pointer and .gitignore next to a nested path, relative to cwd', async () => {
    await put('models/resnet/w.bin', 'w');
    const r = await add(repo, { cwd: path.join(dir, 'models'), paths: ['resnet/w.bin'] });
    expect(r.items[0]!.pointerPath).toBe('models/resnet/w.bin.cpv');
    expect(r.gitAdd.sort()).toEqual(['models/resnet/.gitignore', 'models/resnet/w.bin.cpv']);
    expect(await readFile(path.join(dir, 'models/resnet/.gitignore'), 'utf8')).toBe('/w.bin\n');
  });

  it('appends to an existing .gitignore once', async () => {
    await put('.gitignore', 'node_modules');
    await put('a.bin', 'a');
    await put('b.bin', 'b');
    await add(repo, { cwd: dir, paths: ['a.bin', 'b.bin'] });
    await put('a.bin', 'a2');
    await add(repo, { cwd: dir, paths: ['a.bin'] });
    expect(await readFile(path.join(dir, '.gitignore'), 'utf8')).toBe('node_modules\n/a.bin\n/b.bin\n');
  });

  it('expands globs to matching files, skipping pointers', async () => {
    await put('ckpt/a.bin', 'a');
    await put('ckpt/b.bin', 'b');
    await put('ckpt/notes.txt', 'n');
    const first = await add(repo, { cwd: dir, paths: ['ckpt/*.bin'] });
    expect(first.items.map((i) => i.path)).toEqual(['ckpt/a.bin', 'ckpt/b.bin']);
    // The pointers now match `ckpt/*` too, but are never added themselves.
    const second = await add(repo, { cwd: dir, paths: ['ckpt/*'] });
    expect(second.items.map((i) => [i.path, i.status])).toEqual([
      ['ckpt/a.bin', 'unchanged'],
      ['ckpt/b.bin', 'unchanged'],
      ['ckpt/notes.txt', 'new'],
    ]);
  });

  it('throws NotFoundError for a glob that matches nothing', async () => {
    const e = await expectReject(add(repo, { cwd: dir, paths: ['*.nothing'] }), NotFoundError);
    expect(e.message).toBe('no file matches "*.nothing"');
  });

  it('re-adding unchanged content reports unchanged, stores nothing and leaves the pointer alone', async () => {
    await put('m.bin', seededBytes(3, 30_000));
    await put('d/x', 'x');
    await add(repo, { cwd: dir, paths: ['m.bin', 'd'] });
    const before = await stat(path.join(dir, 'm.bin.cpv'));
    const again = await add(repo, { cwd: dir, paths: ['m.bin', 'd'] });
    expect(again.items.map((i) => [i.path, i.status, i.storedBytes])).toEqual([
      ['m.bin', 'unchanged', 0],
      ['d', 'unchanged', 0],
    ]);
    const after = await stat(path.join(dir, 'm.bin.cpv'));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it('re-adding unchanged content without the stat cache still stores nothing', async () => {
    await put('m.bin', seededBytes(4, 30_000));
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await rm(path.join(dir, '.cpv', 'tmp', 'state.json'));
    const again = await add(repo, { cwd: dir, paths: ['m.bin'] });
    expect(again.items[0]).toMatchObject({ status: 'unchanged', storedBytes: 0 });
  });

  it('with dryRun, reports what it would do and writes nothing', async () => {
    const bytes = seededBytes(5, 20_000);
    await put('m.bin', bytes);
    await put('d/x', 'x');
    const r = await add(repo, { cwd: dir, paths: ['m.bin', 'd'], dryRun: true });
    expect(r.items.map((i) => [i.path, i.status, i.storedBytes])).toEqual([
      ['m.bin', 'new', 20_000],
      ['d', 'new', 1],
    ]);
    expect(r.items[0]!.oid).toBe(await oidOf(bytes));
    expect(r.items[1]!.oid).toBe(await oidOf(serializeTree([{ path: 'x', oid: await oidOf('x'), size: 1, mode: 0o644 }])));
    expect(r.gitAdd).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual(['.cpv', 'd', 'm.bin']);
    expect(await cachedObjects()).toEqual([]);
    expect(await readdir(path.join(repo.cache.dir))).not.toContain('trees');
    expect(await readdir(path.join(dir, '.cpv'))).not.toContain('tmp');
  });

  it.each([
    ['a path outside the repository', '../outside.bin', 'is not inside the repository'],
    ['the repository root', '.', 'is not inside the repository'],
    ['a path inside .cpv', '.cpv/config', 'is inside .cpv/'],
    ['a pointer file', 'm.bin.cpv', 'is a cpv pointer file'],
  ])('rejects %s with UsageError', async (_, p, reason) => {
    await put('m.bin', 'm');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    const e = await expectReject(add(repo, { cwd: dir, paths: [p] }), UsageError);
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain(reason);
  });

  it('rejects an absolute path outside the repository', async () => {
    const other = await mkdtemp(path.join(tmpdir(), 'cpv-other-'));
    try {
      await writeFile(path.join(other, 'x'), 'x');
      const e = await expectReject(add(repo, { cwd: dir, paths: [path.join(other, 'x')] }), UsageError);
      expect(e.message).toContain('is not inside the repository');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('rejects a path inside a tracked directory, naming the directory', async () => {
    await put('data/a.txt', 'a');
    await add(repo, { cwd: dir, paths: ['data'] });
    const e = await expectReject(add(repo, { cwd: dir, paths: ['data/a.txt'] }), UsageError);
    expect(e.message).toBe('data/a.txt is inside data, which cpv already tracks');
    expect(e.hint).toBe('run `cpv add data` to record changes inside it');
  });

  it('throws NotFoundError for a missing path and writes nothing', async () => {
    const e = await expectReject(add(repo, { cwd: dir, paths: ['nope.bin'] }), NotFoundError);
    expect(e.message).toBe('nope.bin does not exist');
    expect(await readdir(dir)).toEqual(['.cpv']);
  });

  it('rejects a symlink that leaves the repository', async () => {
    const other = await mkdtemp(path.join(tmpdir(), 'cpv-other-'));
    try {
      await writeFile(path.join(other, 'secret'), 's');
      await symlink(path.join(other, 'secret'), path.join(dir, 'link'));
      const e = await expectReject(add(repo, { cwd: dir, paths: ['link'] }), UsageError);
      expect(e.message).toContain('outside the repository');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('rejects a directory holding a name a tree cannot record', async () => {
    await put('d/bad\nname', 'x');
    const e = await expectReject(add(repo, { cwd: dir, paths: ['d'] }), UsageError);
    expect(e.message).toContain('control character in path');
    expect(await readdir(dir)).not.toContain('d.cpv');
  });

  it('rejects an invalid name, a name for several paths and no paths', async () => {
    await put('a', 'a');
    await put('b', 'b');
    await expectReject(add(repo, { cwd: dir, paths: ['a'], name: '../x' }), UsageError);
    expect((await expectReject(add(repo, { cwd: dir, paths: ['a', 'b'], name: 'x' }), UsageError)).message).toBe('--name needs exactly one path');
    expect((await expectReject(add(repo, { cwd: dir, paths: [] }), UsageError)).message).toBe('nothing to add');
  });

  it('reports hashing progress up to the total', async () => {
    await put('m.bin', seededBytes(6, 64_000));
    const seen: Array<[number, number]> = [];
    await add(repo, { cwd: dir, paths: ['m.bin'], onProgress: (e) => seen.push([e.done, e.total]) });
    expect(seen.at(-1)).toEqual([64_000, 64_000]);
  });
});

describe('add refuses a command it cannot carry out whole, writing nothing', () => {
  /** Everything in the repository outside the cache, as paths (directories end in /). */
  async function workspace(): Promise<string[]> {
    const out: string[] = [];
    for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
      const rel = path.relative(dir, path.join(e.parentPath, e.name));
      if (rel === '.cpv/tmp' || rel.startsWith('.cpv/tmp/') || rel === '.cpv/cache' || rel.startsWith('.cpv/cache/')) continue;
      out.push(e.isDirectory() ? rel + '/' : rel);
    }
    return out.sort();
  }

  it.each([
    ['a directory and a file inside it', ['data', 'data/x']],
    ['a file inside a directory, then the directory', ['data/x', 'data']],
    ['a deeper path with a trailing slash', ['data/', 'data/sub/y']],
  ])('rejects %s with UsageError', async (_, paths) => {
    await put('data/x', 'x');
    await put('data/sub/y', 'y');
    const before = await workspace();
    const e = await expectReject(add(repo, { cwd: dir, paths }), UsageError);
    expect(e.message).toMatch(/^data\/(x|sub\/y) is inside data, which is added in the same command$/);
    expect(await workspace()).toEqual(before);
    expect(await cachedObjects()).toEqual([]);
  });

  it('accepts sibling paths whose names share a prefix', async () => {
    await put('data/x', 'x');
    await put('data2', 'd');
    const r = await add(repo, { cwd: dir, paths: ['data', 'data2'] });
    expect(r.items.map((i) => i.path)).toEqual(['data', 'data2']);
  });

  it.each([
    ['a key with a space', { 'my key': 1 }, 'invalid metadata key "my key"'],
    ['a key starting with a digit', { '1st': 'x' }, 'invalid metadata key "1st"'],
    ['an empty key', { '': 'x' }, 'invalid metadata key ""'],
    ['a key with a colon', { 'a:b': 'x' }, 'invalid metadata key "a:b"'],
    ['a non-finite number', { loss: Number.NaN }, 'metadata loss must be a finite number'],
  ])('rejects metadata with %s before storing anything', async (_, meta, message) => {
    await put('m.bin', 'm');
    const before = await workspace();
    const e = await expectReject(add(repo, { cwd: dir, paths: ['m.bin'], meta }), UsageError);
    expect(e.message).toBe(message);
    expect(await workspace()).toEqual(before);
    expect(await cachedObjects()).toEqual([]);
  });

  it('accepts every key the pointer format allows', async () => {
    await put('m.bin', 'm');
    await add(repo, { cwd: dir, paths: ['m.bin'], meta: { _a: 1, 'b.c-d_9': 'x', E: true } });
    const p = parsePointer(await readFile(path.join(dir, 'm.bin.cpv'), 'utf8'), 'm.bin.cpv');
    expect(p.meta).toEqual({ _a: 1, 'b.c-d_9': 'x', E: true });
  });

  it('rejects a path whose parent directory is a symbolic link out of the repository', async () => {
    const elsewhere = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-elsewhere-')));
    try {
      await writeFile(path.join(elsewhere, 'big.bin'), 'outside');
      await symlink(elsewhere, path.join(dir, 'data'));
      const before = await workspace();
      const e = await expectReject(add(repo, { cwd: dir, paths: ['data/big.bin'] }), UsageError);
      expect(e.message).toBe(`data/big.bin is reached through a symbolic link to ${elsewhere}, outside the workspace`);
      expect((await readdir(elsewhere)).sort()).toEqual(['big.bin']);
      expect(await workspace()).toEqual(before);
      expect(await cachedObjects()).toEqual([]);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });
});

describe('add refuses names and places it cannot record', () => {
  it.each([
    ['a backslash', 'back\\slash.bin'],
    ['a newline', 'a\nb.bin'],
    ['a tab', 'tab\there.bin'],
  ])('a file name with %s, writing nothing', async (_, name) => {
    await put(name, 'x');
    const err = await add(repo, { cwd: dir, paths: [name] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toContain('cannot track');
    expect((await readdir(dir)).filter((n) => (n.endsWith('.cpv') && n !== '.cpv') || n === '.gitignore')).toEqual([]);
  });

  it('a path reached through a link into .git or .cpv', async () => {
    await mkdir(path.join(dir, '.git', 'hooks'), { recursive: true });
    await writeFile(path.join(dir, '.git', 'hooks', 'pre-commit.sample'), '#!/bin/sh\n');
    await symlink(path.join(dir, '.git', 'hooks'), path.join(dir, 'hooks'));
    const err = await add(repo, { cwd: dir, paths: ['hooks/pre-commit.sample'] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toContain('outside the workspace');
    expect(await readdir(path.join(dir, '.git', 'hooks'))).toEqual(['pre-commit.sample']);
  });
});
