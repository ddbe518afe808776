// Going back to an older model version without rewriting history: A commits two
// versions of a model and pushes both; B clones, reverts the model to the first
// version as a new commit (fetching it from the remote), and reads the history with
// `cpv log`. Runs the built `cpv` against real git and a directory remote.
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cpvJson, cpvJsonResult, cpvOk, useHome, type AddJson, type ErrorJson } from './support/cpv.js';
import { cloneRepo, commitAll, git, makeOrigin, pushGit } from './support/git.js';
import { b3sum, rewriteTensors, writeModel } from './support/model.js';
import { makeTempDir, removeTempDir } from './support/fsutil.js';
import type { LogResult, RevertResult } from '../packages/core/src/index.js';

const MiB = 1024 * 1024;

describe('revert and log: back to model v1 as a new commit', () => {
  let root: string;
  let origin: string;
  let remote: string;
  let a: string;
  let b: string;
  let v1Oid: string;
  let v2Oid: string;
  let v1Commit: string;
  let v2Commit: string;

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('revert-log');
    useHome(join(root, 'home'));
    origin = await makeOrigin(join(root, 'origin.git'));
    remote = join(root, 'remote');
    a = await cloneRepo(origin, join(root, 'a'), 'Alice');
  });
  afterAll(async () => {
    await removeTempDir(root);
  });

  it('A: commits and pushes model v1 and v2', async () => {
    await cpvOk(a, ['init', '--remote', remote]);
    await writeModel(join(a, 'model.safetensors'), { seed: 7, tensors: 16, bytes: 4 * MiB });
    v1Oid = `b3:${await b3sum(join(a, 'model.safetensors'))}`;
    const add1 = await cpvJson<AddJson>(a, ['add', 'model.safetensors', '--kind', 'model', '--meta', 'epoch=1']);
    expect(add1.items[0]!.oid).toBe(v1Oid);
    v1Commit = await commitAll(a, 'model v1');
    await cpvOk(a, ['push']);

    await rewriteTensors(join(a, 'model.safetensors'), 0.25, 8);
    v2Oid = `b3:${await b3sum(join(a, 'model.safetensors'))}`;
    expect(v2Oid).not.toBe(v1Oid);
    const add2 = await cpvJson<AddJson>(a, ['add', 'model.safetensors', '--meta', 'epoch=2']);
    expect(add2.items[0]).toMatchObject({ oid: v2Oid, status: 'modified' });
    v2Commit = await commitAll(a, 'model v2');
    await cpvOk(a, ['push']);
    await pushGit(a);
  });

  it('B: reverts the model to HEAD~1 as a new commit on top, fetching v1 from the remote', async () => {
    b = await cloneRepo(origin, join(root, 'b'), 'Bob');
    // A dry run first: it says what would happen and changes nothing.
    const dry = await cpvJson<RevertResult>(b, ['revert', 'model.safetensors', '--to', 'HEAD~1', '--dry-run']);
    expect(dry).toMatchObject({ revCommit: v1Commit, reverted: [{ path: 'model.safetensors', from: v2Oid, to: v1Oid, changed: true }], fetchNeeded: ['model.safetensors'] });
    expect(dry.commit).toBeUndefined();
    expect((await git(b, ['rev-parse', 'HEAD'])).trim()).toBe(v2Commit);

    const r = await cpvJson<RevertResult>(b, ['revert', 'model.safetensors', '--to', 'HEAD~1']);
    expect(r.reverted).toEqual([{ path: 'model.safetensors', pointerPath: 'model.safetensors.cpv', type: 'file', kind: 'model', from: v2Oid, to: v1Oid, changed: true }]);
    expect(r.fetch).toMatchObject({ remote: 'origin', files: 1 });
    expect(r.commit).toMatch(/^[0-9a-f]{40}$/);

    // The workspace holds v1, byte for byte.
    expect(`b3:${await b3sum(join(b, 'model.safetensors'))}`).toBe(v1Oid);
    // A new commit on top of the two old ones: history is not rewritten.
    const commits = (await git(b, ['log', '--format=%H %s'])).split('\n');
    expect(commits).toEqual([`${r.commit} cpv: revert model.safetensors to HEAD~1`, `${v2Commit} model v2`, `${v1Commit} model v1`]);
    expect(await readFile(join(b, 'model.safetensors.cpv'), 'utf8')).toBe(await git(b, ['show', `${v1Commit}:model.safetensors.cpv`]).then((s) => s + '\n'));
    expect((await git(b, ['status', '--porcelain'])).trim()).toBe('');
  });

  it('B: cpv log lists every version of the model with its oid, newest first', async () => {
    const log = await cpvJson<LogResult>(b, ['log', 'model.safetensors']);
    expect(log.items).toHaveLength(1);
    const versions = log.items[0]!.versions;
    expect(versions.map((v) => [v.commit, v.oid, v.meta?.epoch])).toEqual([
      [expect.stringMatching(/^[0-9a-f]{40}$/), v1Oid, 1],
      [v2Commit, v2Oid, 2],
      [v1Commit, v1Oid, 1],
    ]);
    expect(versions.map((v) => v.author)).toEqual(['Bob', 'Alice', 'Alice']);
    const limited = await cpvJson<LogResult>(b, ['log', 'model.safetensors', '-n', '2']);
    expect(limited.items[0]!.versions.map((v) => v.oid)).toEqual([v1Oid, v2Oid]);
    // The text form: one table per path.
    const text = await cpvOk(b, ['log']);
    expect(text.stdout).toContain('model.safetensors (model): 3 versions');
    expect(text.stdout).toContain(v2Commit.slice(0, 7));
  });

  it('B: refuses to revert over unsaved data, with a hint, and changes nothing', async () => {
    await writeModel(join(b, 'model.safetensors'), { seed: 99, tensors: 4, bytes: MiB });
    const r = await cpvJsonResult<ErrorJson>(b, ['revert', 'model.safetensors', '--to', v2Commit]);
    expect(r.exitCode).toBe(8);
    expect(r.json.error).toMatchObject({ code: 'CONFLICT', hint: expect.stringContaining('--force') });
    const unknown = await cpvJsonResult<ErrorJson>(b, ['revert', 'model.safetensors', '--to', 'no-such-rev']);
    expect(unknown.json.error.code).toBe('GIT');
    expect((await git(b, ['log', '--format=%H'])).split('\n')).toHaveLength(3);
  });

  it('B: bitbucket-config (git-config) points origin elsewhere and checks it; a readable key is refused', async () => {
    const mirror = await makeOrigin(join(root, 'mirror.git'));
    const r = await cpvJson<{ action: string; previousUrl: string; verified: boolean }>(b, ['bitbucket-config', '--url', mirror]);
    expect(r).toMatchObject({ action: 'updated', previousUrl: origin, verified: true });
    expect((await git(b, ['remote', 'get-url', 'origin'])).trim()).toBe(mirror);
    const key = join(root, 'id_shared');
    await writeFile(key, '-----BEGIN OPENSSH PRIVATE KEY-----\n');
    await chmod(key, 0o644);
    const bad = await cpvJsonResult<ErrorJson>(b, ['git-config', '--url', 'git@bitbucket.org:team/repo.git', '--ssh-key', key]);
    expect(bad.exitCode).toBe(7);
    expect(bad.json.error).toMatchObject({ code: 'CONFIG', hint: `restrict it to yourself: \`chmod 600 ${key}\`` });
    expect((await git(b, ['remote', 'get-url', 'origin'])).trim()).toBe(mirror);
  });
});
