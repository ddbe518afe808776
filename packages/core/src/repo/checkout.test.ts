import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, IntegrityError, NotFoundError, PointerParseError } from '../errors.js';
import { blake3Hex } from '../hash/blake3.js';
import { seededBytes } from '../testing/seeded.js';
import { add } from './add.js';
import { checkout } from './checkout.js';
import { init } from './init.js';
import { openRepo, type Repo } from './repo.js';

let dir: string;
let repo: Repo;
beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-checkout-')));
  await init({ dir, noScm: true });
  repo = await openRepo({ cwd: dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(rel: string, bytes: Uint8Array | string, mode?: number): Promise<void> {
  const abs = path.join(dir, rel);
  await mkdir(path.dirname(abs), { recursive: true });
  await writeFile(abs, bytes);
  if (mode !== undefined) await chmod(abs, mode);
}

const read = (rel: string): Promise<string> => readFile(path.join(dir, rel), 'utf8');
const oidOf = async (b: string): Promise<string> => `b3:${await blake3Hex(Buffer.from(b))}`;

async function exists(rel: string): Promise<boolean> {
  return stat(path.join(dir, rel)).then(
    () => true,
    () => false,
  );
}

async function corrupt(file: string): Promise<void> {
  await chmod(file, 0o644);
  const b = await readFile(file);
  b[0] = b[0]! ^ 0xff;
  await writeFile(file, b);
  await chmod(file, 0o444);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

/** Every file under the tracked directory `rel`, with its content. */
async function tree(rel: string): Promise<Record<string, string>> {
  const root = path.join(dir, rel);
  const out: Record<string, string> = {};
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out[path.relative(root, path.join(e.parentPath, e.name))] = await readFile(path.join(e.parentPath, e.name), 'utf8');
  }
  return out;
}

describe('checkout', () => {
  it('restores a deleted file from the cache, writable and verified', async () => {
    const content = Buffer.from(seededBytes(1, 300_000)).toString('base64');
    await put('m.bin', content);
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await rm(path.join(dir, 'm.bin'));
    const r = await checkout(repo, { cwd: dir, targets: [] });
    expect(r.items).toEqual([{ path: 'm.bin', type: 'file', oid: await oidOf(content), created: 1, updated: 0, deleted: 0, unchanged: 0 }]);
    expect(await read('m.bin')).toBe(content);
    expect(['reflink', 'copy']).toContain(r.linkMode);
    expect((await stat(path.join(dir, 'm.bin'))).mode & 0o777).toBe(0o644);
    // No temp names left next to it.
    expect((await readdir(dir)).sort()).toEqual(['.cpv', '.gitignore', 'm.bin', 'm.bin.cpv']);
  });

  it('is idempotent: a second checkout changes nothing', async () => {
    await put('m.bin', 'm');
    await put('d/x', 'x');
    await add(repo, { cwd: dir, paths: ['m.bin', 'd'] });
    const before = (await stat(path.join(dir, 'm.bin'))).ino;
    const r = await checkout(repo, { cwd: dir, targets: [] });
    expect(r.items.map((i) => [i.path, i.created, i.updated, i.deleted, i.unchanged])).toEqual([
      ['d', 0, 0, 0, 1],
      ['m.bin', 0, 0, 0, 1],
    ]);
    expect((await stat(path.join(dir, 'm.bin'))).ino).toBe(before);
  });

  it('restores a deleted directory with its execute bits', async () => {
    await put('data/a.txt', 'a');
    await put('data/sub/run.sh', '#!/bin/sh', 0o755);
    await add(repo, { cwd: dir, paths: ['data'] });
    await rm(path.join(dir, 'data'), { recursive: true });
    const r = await checkout(repo, { cwd: dir, targets: ['data'] });
    expect(r.items[0]).toMatchObject({ created: 2, updated: 0, deleted: 0 });
    expect(await tree('data')).toEqual({ 'a.txt': 'a', 'sub/run.sh': '#!/bin/sh' });
    expect((await stat(path.join(dir, 'data/sub/run.sh'))).mode & 0o777).toBe(0o755);
    expect((await stat(path.join(dir, 'data/a.txt'))).mode & 0o777).toBe(0o644);
  });

  it('refuses to overwrite a modification that is not cached, and changes nothing', async () => {
    await put('m.bin', 'v1');
    await put('other.bin', 'o');
    await add(repo, { cwd: dir, paths: ['m.bin', 'other.bin'] });
    await put('m.bin', 'local work');
    await rm(path.join(dir, 'other.bin'));
    const err = await rejection(checkout(repo, { cwd: dir, targets: [] }));
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).code).toBe('CONFLICT');
    expect((err as ConflictError).data).toEqual({ paths: ['m.bin'] });
    expect((err as ConflictError).message).toBe('checkout would overwrite changes that are not saved in the cache: m.bin');
    expect(await read('m.bin')).toBe('local work');
    // Planned before acting: the other, harmless restore did not happen either.
    expect(await exists('other.bin')).toBe(false);
  });

  it('overwrites an uncached modification with force', async () => {
    await put('m.bin', 'v1');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await put('m.bin', 'local work');
    const r = await checkout(repo, { cwd: dir, targets: ['m.bin'], force: true });
    expect(r.items[0]).toMatchObject({ updated: 1 });
    expect(await read('m.bin')).toBe('v1');
  });

  it('switches to another version without force when the current content is cached', async () => {
    await put('m.bin', 'v1');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    const p1 = await read('m.bin.cpv');
    await put('m.bin', 'v2');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    // As after `git checkout` of an older pointer.
    await put('m.bin.cpv', p1);
    const r = await checkout(repo, { cwd: dir, targets: [] });
    expect(r.items[0]).toMatchObject({ updated: 1 });
    expect(await read('m.bin')).toBe('v1');
  });

  it('replaces a directory standing where a file is tracked only with force', async () => {
    await put('m.bin', 'v1');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await rm(path.join(dir, 'm.bin'));
    await put('m.bin/inner', 'x');
    const err = await rejection(checkout(repo, { cwd: dir, targets: [] }));
    expect(err).toBeInstanceOf(ConflictError);
    expect(await read('m.bin/inner')).toBe('x');
    await checkout(repo, { cwd: dir, targets: [], force: true });
    expect(await read('m.bin')).toBe('v1');
  });

  it('in a tracked directory, refuses to delete an extra file that is not cached', async () => {
    await put('data/a.txt', 'a');
    await add(repo, { cwd: dir, paths: ['data'] });
    await put('data/extra.txt', 'precious');
    const err = await rejection(checkout(repo, { cwd: dir, targets: ['data'] }));
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).data).toEqual({ paths: ['data/extra.txt (not in the tracked version)'] });
    expect(await read('data/extra.txt')).toBe('precious');
  });

  it('in a tracked directory, deletes an extra file whose content is cached', async () => {
    await put('cached.bin', 'already saved');
    await add(repo, { cwd: dir, paths: ['cached.bin'] });
    await put('data/a.txt', 'a');
    await add(repo, { cwd: dir, paths: ['data'] });
    await put('data/extra.txt', 'already saved');
    const r = await checkout(repo, { cwd: dir, targets: ['data'] });
    expect(r.items[0]).toMatchObject({ deleted: 1, unchanged: 1 });
    expect(await tree('data')).toEqual({ 'a.txt': 'a' });
  });

  it('in a tracked directory, deletes an uncached extra file with force', async () => {
    await put('data/a.txt', 'a');
    await add(repo, { cwd: dir, paths: ['data'] });
    await put('data/extra.txt', 'scratch');
    await put('data/a.txt', 'changed');
    const r = await checkout(repo, { cwd: dir, targets: ['data'], force: true });
    expect(r.items[0]).toMatchObject({ deleted: 1, updated: 1 });
    expect(await tree('data')).toEqual({ 'a.txt': 'a' });
  });

  it('restores only the selected files of a tracked directory', async () => {
    await put('data/a.txt', 'a');
    await put('data/sub/b.txt', 'b');
    await add(repo, { cwd: dir, paths: ['data'] });
    await rm(path.join(dir, 'data/sub/b.txt'));
    await put('data/a.txt', 'uncached edit');
    await put('data/extra', 'uncached extra');
    const r = await checkout(repo, { cwd: dir, targets: ['data/sub/b.txt'] });
    expect(r.items[0]).toMatchObject({ created: 1, updated: 0, deleted: 0 });
    expect(await tree('data')).toEqual({ 'a.txt': 'uncached edit', extra: 'uncached extra', 'sub/b.txt': 'b' });
  });

  it('throws IntegrityError for a corrupt cache object and leaves the workspace as it was', async () => {
    await put('m.bin', 'v1 content');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await rm(path.join(dir, 'm.bin'));
    await corrupt(repo.cache.filePath(await oidOf('v1 content')));
    const err = await rejection(checkout(repo, { cwd: dir, targets: [] }));
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).code).toBe('INTEGRITY');
    expect((err as IntegrityError).data).toEqual({ oid: await oidOf('v1 content'), path: 'm.bin' });
    expect(await exists('m.bin')).toBe(false);
    expect((await readdir(dir)).sort()).toEqual(['.cpv', '.gitignore', 'm.bin.cpv']);
  });

  it('does not replace a workspace file with a corrupt cache object', async () => {
    await put('m.bin', 'v1');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    const p1 = await read('m.bin.cpv');
    await put('m.bin', 'v2');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await put('m.bin.cpv', p1);
    await corrupt(repo.cache.filePath(await oidOf('v1')));
    await expect(checkout(repo, { cwd: dir, targets: [] })).rejects.toBeInstanceOf(IntegrityError);
    expect(await read('m.bin')).toBe('v2');
  });

  it('throws NotFoundError listing objects that are not cached, before changing anything', async () => {
    await put('m.bin', 'm');
    await put('n.bin', 'n');
    await add(repo, { cwd: dir, paths: ['m.bin', 'n.bin'] });
    await rm(path.join(dir, 'm.bin'));
    await rm(path.join(dir, 'n.bin'));
    await rm(repo.cache.filePath(await oidOf('n')));
    const err = await rejection(checkout(repo, { cwd: dir, targets: [] }));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).data).toEqual({ missing: ['n.bin'] });
    expect((err as NotFoundError).hint).toContain('cpv pull');
    expect(await exists('m.bin')).toBe(false);
  });

  it('switches a tracked directory where a file became a directory', async () => {
    await put('data/a', 'A');
    await add(repo, { cwd: dir, paths: ['data'] });
    const p1 = await read('data.cpv');
    await rm(path.join(dir, 'data/a'));
    await put('data/a/x', 'X');
    await add(repo, { cwd: dir, paths: ['data'] });
    const p2 = await read('data.cpv');

    await put('data.cpv', p1);
    await checkout(repo, { cwd: dir, targets: [] });
    expect(await tree('data')).toEqual({ a: 'A' });

    await put('data.cpv', p2);
    await checkout(repo, { cwd: dir, targets: [] });
    expect(await tree('data')).toEqual({ 'a/x': 'X' });
  });

  it('with dryRun, plans but changes nothing', async () => {
    await put('m.bin', 'm');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await rm(path.join(dir, 'm.bin'));
    const r = await checkout(repo, { cwd: dir, targets: [], dryRun: true });
    expect(r.items[0]).toMatchObject({ created: 1 });
    expect(await exists('m.bin')).toBe(false);
  });
});

