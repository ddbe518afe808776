import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { seededBytes } from '../testing/seeded.js';
import { init } from './init.js';
import { openRepo, type Repo } from './repo.js';
import { listDirFiles } from './workspace.js';

let dir: string;
let repo: Repo;
beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-workspace-')));
  await init({ dir, noScm: true });
  repo = await openRepo({ cwd: dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const utf8Order = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('listDirFiles', () => {
  // Names whose UTF-16 order differs from their UTF-8 byte order (U+E000 and above
  // against characters outside the BMP), beside `/`, `-` and `.` that sort around it.
  const tricky = ['a', 'a-b', 'a.b', 'a/b', 'a0', 'é', '\uE000', '\uFFFC', '😀', 'z/😀', 'z/\uE000', 'z/y'];

  it('sorts by UTF-8 bytes, also where UTF-16 order differs', async () => {
    const names = tricky.filter((n) => n !== 'a'); // `a` is also a directory
    for (const n of names) {
      await mkdir(path.dirname(path.join(dir, 'd', n)), { recursive: true });
      await writeFile(path.join(dir, 'd', n), n);
    }
    const got = (await listDirFiles(repo, path.join(dir, 'd'))).map((f) => f.path);
    expect(got).toEqual([...names].sort(utf8Order));
    expect(got.indexOf('\uE000')).toBeLessThan(got.indexOf('😀'));
  });

  it('sorts plain names in the same order, with stats and modes of every file', async () => {
    // Seeded names and sizes: nested, of mixed case and punctuation.
    const bytes = seededBytes(7, 400);
    const alphabet = 'abcXYZ019-_.';
    const names = new Set<string>();
    for (let i = 0; names.size < 60; i++) {
      const len = 1 + (bytes[i]! % 6);
      let n = '';
      for (let j = 0; j < len; j++) n += alphabet[bytes[(i * 7 + j) % bytes.length]! % alphabet.length];
      if (n === '.' || n === '..') continue;
      names.add((bytes[i + 1]! % 3 === 0 ? 'sub/' : '') + n);
    }
    for (const [i, n] of [...names].entries()) {
      await mkdir(path.dirname(path.join(dir, 'd', n)), { recursive: true });
      await writeFile(path.join(dir, 'd', n), bytes.subarray(0, i));
    }
    const files = await listDirFiles(repo, path.join(dir, 'd'));
    expect(files.map((f) => f.path)).toEqual([...names].sort(utf8Order));
    const sizes = new Map([...names].map((n, i) => [n, i]));
    for (const f of files) {
      expect(f.st.size).toBe(sizes.get(f.path));
      expect(f.mode).toBe(0o644);
    }
  });

  it('rejects a name it cannot record, naming it', async () => {
    await mkdir(path.join(dir, 'd'));
    await writeFile(path.join(dir, 'd', 'ok'), '');
    await writeFile(path.join(dir, 'd', 'back\\slash'), '');
    await expect(listDirFiles(repo, path.join(dir, 'd'))).rejects.toThrow(UsageError);
    await expect(listDirFiles(repo, path.join(dir, 'd'))).rejects.toThrow(/back\\\\slash.*backslash/);
    await rm(path.join(dir, 'd', 'back\\slash'));
    await writeFile(path.join(dir, 'd', 'tab\there'), '');
    await expect(listDirFiles(repo, path.join(dir, 'd'))).rejects.toThrow(/control character/);
  });
});
