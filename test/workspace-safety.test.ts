// cpv writes only where the plan says, and only after the plan found nothing unsaved to
// destroy: no unsaved file is deleted by a checkout of a path inside a tracked
// directory, no write goes through a symbolic link, and a damaged stat cache costs a
// rehash, not a wrong answer.
import { chmod, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cpvJson, cpvJsonResult, readPointerFile, runCpv, useHome, type AddJson, type ErrorJson, type StatusJson } from './support/cpv.js';
import { commitAll, git } from './support/git.js';
import { listFiles, makeTempDir, removeTempDir, snapshotTree } from './support/fsutil.js';

describe('workspace safety', () => {
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
  const put = async (dir: string, rel: string, content: string, mode?: number): Promise<void> => {
    await mkdir(join(dir, rel, '..'), { recursive: true });
    await writeFile(join(dir, rel), content);
    if (mode !== undefined) await chmod(join(dir, rel), mode);
  };
  const read = (dir: string, rel: string): Promise<string> => readFile(join(dir, rel), 'utf8');
  const workspace = (dir: string) => snapshotTree(dir, { exclude: ['.git', '.cpv'] });

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('safety');
    useHome(join(root, 'home'));
  });
  afterAll(() => removeTempDir(root));

  describe('checkout of a path inside a tracked directory', () => {
    it('does not delete unsaved files where a tracked file became a directory (exit 8); --force replaces them', async () => {
      const r = await newRepo();
      await put(r, 'data/sub', 'tracked\n');
      await put(r, 'data/b.txt', 'b\n');
      await cpvJson(r, ['add', 'data']);
      await rm(join(r, 'data', 'sub'));
      await put(r, 'data/sub/notes.txt', 'unsaved\n');
      const ws = await workspace(r);

      const refused = await cpvJsonResult<ErrorJson>(r, ['checkout', 'data/sub']);
      expect(refused.exitCode, refused.stderr).toBe(8);
      expect(refused.json.error).toMatchObject({ code: 'CONFLICT', data: { paths: ['data/sub/notes.txt (not in the tracked version)'] } });
      expect(refused.stderr).toContain('--force');
      expect(await workspace(r)).toEqual(ws);

      await cpvJson(r, ['checkout', 'data/sub', '--force']);
      expect(await listFiles(join(r, 'data'))).toEqual(['b.txt', 'sub']);
      expect(await read(r, 'data/sub')).toBe('tracked\n');
    });

    it('refuses an unsaved file where a tracked directory goes with a conflict (exit 8), not an internal error', async () => {
      const r = await newRepo();
      await put(r, 'data/sub/x', 'x\n');
      await put(r, 'data/b.txt', 'b\n');
      await cpvJson(r, ['add', 'data']);
      await rm(join(r, 'data', 'sub'), { recursive: true });
      await put(r, 'data/sub', 'unsaved\n');
      const ws = await workspace(r);

      for (const target of ['data/sub', 'data/sub/x']) {
        const refused = await cpvJsonResult<ErrorJson>(r, ['checkout', target]);
        expect(refused.exitCode, refused.stderr).toBe(8);
        expect(refused.json.error).toMatchObject({ code: 'CONFLICT', data: { paths: ['data/sub (not in the tracked version)'] } });
        expect(refused.stderr).not.toContain('internal error');
        expect(await workspace(r)).toEqual(ws);
      }

      await cpvJson(r, ['checkout', 'data/sub/x', '--force']);
      expect(await listFiles(join(r, 'data'))).toEqual(['b.txt', 'sub/x']);
      expect(await read(r, 'data/sub/x')).toBe('x\n');
    });
  });

  describe('a symbolic link where a tracked directory goes is never written through', () => {
    let r: string;
    let hooks: Record<string, string>;
    const HOOK = '#!/bin/sh\necho tracked hook\n';

    beforeAll(async () => {
      r = await newRepo();
      await cpvJson(r, ['remote', 'add', 'origin', join(root, 'remote-links'), '--default']);
      await put(r, 'tools/pre-commit', HOOK, 0o755);
      await put(r, 'tools/lib/util.sh', 'util\n');
      await cpvJson(r, ['add', 'tools']);
      await cpvJson(r, ['push']);
      await commitAll(r, 'Track tools');
      hooks = await snapshotTree(join(r, '.git', 'hooks'));
      expect(Object.keys(hooks).length).toBeGreaterThan(0);
    });

    /** Replace tools/ by a link to .git/hooks (as a hostile commit or a user's shortcut could). */
    const linkTools = async (): Promise<void> => {
      await rm(join(r, 'tools'), { recursive: true, force: true });
      await symlink(join('.git', 'hooks'), join(r, 'tools'));
    };

    it.each([
      ['checkout tools/pre-commit', ['checkout', 'tools/pre-commit']],
      ['checkout', ['checkout']],
      ['checkout --dry-run', ['checkout', '--dry-run']],
    ])('%s: exit 8, nothing written into .git/hooks', async (_, args) => {
      await linkTools();
      const refused = await cpvJsonResult<ErrorJson>(r, args);
      expect(refused.exitCode, refused.stderr).toBe(8);
      expect(refused.json.error).toMatchObject({ code: 'CONFLICT', data: { paths: ['tools (a symbolic link where a directory is tracked)'] } });
      expect(await snapshotTree(join(r, '.git', 'hooks'))).toEqual(hooks);
      expect(lstatSync(join(r, 'tools')).isSymbolicLink()).toBe(true);
    });

    it('pull tools/pre-commit after the cache was emptied: fetches, then refuses (exit 8)', async () => {
      await linkTools();
      await rm(join(r, '.cpv', 'cache', 'files'), { recursive: true, force: true });
      const refused = await runCpv(r, ['pull', 'tools/pre-commit']);
      expect(refused.exitCode, refused.stderr).toBe(8);
      expect(refused.stderr).toContain('tools (a symbolic link where a directory is tracked)');
      expect(await snapshotTree(join(r, '.git', 'hooks'))).toEqual(hooks);
    });

    it('--force replaces the link by a real directory and leaves .git/hooks alone', async () => {
      await linkTools();
      await cpvJson(r, ['pull', 'tools/pre-commit', '--force']);
      expect(lstatSync(join(r, 'tools')).isDirectory()).toBe(true);
      expect(await listFiles(join(r, 'tools'))).toEqual(['pre-commit']);
      expect(await read(r, 'tools/pre-commit')).toBe(HOOK);
      expect((await stat(join(r, 'tools', 'pre-commit'))).mode & 0o777).toBe(0o755);
      expect(await snapshotTree(join(r, '.git', 'hooks'))).toEqual(hooks);

      await cpvJson(r, ['pull', 'tools']);
      expect(await listFiles(join(r, 'tools'))).toEqual(['lib/util.sh', 'pre-commit']);
    });
  });

  it('cpv add through a parent directory that links out of the repository: exit 2, nothing written anywhere', async () => {
    const r = await newRepo();
    const elsewhere = join(root, 'elsewhere');
    await mkdir(elsewhere);
    await writeFile(join(elsewhere, 'big.bin'), 'outside the repository\n');
    await symlink(elsewhere, join(r, 'data'));
    const before = { outside: await snapshotTree(elsewhere), ws: await workspace(r) };

    const refused = await cpvJsonResult<ErrorJson>(r, ['add', 'data/big.bin']);
    expect(refused.exitCode, refused.stderr).toBe(2);
    expect(refused.json.error.code).toBe('USAGE');
    expect(refused.stderr).toMatch(/data\/big\.bin is reached through a symbolic link to .*, outside the workspace/);
    expect(await snapshotTree(elsewhere)).toEqual(before.outside);
    expect(await workspace(r)).toEqual(before.ws);
    expect(await listFiles(join(r, '.cpv', 'cache', 'files'))).toEqual([]);
  });

  it('a damaged but valid-JSON stat cache entry costs a rehash: status says unchanged, add works', async () => {
    const r = await newRepo();
    await put(r, 'm.bin', 'model\n');
    await put(r, 'data/a.bin', 'a\n');
    await cpvJson(r, ['add', 'm.bin', 'data']);
    const mOid = (await readPointerFile(join(r, 'm.bin.cpv'))).oid!;
    const pointers = { m: await read(r, 'm.bin.cpv'), data: await read(r, 'data.cpv') };
    // Entries whose stat still matches, so cpv would trust them: only the oids are bad.
    const stateFile = join(r, '.cpv', 'tmp', 'state.json');
    const state = JSON.parse(await read(r, '.cpv/tmp/state.json')) as { version: number; paths: string[]; oids: string };
    expect([...state.paths].sort()).toEqual(['data/a.bin', 'm.bin']);
    state.oids = 'sha256:abc' + state.oids.slice(10, -3) + 'XYZ';
    await writeFile(stateFile, JSON.stringify(state));

    const status = await cpvJson<StatusJson>(r, ['status']);
    expect(status.clean).toBe(true);
    expect(status.items.map((i) => [i.path, i.workspace, i.cache])).toEqual([
      ['data', 'unchanged', 'present'],
      ['m.bin', 'unchanged', 'present'],
    ]);

    await writeFile(stateFile, JSON.stringify(state));
    const added = await cpvJson<AddJson>(r, ['add', 'm.bin', 'data']);
    expect(added.items.map((i) => [i.path, i.status])).toEqual([
      ['m.bin', 'unchanged'],
      ['data', 'unchanged'],
    ]);
    expect(added.items[0]!.oid).toBe(mOid);
    expect({ m: await read(r, 'm.bin.cpv'), data: await read(r, 'data.cpv') }).toEqual(pointers);
  });
});