describe('checkout of a pointer whose sizes disagree with its content', () => {
  it('a file pointer with another size: PointerParseError naming the pointer; nothing written', async () => {
    await put('m.bin', 'twelve bytes');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await rm(path.join(dir, 'm.bin'));
    await put('m.bin.cpv', (await read('m.bin.cpv')).replace('size: 12', 'size: 13'));
    const err = await rejection(checkout(repo, { cwd: dir, targets: [] }));
    expect(err).toBeInstanceOf(PointerParseError);
    expect((err as PointerParseError).message).toBe(`m.bin.cpv: size 13 does not match its content ${(await oidOf('twelve bytes')).slice(0, 15)}`);
    expect(await exists('m.bin')).toBe(false);
  });

  it('a truncated cache object is reported as corrupt, not as a wrong pointer', async () => {
    await put('m.bin', 'twelve bytes');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await rm(path.join(dir, 'm.bin'));
    const object = repo.cache.filePath(await oidOf('twelve bytes'));
    await chmod(object, 0o644);
    await writeFile(object, 'twelve');
    await expect(checkout(repo, { cwd: dir, targets: [] })).rejects.toBeInstanceOf(IntegrityError);
  });

  it("a directory pointer whose size or file count is not its tree's: PointerParseError", async () => {
    await put('data/a.txt', 'a');
    await put('data/b.txt', 'bb');
    await add(repo, { cwd: dir, paths: ['data'] });
    const good = await read('data.cpv');
    for (const edit of [(t: string) => t.replace('size: 3', 'size: 4'), (t: string) => t.replace('files: 2', 'files: 3')]) {
      await put('data.cpv', edit(good));
      const err = await rejection(checkout(repo, { cwd: dir, targets: [] }));
      expect(err).toBeInstanceOf(PointerParseError);
      expect((err as PointerParseError).message).toMatch(/^data\.cpv: size \d+ and files \d+ do not match its tree b3:[0-9a-f]{12} \(3 bytes in 2 files\)$/);
    }
  });
});

