// Bad input gets a clear error that names the file and the next step, a specific
// non-zero exit code, and leaves nothing half-written.
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cpvJson, cpvJsonResult, objectPath, readPointerFile, runCpv, useHome, type ErrorJson, type StatusJson } from './support/cpv.js';
import { cloneRepo, commitAll, makeOrigin } from './support/git.js';
import { b3sum, randomBytes } from './support/model.js';
import { listFiles, makeTempDir, removeTempDir, sha256File, snapshotTree } from './support/fsutil.js';

const KiB = 1024;

describe('errors: clear messages, exit codes, nothing half-written', () => {
  let root: string;
  let repo: string; // a cpv repo with good.bin and data/ tracked and committed
  let goodOid: string;
  let goodSize: number;
  let copies = 0;

  /** An independent copy of `repo` (git, cache and workspace) for tests that change it. */
  const copyRepo = async (): Promise<string> => {
    const dest = join(root, `copy-${++copies}`);
    await cp(repo, dest, { recursive: true, preserveTimestamps: true });
    return dest;
  };
  const workspace = (dir: string) => snapshotTree(dir, { exclude: ['.git', '.cpv'] });
  /** Everything under the test's temp root except the repo and its copies. */
  const outside = () => snapshotTree(root, { exclude: (rel) => rel === 'repo' || rel.startsWith('copy-') });

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('errors');
    useHome(join(root, 'home'));
    const origin = await makeOrigin(join(root, 'origin.git'));
    repo = await cloneRepo(origin, join(root, 'repo'));
    await cpvJson(repo, ['init', '--remote', join(root, 'remote')]);
    await writeFile(join(repo, 'good.bin'), randomBytes(21, 300 * KiB));
    await mkdir(join(repo, 'data'));
    for (const n of ['a', 'b', 'c']) await writeFile(join(repo, 'data', `${n}.bin`), randomBytes(n.charCodeAt(0), 4 * KiB));
    await cpvJson(repo, ['add', 'good.bin', 'data']);
    await commitAll(repo, 'Track good.bin and data');
    goodOid = `b3:${await b3sum(join(repo, 'good.bin'))}`;
    goodSize = 300 * KiB;
    // Decoys a hostile pointer might aim at.
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  });
  afterAll(() => removeTempDir(root));

  describe('not a repository', () => {
    it('cpv status outside any cpv repository: exit 2, says so, hints cpv init', async () => {
      const dir = join(root, 'empty');
      await mkdir(dir);
      const r = await runCpv(dir, ['status']);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(`not a cpv repository: ${dir}`);
      expect(r.stderr).toContain('cpv init');
      expect(r.stdout).toBe('');
      expect(await listFiles(dir)).toEqual([]);
    });

    it('cpv init outside git: exit 2, says not a git repository, hints --no-scm; --no-scm works', async () => {
      const dir = join(root, 'no-git');
      await mkdir(dir);
      const r = await runCpv(dir, ['init']);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain('not a git repository');
      expect(r.stderr).toContain('--no-scm');
      expect(existsSync(join(dir, '.cpv'))).toBe(false);

      const ok = await cpvJson(dir, ['init', '--no-scm']);
      expect(ok).toMatchObject({ git: false, created: ['.cpv/config', '.cpv/.gitignore'] });
      expect(existsSync(join(dir, '.cpv', 'config'))).toBe(true);
      expect(await cpvJson<StatusJson>(dir, ['status'])).toEqual({ items: [], clean: true });

      // A second init does not clobber the first.
      const config = await readFile(join(dir, '.cpv', 'config'), 'utf8');
      const again = await runCpv(dir, ['init', '--no-scm']);
      expect(again.exitCode).toBe(8);
      expect(again.stderr).toContain('already a cpv repository');
      expect(again.stderr).toContain('--force');
      expect(await readFile(join(dir, '.cpv', 'config'), 'utf8')).toBe(config);
    });
  });

  describe('malformed pointer files fail status and checkout with exit code 5, naming the file and line', () => {
    // A valid pointer body, one key per line: version 1, kind 2, path 3, type 4, oid 5, size 6.
    const body = (path: string, over: Record<string, string> = {}, extra = ''): string => {
      const v: Record<string, string> = { version: '1', kind: 'model', path, type: 'file', oid: goodOid, size: String(goodSize), ...over };
      return Object.entries(v).map(([k, x]) => `${k}: ${x}\n`).join('') + extra;
    };
    // The oid is that of a cached file, so a lax reader of the hostile paths would have
    // real content to write outside the repository.
    const cases: Array<{ name: string; file: string; text: () => string; line?: number; reason: RegExp }> = [
      { name: 'bad YAML', file: 'broken.bin.cpv', text: () => 'version: 1\nkind: model\npath: broken.bin\ntype: [file\noid: x\n', reason: /invalid YAML/ },
      { name: 'unknown version 99', file: 'future.bin.cpv', text: () => body('future.bin', { version: '99' }), line: 1, reason: /unsupported pointer version 99/ },
      { name: 'bad oid', file: 'badoid.bin.cpv', text: () => body('badoid.bin', { oid: 'b3:XYZ' }), line: 5, reason: /oid must be "b3:" followed by 64 lowercase hex/ },
      { name: 'uppercase oid', file: 'upper.bin.cpv', text: () => body('upper.bin', { oid: goodOid.toUpperCase().replace('B3:', 'b3:') }), line: 5, reason: /oid must be/ },
      { name: 'path ../etc/passwd', file: 'passwd.cpv', text: () => body('../etc/passwd'), line: 3, reason: /must be a plain file name/ },
      { name: 'absolute path', file: 'abs.bin.cpv', text: () => body(join(root, 'etc', 'abs.bin')), line: 3, reason: /must be a plain file name/ },
      { name: 'path of another file', file: 'other.bin.cpv', text: () => body('good.bin'), line: 3, reason: /does not match the pointer's own name/ },
      { name: 'traversal from a subdirectory', file: 'sub/x.bin.cpv', text: () => body('../good.bin'), line: 3, reason: /must be a plain file name/ },
      { name: 'unknown key', file: 'extra.bin.cpv', text: () => body('extra.bin', {}, 'owner: eve\n'), line: 7, reason: /unknown key "owner"/ },
      { name: 'negative size', file: 'neg.bin.cpv', text: () => body('neg.bin', { size: '-1' }), line: 6, reason: /size must be a non-negative integer/ },
      { name: 'files on a file pointer', file: 'files.bin.cpv', text: () => body('files.bin', {}, 'files: 3\n'), line: 7, reason: /only allowed on a directory/ },
    ];

    // Each case works on its own copy of the repo, so the cases run side by side.
    it.concurrent.for(cases)('$name', async ({ file, text, line, reason }, { expect }) => {
      const c = await copyRepo();
      const pointer = join(c, ...file.split('/'));
      await mkdir(join(pointer, '..'), { recursive: true });
      await writeFile(pointer, text());
      const ws = await workspace(c);
      const out = await outside();
      const runs = await Promise.all([runCpv(c, ['status']), runCpv(c, ['checkout'])]);
      for (const r of runs) {
        expect(r.exitCode, r.stderr).toBe(5);
        const where = line === undefined ? new RegExp(`${file.replace(/[.]/g, '\\.')}:\\d+: `) : `${file}:${line}: `;
        expect(r.stderr).toMatch(where);
        expect(r.stderr).toMatch(reason);
        expect(r.stderr).toContain('hint:');
      }
      expect(await workspace(c)).toEqual(ws);
      expect(await outside()).toEqual(out);
    });

    it('--json: the error object carries code POINTER_PARSE', async () => {
      const c = await copyRepo();
      await writeFile(join(c, 'future.bin.cpv'), body('future.bin', { version: '99' }));
      const r = await cpvJsonResult<ErrorJson>(c, ['status']);
      expect(r.exitCode).toBe(5);
      expect(r.json.error).toMatchObject({ code: 'POINTER_PARSE' });
      expect(r.json.error.message).toContain('future.bin.cpv:1');
      expect(r.stderr).toContain('future.bin.cpv:1');
    });
  });

  it('a missing cache object: checkout says it is not in the cache and hints cpv pull (exit 3)', async () => {
    const c = await copyRepo();
    await rm(objectPath(join(c, '.cpv', 'cache', 'files'), goodOid));
    await rm(join(c, 'good.bin'));
    const ws = await workspace(c);
    const r = await runCpv(c, ['checkout']);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain('not in the cache');
    expect(r.stderr).toContain('good.bin');
    expect(r.stderr).toContain('cpv pull');
    expect(existsSync(join(c, 'good.bin'))).toBe(false);
    expect(await workspace(c)).toEqual(ws);
  });

  it('an unknown remote: exit 7, lists the configured remotes', async () => {
    const c = await copyRepo();
    await cpvJson(c, ['remote', 'add', 'backup', join(root, 'backup')]);
    const cmds = ['push', 'pull', 'fetch', 'status'];
    const results = await Promise.all(cmds.map((cmd) => runCpv(c, [cmd, '-r', 'nope'])));
    results.forEach((r, i) => {
      expect(r.exitCode, `cpv ${cmds[i]} -r nope`).toBe(7);
      expect(r.stderr).toContain('unknown remote "nope"');
      expect(r.stderr).toMatch(/configured remotes: (origin, backup|backup, origin)/);
    });
    expect(existsSync(join(root, 'backup'))).toBe(false);
  });

  describe('cpv add refuses paths it cannot track, changing nothing', () => {
    const cases = [
      { name: 'a path outside the repository', arg: '../outside.bin', exit: 2, message: /not inside the repository/ },
      { name: '.git/config', arg: '.git/config', exit: 2, message: /inside \.git\// },
      { name: '.cpv/config', arg: '.cpv/config', exit: 2, message: /inside \.cpv\// },
      { name: 'a pointer file', arg: 'good.bin.cpv', exit: 2, message: /good\.bin\.cpv is a cpv pointer file[\s\S]*cpv add good\.bin/ },
      { name: 'a missing path', arg: 'missing.bin', exit: 3, message: /missing\.bin does not exist/ },
      { name: 'a file inside a tracked directory', arg: 'data/a.bin', exit: 2, message: /data\/a\.bin is inside data, which cpv already tracks/ },
    ];

    it.each(cases)('$name', async ({ arg, exit, message }) => {
      await writeFile(join(root, 'outside.bin'), 'not yours\n');
      const ws = await workspace(repo);
      const out = await outside();
      const cache = await listFiles(join(repo, '.cpv', 'cache'), { exclude: ['tmp'] });
      const r = await runCpv(repo, ['add', arg]);
      expect(r.exitCode, r.stderr).toBe(exit);
      expect(r.stderr).toMatch(message);
      expect(await workspace(repo)).toEqual(ws);
      expect(await outside()).toEqual(out);
      expect(await listFiles(join(repo, '.cpv', 'cache'), { exclude: ['tmp'] })).toEqual(cache);
    });
  });

  describe('checkout never silently discards work', () => {
    it('refuses to overwrite a modified file that is not in the cache (exit 8); --force overwrites it', async () => {
      const c = await copyRepo();
      await writeFile(join(c, 'good.bin'), 'precious unsaved work\n');
      const mine = await sha256File(join(c, 'good.bin'));
      const r = await runCpv(c, ['checkout']);
      expect(r.exitCode).toBe(8);
      expect(r.stderr).toContain('good.bin');
      expect(r.stderr).toContain('--force');
      expect(await sha256File(join(c, 'good.bin'))).toBe(mine);

      const j = await cpvJsonResult<ErrorJson>(c, ['checkout']);
      expect(j.exitCode).toBe(8);
      expect(j.json.error).toMatchObject({ code: 'CONFLICT', data: { paths: ['good.bin'] } });

      await cpvJson(c, ['checkout', '--force']);
      expect(`b3:${await b3sum(join(c, 'good.bin'))}`).toBe(goodOid);
      expect((await readPointerFile(join(c, 'good.bin.cpv'))).oid).toBe(goodOid);
    });

    it('refuses to delete an untracked file inside a tracked directory (exit 8); --force deletes it', async () => {
      const c = await copyRepo();
      await writeFile(join(c, 'data', 'notes.txt'), 'mine\n');
      const r = await runCpv(c, ['checkout', 'data']);
      expect(r.exitCode).toBe(8);
      expect(r.stderr).toContain('data/notes.txt');
      expect(await readFile(join(c, 'data', 'notes.txt'), 'utf8')).toBe('mine\n');

      await cpvJson(c, ['checkout', 'data', '--force']);
      expect(await listFiles(join(c, 'data'))).toEqual(['a.bin', 'b.bin', 'c.bin']);
    });
  });

  describe('--json errors: stdout is one JSON object with error.code, the text goes to stderr', () => {
    it.each([
      { name: 'not a repository', args: ['status'], cwd: () => join(root, 'empty'), exit: 2, code: 'NOT_A_REPO' },
      { name: 'unknown remote', args: ['push', '-r', 'nope'], cwd: () => repo, exit: 7, code: 'CONFIG' },
      { name: 'missing path', args: ['add', 'missing.bin'], cwd: () => repo, exit: 3, code: 'NOT_FOUND' },
      { name: 'untracked target', args: ['checkout', 'nothing-here.bin'], cwd: () => repo, exit: 3, code: 'NOT_FOUND' },
    ])('$name', async ({ args, cwd, exit, code }) => {
      await mkdir(join(root, 'empty'), { recursive: true });
      const r = await cpvJsonResult<ErrorJson>(cwd(), args);
      expect(r.exitCode).toBe(exit);
      expect(r.json.error.code).toBe(code);
      expect(r.json.error.message.length).toBeGreaterThan(0);
      expect(r.json.error.hint?.length ?? 0).toBeGreaterThan(0);
      expect(r.stderr).toContain(`cpv: error: ${r.json.error.message}`);
    });
  });

  it('cpv diff with an unknown git revision: a git error (exit 9), not an internal error', async () => {
    const r = await cpvJsonResult<ErrorJson>(repo, ['diff', 'no-such-revision']);
    expect(r.json.error.code).toBe('GIT');
    expect(r.exitCode).toBe(9);
    expect(r.stderr).toContain('unknown git revision "no-such-revision"');
    expect(r.stderr).not.toContain('internal error');
  });

  it('flag errors exit 2 with the valid choices', async () => {
    const r = await runCpv(repo, ['add', 'good.bin', '--kind', 'banana']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/model, data, other/);
  });
});
