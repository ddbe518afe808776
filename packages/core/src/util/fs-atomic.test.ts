import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seededBytes } from '../testing/seeded.js';
import { fsyncDir, pathExists, removeIfExists, writeAtomic, writeExclusiveSync } from './fs-atomic.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cpv-fs-atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function* pieces(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.slice(at, at + size);
}

describe('writeAtomic', () => {
  it('writes the content read-only, creating parent directories', async () => {
    const file = path.join(dir, 'a', 'b', 'obj');
    const data = seededBytes(1, 100_000);
    expect(await writeAtomic(file, data)).toBe('written');
    expect((await readFile(file)).equals(data)).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o444);
    expect(await readdir(path.dirname(file))).toEqual(['obj']);
  });

  it('writes an async iterable with the requested mode, regardless of umask', async () => {
    const file = path.join(dir, 'obj');
    const data = seededBytes(2, 50_000);
    expect(await writeAtomic(file, pieces(data, 1000), { mode: 0o640 })).toBe('written');
    expect((await readFile(file)).equals(data)).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o640);
  });

  it('writes empty content', async () => {
    const file = path.join(dir, 'empty');
    await writeAtomic(file, new Uint8Array(0));
    expect((await stat(file)).size).toBe(0);
  });

  it('puts the temp file in tmpDir and leaves nothing there', async () => {
    const tmp = path.join(dir, 'tmp');
    const file = path.join(dir, 'files', 'obj');
    const seen: string[][] = [];
    async function* watching() {
      yield Uint8Array.of(1);
      seen.push(await readdir(tmp));
      yield Uint8Array.of(2);
    }
    await writeAtomic(file, watching(), { tmpDir: tmp });
    expect(seen[0]).toHaveLength(1);
    expect(seen[0]?.[0]).toMatch(/^\.tmp-[0-9a-f]{24}$/);
    expect(await readdir(tmp)).toEqual([]);
    expect(await readFile(file)).toEqual(Buffer.from([1, 2]));
  });

  it('replaces an existing file when not exclusive', async () => {
    const file = path.join(dir, 'obj');
    await writeAtomic(file, Uint8Array.of(1, 2, 3));
    expect(await writeAtomic(file, Uint8Array.of(9))).toBe('written');
    expect(await readFile(file)).toEqual(Buffer.from([9]));
  });

  it('returns "exists" in exclusive mode and keeps the old content', async () => {
    const file = path.join(dir, 'obj');
    await writeAtomic(file, Uint8Array.of(1, 2, 3));
    expect(await writeAtomic(file, Uint8Array.of(9), { exclusive: true })).toBe('exists');
    expect(await readFile(file)).toEqual(Buffer.from([1, 2, 3]));
    expect(await readdir(dir)).toEqual(['obj']);
  });

  it('detects a file created while it was writing (exclusive, via link)', async () => {
    const file = path.join(dir, 'obj');
    async function* racing() {
      yield Uint8Array.of(1);
      // Another writer lands first, after the up-front existence check.
      await writeFile(file, 'other');
      yield Uint8Array.of(2);
    }
    expect(await writeAtomic(file, racing(), { exclusive: true })).toBe('exists');
    expect(await readFile(file, 'utf8')).toBe('other');
    expect(await readdir(dir)).toEqual(['obj']);
  });

  it('leaves neither the final file nor a temp file when the source throws', async () => {
    const tmp = path.join(dir, 'tmp');
    const file = path.join(dir, 'files', 'obj');
    async function* failing() {
      yield seededBytes(3, 10_000);
      throw new Error('source broke');
    }
    await expect(writeAtomic(file, failing(), { tmpDir: tmp })).rejects.toThrow('source broke');
    expect(await pathExists(file)).toBe(false);
    expect(await readdir(tmp)).toEqual([]);
    await expect(writeAtomic(path.join(dir, 'obj2'), failing())).rejects.toThrow('source broke');
    expect((await readdir(dir)).sort()).toEqual(['tmp']);
  });

  it('keeps the previous file when a replacing write fails', async () => {
    const file = path.join(dir, 'obj');
    await writeAtomic(file, Uint8Array.of(7));
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Uint8Array.of(1);
      throw new Error('nope');
    }
    await expect(writeAtomic(file, failing())).rejects.toThrow('nope');
    expect(await readFile(file)).toEqual(Buffer.from([7]));
    expect(await readdir(dir)).toEqual(['obj']);
  });

  it('throws the abort reason and leaves nothing', async () => {
    const ac = new AbortController();
    const file = path.join(dir, 'obj');
    async function* aborting() {
      yield Uint8Array.of(1);
      ac.abort(new Error('stop'));
      yield Uint8Array.of(2);
    }
    await expect(writeAtomic(file, aborting(), { signal: ac.signal })).rejects.toThrow('stop');
    expect(await readdir(dir)).toEqual([]);
    await expect(writeAtomic(file, Uint8Array.of(1), { signal: ac.signal })).rejects.toThrow('stop');
    expect(await readdir(dir)).toEqual([]);
  });

  it('leaves exactly one complete file after 20 concurrent exclusive writers', async () => {
    const file = path.join(dir, 'shared', 'obj');
    const contents = Array.from({ length: 20 }, (_, i) => seededBytes(100 + i, 64 * 1024));
    const results = await Promise.all(
      contents.map((c, i) => writeAtomic(file, i % 2 ? c : pieces(c, 4096), { exclusive: true, tmpDir: path.join(dir, 'tmp') })),
    );
    expect(results.filter((r) => r === 'written')).toHaveLength(1);
    const winner = contents[results.indexOf('written')];
    expect((await readFile(file)).equals(winner ?? new Uint8Array(0))).toBe(true);
    expect(await readdir(path.join(dir, 'shared'))).toEqual(['obj']);
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
  });

  it('leaves one complete file after 20 concurrent replacing writers', async () => {
    const file = path.join(dir, 'obj');
    const contents = Array.from({ length: 20 }, (_, i) => seededBytes(200 + i, 64 * 1024));
    await Promise.all(contents.map((c) => writeAtomic(file, pieces(c, 4096))));
    const got = new Uint8Array(await readFile(file));
    expect(contents.some((c) => Buffer.from(c).equals(got))).toBe(true);
    expect(await readdir(dir)).toEqual(['obj']);
  });
});

