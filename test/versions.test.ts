// Version tags and git hooks: one git ref binds a model and a dataset; publishing a
// tag first proves the cpv remote holds everything it references (with `cpv push
// --tags`, or the pre-push hook of `cpv install`); `git checkout TAG && cpv pull`
// brings back exactly that version. The steps run in order and build on each other.
import { appendFile, chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreateTagResult, PushTagsResult, TagInfo, TagSummary, VerifyTagResult } from '../packages/core/src/index.js';
import { assertBuilt, childEnv, cpvJson, cpvJsonResult, cpvOk, runCpv, useHome, type ErrorJson, type PullJson } from './support/cpv.js';
import { cloneRepo, commitAll, git, makeOrigin, pushGit } from './support/git.js';
import { b3sum, rewriteTensors, writeDataset, writeModel } from './support/model.js';
import { listFiles, makeTempDir, removeTempDir } from './support/fsutil.js';
import { directoryRemote, type RemoteFixture } from './support/remote-fixture.js';

const MiB = 1024 * 1024;

/** Run git without throwing: what a refused push looks like. */
async function gitResult(cwd: string, args: readonly string[]): Promise<{ exitCode: number; stderr: string }> {
  const r = await execa('git', args, { cwd, env: childEnv(), extendEnv: false, reject: false, stdin: 'ignore' });
  return { exitCode: r.exitCode ?? -1, stderr: String(r.stderr) };
}

/** b3sum of the model and of every dataset file, keyed by path relative to the clone. */
async function sums(clone: string): Promise<Record<string, string>> {
  const out: Record<string, string> = { 'model.safetensors': await b3sum(join(clone, 'model.safetensors')) };
  for (const f of await listFiles(join(clone, 'data'))) out[`data/${f}`] = await b3sum(join(clone, 'data', ...f.split('/')));
  return out;
}

async function remoteTags(clone: string): Promise<string> {
  return git(clone, ['ls-remote', '--tags', 'origin']);
}

