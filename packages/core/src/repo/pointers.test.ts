import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotFoundError, PointerParseError, UsageError } from '../errors.js';
import { add } from './add.js';
import { init } from './init.js';
import { globToRegExp, hasGlob, gitignoreEscape, ignoreInGit, listPointers, readPointer, resolveTargets } from './pointers.js';
import { openRepo, type Repo } from './repo.js';

let dir: string;
let repo: Repo;
beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-pointers-')));
  await init({ dir, noScm: true });
  repo = await openRepo({ cwd: dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(rel: string, content: string): Promise<void> {
  const abs = path.join(dir, rel);
  await mkdir(path.dirname(abs), { recursive: true });
  await writeFile(abs, content);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

/** A workspace with a file, a nested file and a directory, all tracked. */
async function sample(): Promise<void> {
  await put('m.bin', 'm');
  await put('models/r/w.bin', 'w');
  await put('models/notes.txt', 'n');
  await put('data/a.txt', 'a');
  await put('data/sub/b.txt', 'b');
  await add(repo, { cwd: dir, paths: ['m.bin', 'models/r/w.bin', 'models/notes.txt', 'data'] });
}

const summary = (ts: Awaited<ReturnType<typeof resolveTargets>>): Array<[string, string[] | undefined]> =>
  ts.map((t) => [t.pointerPath, t.only ? [...t.only].sort() : undefined]);

describe('resolveTargets', () => {
  beforeEach(sample);

  it('returns every pointer, sorted, for no targets', async () => {
    const all = await resolveTargets(repo, dir, []);
    expect(all.map((t) => [t.pointerPath, t.path, t.abs])).toEqual([
      ['data.cpv', 'data', path.join(dir, 'data')],
      ['m.bin.cpv', 'm.bin', path.join(dir, 'm.bin')],
      ['models/notes.txt.cpv', 'models/notes.txt', path.join(dir, 'models/notes.txt')],
      ['models/r/w.bin.cpv', 'models/r/w.bin', path.join(dir, 'models/r/w.bin')],
    ]);
  });

  it('resolves a tracked path and its pointer to the same target', async () => {
    expect(summary(await resolveTargets(repo, dir, ['m.bin']))).toEqual([['m.bin.cpv', undefined]]);
    expect(summary(await resolveTargets(repo, dir, ['m.bin.cpv']))).toEqual([['m.bin.cpv', undefined]]);
    expect(summary(await resolveTargets(repo, dir, ['m.bin', 'm.bin.cpv', './m.bin']))).toEqual([['m.bin.cpv', undefined]]);
  });

  it('resolves paths relative to cwd', async () => {
    expect(summary(await resolveTargets(repo, path.join(dir, 'models'), ['r/w.bin']))).toEqual([['models/r/w.bin.cpv', undefined]]);
    expect(summary(await resolveTargets(repo, path.join(dir, 'models/r'), ['../../m.bin']))).toEqual([['m.bin.cpv', undefined]]);
  });

  it('resolves a tracked path that is not checked out', async () => {
    await rm(path.join(dir, 'm.bin'));
    expect(summary(await resolveTargets(repo, dir, ['m.bin']))).toEqual([['m.bin.cpv', undefined]]);
  });

  it('selects files inside a tracked directory with `only`', async () => {
    expect(summary(await resolveTargets(repo, dir, ['data/sub/b.txt']))).toEqual([['data.cpv', ['sub/b.txt']]]);
    expect(summary(await resolveTargets(repo, dir, ['data/sub', 'data/a.txt']))).toEqual([['data.cpv', ['a.txt', 'sub']]]);
    const [t] = await resolveTargets(repo, dir, ['data/sub/b.txt']);
    expect(t!.pointer.type).toBe('dir');
  });

  it('lets the whole directory win over a selection inside it, in either order', async () => {
    expect(summary(await resolveTargets(repo, dir, ['data/a.txt', 'data']))).toEqual([['data.cpv', undefined]]);
    expect(summary(await resolveTargets(repo, dir, ['data', 'data/a.txt']))).toEqual([['data.cpv', undefined]]);
  });

  it('matches globs against tracked paths and pointer paths, relative to cwd', async () => {
    expect(summary(await resolveTargets(repo, dir, ['*.bin']))).toEqual([['m.bin.cpv', undefined]]);
    expect(summary(await resolveTargets(repo, dir, ['**/*.bin']))).toEqual([
      ['m.bin.cpv', undefined],
      ['models/r/w.bin.cpv', undefined],
    ]);
    expect(summary(await resolveTargets(repo, dir, ['models/**']))).toEqual([
      ['models/notes.txt.cpv', undefined],
      ['models/r/w.bin.cpv', undefined],
    ]);
    expect(summary(await resolveTargets(repo, path.join(dir, 'models'), ['*.txt']))).toEqual([['models/notes.txt.cpv', undefined]]);
    expect(summary(await resolveTargets(repo, dir, ['*.cpv']))).toEqual([
      ['data.cpv', undefined],
      ['m.bin.cpv', undefined],
    ]);
  });

  it('throws NotFoundError for a glob that matches no tracked path', async () => {
    const err = await rejection(resolveTargets(repo, dir, ['*.nothing']));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toBe('no tracked path matches "*.nothing"');
  });

  it('throws NotFoundError for an untracked path, with a hint', async () => {
    await put('loose.txt', 'l');
    const err = await rejection(resolveTargets(repo, dir, ['loose.txt']));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toBe('loose.txt is not tracked by cpv');
    expect((err as NotFoundError).hint).toBe('track it with `cpv add loose.txt`');
    await expect(resolveTargets(repo, dir, ['nope/deeper'])).rejects.toBeInstanceOf(NotFoundError);
  });

  it('throws NotFoundError for a path below a tracked file', async () => {
    await expect(resolveTargets(repo, dir, ['m.bin/x'])).rejects.toBeInstanceOf(NotFoundError);
  });

  it('throws UsageError for a path outside the repository', async () => {
    const err = await rejection(resolveTargets(repo, dir, ['../elsewhere']));
    expect(err).toBeInstanceOf(UsageError);
  });

  it('throws PointerParseError naming a damaged pointer', async () => {
    await put('m.bin.cpv', 'version: 1\nbogus: 1\n');
    const err = await rejection(resolveTargets(repo, dir, ['m.bin']));
    expect(err).toBeInstanceOf(PointerParseError);
    expect((err as PointerParseError).message).toContain('m.bin.cpv:2: unknown key "bogus"');
  });
});

describe('resolveTargets with names that look like globs', () => {
  beforeEach(async () => {
    await put('w[v2].bin', 'literal');
    await put('wv.bin', 'v');
    await put('w2.bin', '2');
    await add(repo, { cwd: dir, paths: ['w[v2].bin', 'wv.bin', 'w2.bin'] });
  });

  it('takes a name that exists literally as itself, not as a pattern', async () => {
    expect(summary(await resolveTargets(repo, dir, ['w[v2].bin']))).toEqual([['w[v2].bin.cpv', undefined]]);
    expect(summary(await resolveTargets(repo, dir, ['w[v2].bin.cpv']))).toEqual([['w[v2].bin.cpv', undefined]]);
  });

  it('takes it literally when only its pointer exists (not checked out)', async () => {
    await rm(path.join(dir, 'w[v2].bin'));
    expect(summary(await resolveTargets(repo, dir, ['w[v2].bin']))).toEqual([['w[v2].bin.cpv', undefined]]);
  });

  it('still expands a pattern that names no file', async () => {
    expect(summary(await resolveTargets(repo, dir, ['w[v3].bin']))).toEqual([['wv.bin.cpv', undefined]]);
  });

  it('writes an escaped .gitignore line that matches only that name', async () => {
    expect((await readFile(path.join(dir, '.gitignore'), 'utf8')).split('\n')).toContain('/w\\[v2\\].bin');
  });
});

describe('listPointers / readPointer', () => {
  it('skips .cpv, .git, node_modules and the insides of tracked directories', async () => {
    await put('data/a.txt', 'a');
    await add(repo, { cwd: dir, paths: ['data'] });
    // A pointer-looking file inside the tracked directory is data, not a pointer.
    await put('data/inner.cpv', 'not a pointer');
    await put('node_modules/x.cpv', 'not a pointer');
    await put('.git/y.cpv', 'not a pointer');
    expect((await listPointers(repo)).map((p) => p.pointerPath)).toEqual(['data.cpv']);
  });

  it('readPointer throws NotFoundError for an absent pointer and rejects an oversized one', async () => {
    await expect(readPointer(repo, 'nope.cpv')).rejects.toBeInstanceOf(NotFoundError);
    await put('big.cpv', '#'.repeat(64 * 1024 + 1));
    const err = await rejection(readPointer(repo, 'big.cpv'));
    expect(err).toBeInstanceOf(PointerParseError);
    expect((err as PointerParseError).message).toContain('big.cpv: pointer is 65537 bytes');
  });
});

describe('pointers cpv must not follow', () => {
  it('listPointers names a pointer whose file name is not valid UTF-8 (PointerParseError, not "missing")', async () => {
    await writeFile(Buffer.concat([Buffer.from(path.join(dir, 'x')), Buffer.from([0xff]), Buffer.from('.bin.cpv')]), 'version: 1\n');
    const err = await rejection(listPointers(repo));
    expect(err).toBeInstanceOf(PointerParseError);
    expect((err as PointerParseError).message).toBe('x\uFFFD.bin.cpv: the file name is not valid UTF-8');
  });

  it('readPointer refuses a pointer that is a symbolic link', async () => {
    await put('m.bin', 'm');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    await put('real.cpv', await readFile(path.join(dir, 'm.bin.cpv'), 'utf8'));
    await rm(path.join(dir, 'm.bin.cpv'));
    await symlink(path.join(dir, 'real.cpv'), path.join(dir, 'm.bin.cpv'));
    const err = await rejection(resolveTargets(repo, dir, ['m.bin']));
    expect(err).toBeInstanceOf(PointerParseError);
    expect((err as PointerParseError).message).toBe('m.bin.cpv: is a symbolic link; a pointer must be a regular file');
  });

  it('resolveTargets refuses a pointer reached through a symbolic link that leaves the repository', async () => {
    await put('m.bin', 'm');
    await add(repo, { cwd: dir, paths: ['m.bin'] });
    const outside = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-outside-')));
    try {
      await writeFile(path.join(outside, 'm.bin.cpv'), await readFile(path.join(dir, 'm.bin.cpv')));
      await symlink(outside, path.join(dir, 'link'));
      const err = await rejection(resolveTargets(repo, dir, ['link/m.bin']));
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).message).toBe(`link/m.bin is reached through a symbolic link to ${outside}, outside the workspace`);
      // The pointers of the workspace itself are what every command sees.
      expect((await listPointers(repo)).map((p) => p.pointerPath)).toEqual(['m.bin.cpv']);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });
});

describe('ignoreInGit', () => {
  it('adds the path once and reports the .gitignore only when it changed', async () => {
    expect(await ignoreInGit(repo, ['a/b.bin'])).toEqual(['a/.gitignore']);
    expect(await ignoreInGit(repo, ['a/b.bin'])).toEqual([]);
    expect(await readFile(path.join(dir, 'a/.gitignore'), 'utf8')).toBe('/b.bin\n');
  });

  it('writes each directory once for many paths', async () => {
    expect(await ignoreInGit(repo, ['x/1.bin', 'x/2.bin', 'y.bin', 'x/1.bin'])).toEqual(['x/.gitignore', '.gitignore']);
    expect(await readFile(path.join(dir, 'x/.gitignore'), 'utf8')).toBe('/1.bin\n/2.bin\n');
  });

  it('recognises an existing line in a CRLF file', async () => {
    await put('.gitignore', '*.log\r\n/m.bin\r\n');
    expect(await ignoreInGit(repo, ['m.bin'])).toEqual([]);
  });

  it('escapes names so that git ignores exactly that file', () => {
    expect(gitignoreEscape('w[v2].bin')).toBe('w\\[v2\\].bin');
    expect(gitignoreEscape('a*b?.bin')).toBe('a\\*b\\?.bin');
    expect(gitignoreEscape('!important')).toBe('\\!important');
    expect(gitignoreEscape('#hash')).toBe('\\#hash');
    expect(gitignoreEscape('back\\slash')).toBe('back\\\\slash');
    expect(gitignoreEscape('trailing  ')).toBe('trailing\\ \\ ');
    expect(gitignoreEscape('plain name.bin')).toBe('plain name.bin');
  });
});

describe('hasGlob', () => {
  it('detects glob syntax', () => {
    expect(['*.bin', 'a?', '[ab]', '{a,b}'].map(hasGlob)).toEqual([true, true, true, true]);
    expect(['a.bin', 'dir/sub', 'a-b_c'].map(hasGlob)).toEqual([false, false, false]);
  });
});

describe('globToRegExp', () => {
  it.each([
    ['*.bin', 'a.bin', true],
    ['*.bin', '.bin', true],
    ['*.bin', 'd/a.bin', false],
    ['*.bin', 'abin', false],
    ['?.bin', 'a.bin', true],
    ['?.bin', 'ab.bin', false],
    ['?.bin', '/.bin', false],
    ['**/*.bin', 'a.bin', true],
    ['**/*.bin', 'x/y/a.bin', true],
    ['**', 'a/b/c', true],
    ['data/**', 'data/x/y', true],
    ['data/**', 'database/x', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'ab', false],
    ['[ab].txt', 'a.txt', true],
    ['[ab].txt', 'c.txt', false],
    ['[!a].txt', 'b.txt', true],
    ['[!a].txt', 'a.txt', false],
    ['[a-c]x', 'bx', true],
    ['[a-c]x', 'dx', false],
    ['{a,b}/*.bin', 'b/c.bin', true],
    ['{a,b}/*.bin', 'c/c.bin', false],
    ['{a.b,c}', 'a.b', true],
    ['{a.b,c}', 'axb', false],
    ['{*.bin,*.pt}', 'm.pt', true],
    ['{*.bin,*.pt}', 'd/m.pt', false],
    ['{a?,b}.txt', 'ax.txt', true],
    ['{a?,b}.txt', '.txt', false],
    ['{a?,b}.txt', 'b.txt', true],
    ['a+b(1).bin', 'a+b(1).bin', true],
    ['a+b(1).bin', 'aab1.bin', false],
    ['$x^|y.bin', '$x^|y.bin', true],
    ['[unclosed', '[unclosed', true],
    ['{unclosed', '{unclosed', true],
  ])('%s against %s is %s', (glob, path, expected) => {
    expect(globToRegExp(glob).test(path)).toBe(expected);
  });
});