describe('checkout of a path inside a tracked directory', () => {
  /** data/ with `sub` tracked as a file, then `sub` turned into a directory holding unsaved work. */
  async function fileBecameDirectory(notes: string): Promise<void> {
    await put('data/sub', 'tracked');
    await put('data/b.txt', 'b');
    await add(repo, { cwd: dir, paths: ['data'] });
    await rm(path.join(dir, 'data/sub'));
    await put('data/sub/notes.txt', notes);
  }

  it('refuses to delete unsaved files in a directory where a file is tracked, and changes nothing', async () => {
    await fileBecameDirectory('unsaved');
    const err = await rejection(checkout(repo, { cwd: dir, targets: ['data/sub'] }));
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).data).toEqual({ paths: ['data/sub/notes.txt (not in the tracked version)'] });
    expect(await read('data/sub/notes.txt')).toBe('unsaved');
    expect(await tree('data')).toEqual({ 'b.txt': 'b', 'sub/notes.txt': 'unsaved' });
  });

  it('replaces that directory with the tracked file under force', async () => {
    await fileBecameDirectory('unsaved');
    const r = await checkout(repo, { cwd: dir, targets: ['data/sub'], force: true });
    expect(r.items[0]).toMatchObject({ created: 1, deleted: 1 });
    expect(await tree('data')).toEqual({ 'b.txt': 'b', sub: 'tracked' });
  });

  it('replaces that directory without force when what it holds is cached', async () => {
    await put('saved.txt', 'saved elsewhere');
    await add(repo, { cwd: dir, paths: ['saved.txt'] });
    await fileBecameDirectory('saved elsewhere');
    await checkout(repo, { cwd: dir, targets: ['data/sub'] });
    expect(await tree('data')).toEqual({ 'b.txt': 'b', sub: 'tracked' });
  });

  it('leaves unsaved files that are not in the way alone', async () => {
    await fileBecameDirectory('unsaved');
    await rm(path.join(dir, 'data/b.txt'));
    await put('data/extra.txt', 'not in the way');
    // Selecting b.txt touches neither data/sub/ nor data/extra.txt.
    await checkout(repo, { cwd: dir, targets: ['data/b.txt'] });
    expect(await tree('data')).toEqual({ 'b.txt': 'b', 'extra.txt': 'not in the way', 'sub/notes.txt': 'unsaved' });
  });

  it('refuses to replace an unsaved file standing where a tracked directory goes (a conflict, not a raw EEXIST)', async () => {
    await put('data/sub/x', 'X');
    await put('data/b.txt', 'b');
    await add(repo, { cwd: dir, paths: ['data'] });
    await rm(path.join(dir, 'data/sub'), { recursive: true });
    await put('data/sub', 'unsaved file');
    for (const target of ['data/sub', 'data/sub/x']) {
      const err = await rejection(checkout(repo, { cwd: dir, targets: [target] }));
      expect(err, target).toBeInstanceOf(ConflictError);
      expect((err as ConflictError).data).toEqual({ paths: ['data/sub (not in the tracked version)'] });
      expect(await read('data/sub')).toBe('unsaved file');
    }
    await checkout(repo, { cwd: dir, targets: ['data/sub/x'], force: true });
    expect(await tree('data')).toEqual({ 'b.txt': 'b', 'sub/x': 'X' });
  });
});

