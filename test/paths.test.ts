// How commands read the paths and values they are given: names that look like globs,
// paths inside tracked directories, paths inside each other, metadata keys.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cpvJson, cpvJsonResult, readPointerFile, runCpv, useHome, type AddJson, type CheckoutJson, type ErrorJson, type PullJson, type StatusJson } from './support/cpv.js';
import { cloneRepo, commitAll, git, gitDirty, isIgnored, makeOrigin, pushGit } from './support/git.js';
import { b3sum, randomBytes } from './support/model.js';
import { listFiles, makeTempDir, removeTempDir, snapshotTree } from './support/fsutil.js';

const KiB = 1024;

describe('paths and values on the command line', () => {
  let root: string;
  let repos = 0;

  /** A new git repository with cpv initialised and committed. */
  const newRepo = async (): Promise<string> => {
    const dir = join(root, `repo-${++repos}`);
    await mkdir(dir);
    await git(dir, ['init', '--quiet', '--initial-branch=main']);
    await git(dir, ['config', 'user.name', 'Test User']);
    await git(dir, ['config', 'user.email', 'test.user@example.com']);
    await git(dir, ['config', 'commit.gpgsign', 'false']);
    await cpvJson(dir, ['init']);
    await commitAll(dir, 'cpv init');
    return dir;
  };
  /** Everything but .git (and .cpv when asked). */
  const workspace = (dir: string, exclude: string[] = ['.git']) => snapshotTree(dir, { exclude });

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('paths');
    useHome(join(root, 'home'));
  });
  afterAll(() => removeTempDir(root));

  describe('names with glob or .gitignore syntax', () => {
    // Each name is special to .gitignore: a bracket class, wildcards, a leading "!" or
    // "#", a trailing space.
    const names = ['w[v2].bin', 'a*b?.bin', '!keep.bin', '#notes.bin', 'trailing.bin '];
    let r: string;

    beforeAll(async () => {
      r = await newRepo();
      for (const [i, n] of names.entries()) await writeFile(join(r, n), randomBytes(200 + i, 2 * KiB));
      await cpvJson<AddJson>(r, ['add', ...names]);
    });

    it('git sees only the pointers and .gitignore, and ignores exactly those files', async () => {
      expect(await gitDirty(r)).toEqual(['.gitignore', ...names.map((n) => `${n}.cpv`)].map(porcelain).sort());
      for (const n of names) expect(await isIgnored(r, n), n).toBe(true);
      // Files the unescaped lines would have matched, or that merely look alike: git
      // must still see them.
      const siblings = ['wv.bin', 'w2.bin', 'w[.bin', 'aXbY.bin', 'ab1.bin', 'keep.bin', 'trailing.bin'];
      for (const s of siblings) await writeFile(join(r, s), s);
      for (const s of siblings) expect(await isIgnored(r, s), s).toBe(false);
      expect(await gitDirty(r)).toEqual(expect.arrayContaining(siblings));
      for (const s of siblings) await rm(join(r, s));
    });

    it('status and checkout take an existing name literally', async () => {
      await writeFile(join(r, 'wv.bin'), 'a sibling the pattern would match');
      const status = await cpvJson<StatusJson>(r, ['status', 'w[v2].bin']);
      expect(status.items.map((i) => [i.path, i.workspace])).toEqual([['w[v2].bin', 'unchanged']]);
      await rm(join(r, 'w[v2].bin'));
      const checkedOut = await cpvJson<CheckoutJson>(r, ['checkout', 'w[v2].bin']);
      expect(checkedOut.items.map((i) => [i.path, i.created])).toEqual([['w[v2].bin', 1]]);
      expect(await listFiles(r, { exclude: ['.git', '.cpv'] })).toContain('w[v2].bin');
      // Not checked out: the pointer alone makes the name literal.
      await rm(join(r, 'a*b?.bin'));
      expect((await cpvJson<StatusJson>(r, ['status', 'a*b?.bin'])).items.map((i) => [i.path, i.workspace])).toEqual([['a*b?.bin', 'missing']]);
      await cpvJson(r, ['checkout', 'a*b?.bin']);
      await rm(join(r, 'wv.bin'));
    });

    it('add takes an existing name literally, leaving a sibling the pattern would match alone', async () => {
      const s = await newRepo();
      await writeFile(join(s, 'w[v2].bin'), 'literal');
      await writeFile(join(s, 'wv.bin'), 'sibling');
      const added = await cpvJson<AddJson>(s, ['add', 'w[v2].bin']);
      expect(added.items.map((i) => i.path)).toEqual(['w[v2].bin']);
      expect(await isIgnored(s, 'wv.bin')).toBe(false);
    });
  });

  describe('pull of a path inside a tracked directory', () => {
    let origin: string;
    let sums: Map<string, string>;

    beforeAll(async () => {
      origin = await makeOrigin(join(root, 'origin.git'));
      const a = await cloneRepo(origin, join(root, 'alice'), 'Alice');
      await cpvJson(a, ['init', '--remote', join(root, 'remote')]);
      const files = ['data/top.txt', 'data/sub/a.bin', 'data/sub/deep/b.bin', 'data/subway/c.bin', 'data/other/d.bin'];
      sums = new Map();
      for (const [i, f] of files.entries()) {
        await mkdir(join(a, f, '..'), { recursive: true });
        await writeFile(join(a, f), randomBytes(300 + i, (4 + i) * KiB));
        sums.set(f, await b3sum(join(a, f)));
      }
      await cpvJson(a, ['add', 'data']);
      await commitAll(a, 'Add data');
      await pushGit(a);
      await cpvJson(a, ['push']);
    });

    it('pull data/sub fetches and checks out everything under sub, and nothing else', async () => {
      const c = await cloneRepo(origin, join(root, 'bob'), 'Bob');
      const r = await cpvJson<PullJson>(c, ['pull', 'data/sub']);
      expect(r.fetch.files).toBe(2);
      expect(r.checkout.items).toEqual([expect.objectContaining({ path: 'data', created: 2, deleted: 0 })]);
      expect(await listFiles(join(c, 'data'))).toEqual(['sub/a.bin', 'sub/deep/b.bin']);
      for (const f of ['data/sub/a.bin', 'data/sub/deep/b.bin']) expect(await b3sum(join(c, f)), f).toBe(sums.get(f));
      expect(await listFiles(join(c, '.cpv', 'cache', 'files'))).toHaveLength(2);

      // A trailing slash and a deeper directory mean the same kind of selection.
      await rm(join(c, 'data'), { recursive: true });
      await cpvJson<PullJson>(c, ['pull', 'data/sub/deep/']);
      expect(await listFiles(join(c, 'data'))).toEqual(['sub/deep/b.bin']);

      // With the tree cached, checkout names a path the tree does not have too.
      const typo = await cpvJsonResult<ErrorJson>(c, ['checkout', 'data/typo.txt']);
      expect(typo.exitCode, typo.stderr).toBe(3);
      expect(typo.json.error.message).toBe('data/typo.txt is not in the tracked version of data');
    });

    it.each([
      ['pull', 'data/typo.txt'],
      ['fetch', 'data/typo.txt'],
      ['pull', 'data/su'],
    ])('%s %s: exit 3 naming the path, nothing written', async (cmd, path) => {
      const c = await cloneRepo(origin, join(root, `carol-${cmd}-${path.replace(/\W/g, '-')}`), 'Carol');
      const before = await workspace(c, ['.git', '.cpv']);
      const r = await cpvJsonResult<ErrorJson>(c, [cmd, path]);
      expect(r.exitCode, r.stderr).toBe(3);
      expect(r.json.error.code).toBe('NOT_FOUND');
      expect(r.stderr).toContain(`${path} is not in the tracked version of data`);
      expect(await listFiles(join(c, '.cpv', 'cache', 'files'))).toEqual([]);
      expect(await workspace(c, ['.git', '.cpv'])).toEqual(before);
    });
  });

  describe('cpv add refuses arguments that cannot work, writing nothing', () => {
    let r: string;

    beforeAll(async () => {
      r = await newRepo();
      await mkdir(join(r, 'data', 'sub'), { recursive: true });
      await writeFile(join(r, 'data', 'x'), 'x');
      await writeFile(join(r, 'data', 'sub', 'y'), 'y');
      await writeFile(join(r, 'm.bin'), 'm');
    });

    it.each([
      { name: 'a metadata key with a space', args: ['m.bin', '--meta', 'my key=1'], message: 'invalid metadata key "my key"' },
      { name: 'a metadata key starting with a digit', args: ['m.bin', '--meta', 'epoch=1', '--meta', '1st=2'], message: 'invalid metadata key "1st"' },
      { name: 'a directory and a file inside it', args: ['data', 'data/x'], message: 'data/x is inside data, which is added in the same command' },
      { name: 'a file inside a directory, then the directory', args: ['data/sub/y', 'm.bin', 'data/'], message: 'data/sub/y is inside data, which is added in the same command' },
    ])('$name: exit 2', async ({ args, message }) => {
      const before = await workspace(r);
      const res = await cpvJsonResult<ErrorJson>(r, ['add', ...args]);
      expect(res.exitCode, res.stderr).toBe(2);
      expect(res.json.error.code).toBe('USAGE');
      expect(res.stderr).toContain(message);
      expect(await workspace(r)).toEqual(before);
      expect(await listFiles(join(r, '.cpv', 'cache', 'files'))).toEqual([]);
      expect(await gitDirty(r)).toEqual(['data/sub/y', 'data/x', 'm.bin']);
    });

    it('valid keys and separate paths still work', async () => {
      await cpvJson<AddJson>(r, ['add', 'm.bin', '--meta', 'my_key.v-2=1', '--meta', 'note=a b']);
      expect(await readPointerFile(join(r, 'm.bin.cpv'))).toMatchObject({ 'meta.my_key.v-2': '1', 'meta.note': 'a b' });
      const res = await runCpv(r, ['add', 'data/x', 'data/sub']);
      expect(res.exitCode, res.stderr).toBe(0);
      expect(await readFile(join(r, 'data', '.gitignore'), 'utf8')).toBe('/x\n/sub\n');
    });
  });
});

/** How `git status --porcelain` prints a path: quoted when it needs escaping. */
function porcelain(p: string): string {
  return /[\s"\\]|[^\x20-\x7e]/.test(p) ? JSON.stringify(p) : p;
}