describe('versions: tags bind a model and its data; publishing proves the remote holds them', () => {
  let root: string;
  let origin: string;
  let remote: RemoteFixture;
  let a: string; // Alice's clone: makes the versions
  let b: string; // Bob's clone: restores them
  let v1: Record<string, string>;
  let v2: Record<string, string>;
  let v1Model: string;

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('versions');
    useHome(join(root, 'home'));
    origin = await makeOrigin(join(root, 'origin.git'));
    remote = await directoryRemote(join(root, 'remote'));
    a = await cloneRepo(origin, join(root, 'a'), 'Alice');
    await remote.init(a);
    await commitAll(a, 'Initialize cpv');
    await pushGit(a);
  });
  afterAll(async () => {
    await remote?.dispose();
    await removeTempDir(root);
  });

  it('A: tag v1 binds a model and a dataset; the pointers are committed by the tag', async () => {
    await writeModel(join(a, 'model.safetensors'), { seed: 11, tensors: 16, bytes: 4 * MiB });
    await writeDataset(join(a, 'data'), { seed: 12, files: 40 });
    await cpvOk(a, ['add', 'model.safetensors', '--kind', 'model']);
    await cpvOk(a, ['add', 'data', '--kind', 'data']);
    const r = await cpvJson<CreateTagResult>(a, ['tag', 'create', 'v1', '--model', 'model.safetensors', '--data', 'data', '-m', 'first', '--meta', 'epochs=3']);
    expect(r).toMatchObject({ tag: 'v1', newCommit: true, committed: ['.gitignore', 'data.cpv', 'model.safetensors.cpv'], meta: { epochs: 3 } });
    expect(r.artifacts.map((x) => [x.path, x.kind, x.type])).toEqual([
      ['data', 'data', 'dir'],
      ['model.safetensors', 'model', 'file'],
    ]);
    expect(r.artifacts[1]!.oid).toBe(`b3:${await b3sum(join(a, 'model.safetensors'))}`);
    expect((await git(a, ['log', '-1', '--format=%s'])).trim()).toBe('cpv: version v1');
    expect((await git(a, ['rev-parse', 'v1^{commit}'])).trim()).toBe(r.commit);
    expect(await git(a, ['status', '--porcelain'])).toBe('');
    v1 = await sums(a);
    v1Model = r.artifacts[1]!.oid;

    const again = await cpvJsonResult<ErrorJson>(a, ['tag', 'create', 'v1']);
    expect(again.exitCode).not.toBe(0);
    expect(again.json.error.code).toBe('CONFLICT');
  });

  it('A: push --tags uploads what v1 references, proves it, then pushes the tag; git push the branch', async () => {
    const r = await cpvJson<PushTagsResult>(a, ['push', '--tags']);
    expect(r.tags).toEqual([{ tag: 'v1', status: 'pushed', unavailable: [], missing: [] }]);
    expect(r.upload.uploaded).toBe(2);
    expect(await remoteTags(a)).toContain('refs/tags/v1');
    await pushGit(a);
  });

  it('A: v2 of both; an unsaved change blocks the tag until it is added', async () => {
    await rewriteTensors(join(a, 'model.safetensors'), 0.25, 21);
    await writeFile(join(a, 'data', 'meta', 'extra.txt'), 'added in v2\n');
    await appendFile(join(a, 'data', 'tools', 'prepare.sh'), '# changed in v2\n');
    const blocked = await cpvJsonResult<ErrorJson>(a, ['tag', 'create', 'v2', '-m', 'second']);
    expect(blocked.exitCode).not.toBe(0);
    expect(blocked.json.error).toMatchObject({ code: 'CONFLICT' });
    expect(blocked.json.error.message).toContain('model.safetensors');
    await cpvOk(a, ['add', 'model.safetensors', 'data']);
    const r = await cpvJson<CreateTagResult>(a, ['tag', 'create', 'v2', '-m', 'second']);
    expect(r.artifacts.map((x) => [x.path, x.kind])).toEqual([
      ['data', 'data'],
      ['model.safetensors', 'model'],
    ]);
    v2 = await sums(a);
    expect(v2['model.safetensors']).not.toBe(v1['model.safetensors']);
    const pushed = await cpvJson<PushTagsResult>(a, ['push', '--tags']);
    expect(pushed.tags.map((t) => [t.tag, t.status])).toEqual([
      ['v1', 'pushed'],
      ['v2', 'pushed'],
    ]);
    await pushGit(a);

    const { tags } = await cpvJson<{ tags: TagSummary[] }>(a, ['tag', 'list']);
    expect(tags.map((t) => [t.name, t.artifacts, t.subject])).toEqual([
      ['v1', 2, 'first'],
      ['v2', 2, 'second'],
    ]);
    const shown = await cpvJson<TagInfo>(a, ['tag', 'show', 'v1']);
    expect(shown).toMatchObject({ name: 'v1', message: 'first', block: { version: 1, meta: { epochs: 3 } } });
    expect(shown.block.artifacts.find((x) => x.path === 'model.safetensors')?.oid).toBe(v1Model);
  });

  it('B: git checkout v1 && cpv pull restores v1 of both, byte for byte', async () => {
    b = await cloneRepo(origin, join(root, 'b'), 'Bob');
    await remote.join(b);
    await git(b, ['checkout', '--quiet', 'v1']);
    const pulled = await cpvJson<PullJson>(b, ['pull']);
    expect(pulled.fetch.files).toBeGreaterThan(0);
    expect(await sums(b)).toEqual(v1);
    await git(b, ['checkout', '--quiet', 'main']);
    await cpvOk(b, ['pull']);
    expect(await sums(b)).toEqual(v2);
  });

  it('B: tag verify proves v1 is on the remote, and names a pack the remote lost', async () => {
    const ok = await cpvJson<VerifyTagResult>(b, ['tag', 'verify', 'v1']);
    expect(ok).toMatchObject({ tag: 'v1', ok: true, artifacts: 2, missing: [] });
    const manifest = JSON.parse(await readFile(join(root, 'remote', 'manifests', v1Model.slice(3, 5), v1Model.slice(5)), 'utf8')) as { packs: string[] };
    const pack = manifest.packs[0]!;
    const key = `packs/${pack.slice(0, 2)}/${pack.slice(2)}`;
    const packFile = join(root, 'remote', ...key.split('/'));
    await rename(packFile, `${packFile}.aside`);
    try {
      const lost = await runCpv(b, ['tag', 'verify', 'v1']);
      expect(lost.exitCode).not.toBe(0);
      expect(lost.stderr).toContain(key);
      expect(lost.stderr).toContain('model.safetensors');
      const json = await cpvJsonResult<ErrorJson>(b, ['tag', 'verify', 'v1']);
      expect(json.json.error.code).toBe('NOT_FOUND');
      expect((json.json.error.data as unknown as VerifyTagResult).missing).toContainEqual({ path: 'model.safetensors', oid: v1Model, what: 'pack', key, remote: 'origin' });
    } finally {
      await rename(`${packFile}.aside`, packFile);
    }
    expect((await cpvJson<VerifyTagResult>(b, ['tag', 'verify', 'v1'])).ok).toBe(true);
  });

  it('A: with the hooks installed, git push of an unpublished tag uploads its objects first; an existing hook still runs', async () => {
    const chainedLog = join(root, 'existing-hook.log');
    await writeFile(join(a, '.git', 'hooks', 'pre-push'), `#!/bin/sh\necho "existing hook: $1" >> '${chainedLog}'\ncat >> '${chainedLog}'\n`);
    await chmod(join(a, '.git', 'hooks', 'pre-push'), 0o755);
    const inst = await cpvJson<{ hooks: Array<{ name: string; action: string }> }>(a, ['install']);
    expect(inst.hooks.map((h) => [h.name, h.action])).toEqual([
      ['pre-push', 'chained'],
      ['post-checkout', 'created'],
      ['post-merge', 'created'],
    ]);
    expect((await cpvJson<{ hooks: Array<{ action: string }> }>(a, ['install'])).hooks.map((h) => h.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);

    await rewriteTensors(join(a, 'model.safetensors'), 0.25, 31);
    await cpvOk(a, ['add', 'model.safetensors']);
    await cpvOk(a, ['tag', 'create', 'v3', '--model', 'model.safetensors', '-m', 'third']);
    expect((await runCpv(a, ['tag', 'verify', 'v3'])).exitCode).not.toBe(0); // nothing uploaded yet

    const pushed = await gitResult(a, ['push', 'origin', 'v3']);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    expect(pushed.stderr).toContain('cpv: uploaded');
    expect(await remoteTags(a)).toContain('refs/tags/v3');
    expect((await cpvJson<VerifyTagResult>(a, ['tag', 'verify', 'v3'])).ok).toBe(true);
    const tagObject = (await git(a, ['rev-parse', 'v3'])).trim();
    expect(await readFile(chainedLog, 'utf8')).toContain(`existing hook: origin\nrefs/tags/v3 ${tagObject} refs/tags/v3 ${'0'.repeat(40)}\n`);
  });

  it('A: when the cpv remote is unreachable, the hook refuses the push and origin does not get the tag', async () => {
    await rewriteTensors(join(a, 'model.safetensors'), 0.25, 41);
    await cpvOk(a, ['add', 'model.safetensors']);
    await cpvOk(a, ['tag', 'create', 'v4', '-m', 'fourth']);
    await cpvOk(a, ['remote', 'modify', 'origin', 'url', '/dev/null/x', '--local']);
    try {
      const refused = await gitResult(a, ['push', 'origin', 'v4']);
      expect(refused.exitCode).not.toBe(0);
      expect(refused.stderr).toContain('cpv: the push was stopped');
      expect(refused.stderr).toContain('/dev/null/x');
      expect(await git(a, ['ls-remote', 'origin', 'refs/tags/v4'])).toBe('');
    } finally {
      await rm(join(a, '.cpv', 'config.local'));
    }
    expect((await gitResult(a, ['push', 'origin', 'v4'])).exitCode).toBe(0);
    expect(await git(a, ['ls-remote', 'origin', 'refs/tags/v4'])).toContain('refs/tags/v4');
  });

  it('A: post-checkout restores the workspace for git checkout v1, and never overwrites unsaved changes', async () => {
    const current = await sums(a);
    const co = await gitResult(a, ['checkout', '--quiet', 'v1']);
    expect(co.exitCode, co.stderr).toBe(0);
    expect(await sums(a)).toEqual(v1);

    await appendFile(join(a, 'model.safetensors'), 'unsaved bytes');
    const edited = await b3sum(join(a, 'model.safetensors'));
    const blocked = await gitResult(a, ['checkout', '--quiet', 'main']);
    expect(blocked.exitCode).toBe(0); // the hook warns, git succeeds
    expect(blocked.stderr).toContain('cpv: warning');
    expect(await b3sum(join(a, 'model.safetensors'))).toBe(edited);
    // Every other tracked path was still restored: the dataset is back at main's version.
    const now = await sums(a);
    for (const [path, sum] of Object.entries(current)) if (path !== 'model.safetensors') expect(now[path]).toBe(sum);

    await cpvOk(a, ['checkout', '--force']);
    expect(await sums(a)).toEqual(current);
  });
});