describe('checkout where a tracked directory is a symbolic link', () => {
  /** `tools/` tracked, then replaced by a link to `other/`, a directory of the repository. */
  async function linkedTools(): Promise<void> {
    await put('tools/pre-commit', '#!/bin/sh\necho tracked\n', 0o755);
    await put('tools/lib/util.sh', 'util');
    await add(repo, { cwd: dir, paths: ['tools'] });
    await rm(path.join(dir, 'tools'), { recursive: true });
    await put('other/keep.txt', 'keep');
    await symlink('other', path.join(dir, 'tools'));
  }

  it.each([[['tools/pre-commit']], [['tools']], [[]]])('refuses to write through the link (targets %j)', async (targets) => {
    await linkedTools();
    const err = await rejection(checkout(repo, { cwd: dir, targets }));
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).data).toEqual({ paths: ['tools (a symbolic link where a directory is tracked)'] });
    expect(await tree('other')).toEqual({ 'keep.txt': 'keep' });
    expect((await lstat(path.join(dir, 'tools'))).isSymbolicLink()).toBe(true);
  });

  it('under force, replaces the link with a real directory and leaves its target alone', async () => {
    await linkedTools();
    await checkout(repo, { cwd: dir, targets: ['tools/pre-commit'], force: true });
    expect((await lstat(path.join(dir, 'tools'))).isDirectory()).toBe(true);
    expect(await tree('tools')).toEqual({ 'pre-commit': '#!/bin/sh\necho tracked\n' });
    expect((await stat(path.join(dir, 'tools/pre-commit'))).mode & 0o777).toBe(0o755);
    expect(await tree('other')).toEqual({ 'keep.txt': 'keep' });
  });

  it('under force, restores the whole directory and leaves the target alone', async () => {
    await linkedTools();
    await checkout(repo, { cwd: dir, targets: [], force: true });
    expect(await tree('tools')).toEqual({ 'pre-commit': '#!/bin/sh\necho tracked\n', 'lib/util.sh': 'util' });
    expect(await tree('other')).toEqual({ 'keep.txt': 'keep' });
  });
});