describe('pathExists', () => {
  it('is true for files and directories, false for missing paths', async () => {
    await writeFile(path.join(dir, 'f'), 'x');
    expect(await pathExists(path.join(dir, 'f'))).toBe(true);
    expect(await pathExists(dir)).toBe(true);
    expect(await pathExists(path.join(dir, 'missing'))).toBe(false);
  });

  it('is false when a parent is a file (ENOTDIR)', async () => {
    await writeFile(path.join(dir, 'f'), 'x');
    expect(await pathExists(path.join(dir, 'f', 'child'))).toBe(false);
  });

  it('propagates other errors instead of answering false', async () => {
    await expect(pathExists(path.join(dir, 'n'.repeat(300)))).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
  });
});

describe('removeIfExists', () => {
  it('removes a read-only file and is idempotent', async () => {
    const file = path.join(dir, 'f');
    await writeFile(file, 'x');
    await chmod(file, 0o444);
    expect(await removeIfExists(file)).toBe(true);
    expect(await removeIfExists(file)).toBe(false);
    expect(await removeIfExists(path.join(dir, 'nope', 'deeper'))).toBe(false);
    expect(await pathExists(file)).toBe(false);
  });

  it('refuses to remove a directory', async () => {
    await mkdir(path.join(dir, 'd'));
    await expect(removeIfExists(path.join(dir, 'd'))).rejects.toMatchObject({ code: expect.stringMatching(/^E(ISDIR|PERM)$/) });
  });
});

describe('fsyncDir', () => {
  it('syncs an existing directory and throws for a missing one', async () => {
    await fsyncDir(dir);
    await fsyncDir(dir);
    await expect(fsyncDir(path.join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('writeExclusiveSync', () => {
  it('writes read-only content, creating the temp and final directories, and leaves no temp file', async () => {
    const file = path.join(dir, 'files', 'ab', 'obj');
    const tmp = path.join(dir, 'tmp', 't1');
    const data = seededBytes(3, 5000);
    expect(writeExclusiveSync(file, data, tmp)).toBe('written');
    expect((await readFile(file)).equals(data)).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o444);
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
  });

  it('returns "exists" and keeps the old content when the final name is taken', async () => {
    const file = path.join(dir, 'obj');
    await writeFile(file, 'old');
    expect(writeExclusiveSync(file, seededBytes(4, 10), path.join(dir, 't2'))).toBe('exists');
    expect(await readFile(file, 'utf8')).toBe('old');
    expect(await readdir(dir)).toEqual(['obj']);
  });

  it('throws and leaves no temp file when the final directory cannot be created', async () => {
    await writeFile(path.join(dir, 'f'), 'a file in the way');
    expect(() => writeExclusiveSync(path.join(dir, 'f', 'sub', 'obj'), seededBytes(5, 10), path.join(dir, 't3'))).toThrow();
    expect((await readdir(dir)).sort()).toEqual(['f']);
  });
});
