// Garbage collection and checking: two versions of a model are pushed, the ref that
// kept the first one goes away, and gc removes what only it referenced, from the cache
// and (with --cloud) from the remote, while a clone still pulls the second version
// byte for byte. fsck proves the remote sound, finds a corrupted cache object and
// repairs it from the remote. The repository lock keeps a second writer out. The
// steps run in order and build on each other, once per kind of remote.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FsckResult, GcResult } from '../packages/core/src/index.js';
import { assertBuilt, cpvJson, cpvJsonResult, objectPath, readPointerFile, runCpv, useHome, type ErrorJson } from './support/cpv.js';
import { cloneRepo, commitAll, git, makeOrigin, pushGit } from './support/git.js';
import { b3sum, rewriteTensors, writeDataset, writeModel } from './support/model.js';
import { flipByte, listFiles, makeTempDir, removeTempDir } from './support/fsutil.js';
import { checkRemote } from './support/remote-check.js';
import { directoryRemote, s3Remote, type RemoteFixture } from './support/remote-fixture.js';
import { s3Config } from './setup/s3-env.js';

const MiB = 1024 * 1024;

describe('gc and fsck over a directory remote', () => {
  scenario((root) => directoryRemote(join(root, 'remote')));
});

describe.skipIf(!s3Config())('gc and fsck over an S3 remote', () => {
  scenario(() => s3Remote('gcfsck', 'team/cpv'));
});

function scenario(makeRemote: (root: string) => Promise<RemoteFixture>): void {
  let root: string;
  let origin: string;
  let remote: RemoteFixture;
  let a: string;
  let v1: string;
  let v2: string;
  let data: string;
  let planned: GcResult;

  const cacheFile = (oid: string): string => objectPath(join(a, '.cpv', 'cache', 'files'), oid);
  const keyOf = (dir: 'files' | 'manifests' | 'trees' | 'packs', oid: string): string => objectPath(dir, oid);
  const keysOf = (objects: ReadonlyArray<{ key: string }>): string[] => objects.map((o) => o.key).sort();

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('gc-fsck');
    useHome(join(root, 'home'));
    origin = await makeOrigin(join(root, 'origin.git'));
    remote = await makeRemote(root);
    a = await cloneRepo(origin, join(root, 'a'), 'Alice');
  });
  afterAll(async () => {
    await remote?.dispose();
    await removeTempDir(root);
  });

  it('A pushes v1 of a model with its data, tags it, then pushes v2', async () => {
    await remote.init(a);
    // Over 256 chunks: its remote manifest is paged (docs/format.md, version 2).
    await writeModel(join(a, 'model.safetensors'), { seed: 31, tensors: 16, bytes: 24 * MiB });
    await writeDataset(join(a, 'data'), { seed: 32, files: 30 });
    await cpvJson(a, ['add', 'model.safetensors', '--kind', 'model']);
    await cpvJson(a, ['add', 'data', '--kind', 'data']);
    v1 = (await readPointerFile(join(a, 'model.safetensors.cpv'))).oid!;
    data = (await readPointerFile(join(a, 'data.cpv'))).oid!;
    await commitAll(a, 'model v1 and data');
    await git(a, ['tag', 'v1']);
    await cpvJson(a, ['push']);
    await pushGit(a);
    await git(a, ['push', '--quiet', 'origin', 'v1']);

    await rewriteTensors(join(a, 'model.safetensors'), 0.25, 33);
    await cpvJson(a, ['add', 'model.safetensors']);
    v2 = (await readPointerFile(join(a, 'model.safetensors.cpv'))).oid!;
    expect(v2).not.toBe(v1);
    await commitAll(a, 'model v2');
    await cpvJson(a, ['push']);
    await pushGit(a);
    const keys = await remote.keys();
    for (const k of [keyOf('manifests', v1), keyOf('manifests', v2), keyOf('trees', data)]) expect(keys).toContain(k);
    expect(keys.filter((k) => k.startsWith('pages/')).length).toBeGreaterThan(4);
  });

  it('gc keeps what a tag references, and on the remote everything younger than the 7-day grace period', async () => {
    const tagged = await cpvJson<GcResult>(a, ['gc', '--all-tags', '--cloud', '--grace', '0s', '--dry-run']);
    expect(keysOf(tagged.remote!.removed)).toEqual([]);
    expect(keysOf(tagged.cache.removed)).toEqual([]);
    const young = await cpvJson<GcResult>(a, ['gc', '--cloud', '--dry-run']);
    expect(young.graceMs).toBe(7 * 24 * 3600 * 1000);
    expect(young.remote!.removed).toEqual([]);
    expect(keysOf(young.remote!.young)).toContain(keyOf('manifests', v1));
    // The cache has no grace period: v1 is unreachable from the workspace and HEAD.
    expect(keysOf(young.cache.removed)).toContain(keyOf('files', v1));
  });

  it('once the v1 tag is deleted, gc --cloud --dry-run lists what only v1 referenced and changes nothing', async () => {
    await git(a, ['tag', '-d', 'v1']);
    await git(a, ['push', '--quiet', 'origin', ':refs/tags/v1']);
    const before = await remote.snapshot();
    planned = await cpvJson<GcResult>(a, ['gc', '--all-branches', '--all-tags', '--cloud', '--grace', '0s', '--dry-run']);
    expect(planned).toMatchObject({ dryRun: true, cancelled: false, scope: { allBranches: true, allTags: true, allCommits: false } });
    const g = planned.remote!;
    expect(keysOf(g.removed.filter((o) => o.kind === 'manifest'))).toEqual([keyOf('manifests', v1)]);
    // The pages only v1 used go too; the ones v2 shares stay.
    expect(g.removed.filter((o) => o.kind === 'page').length).toBeGreaterThan(0);
    expect(g.kept.pages).toBeGreaterThan(0);
    expect(g.removed.filter((o) => o.kind === 'tree')).toEqual([]);
    // v1's pack still holds the 75% of chunks v2 shares: kept, the rest reported reclaimable.
    expect(g.partial.length).toBeGreaterThan(0);
    expect(g.reclaimableBytes).toBeGreaterThan(0.1 * MiB);
    expect(keysOf(planned.cache.removed)).toEqual([keyOf('files', v1), keyOf('manifests', v1)].sort());

    const text = await runCpv(a, ['gc', '--all-branches', '--all-tags', '--cloud', '--grace', '0s', '--dry-run']);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toContain(keyOf('manifests', v1));
    expect(text.stdout).toMatch(/would delete 1 manifest/);
    expect(text.stdout).toMatch(/partly referenced/);
    expect(await remote.snapshot()).toEqual(before);
    expect(existsSync(cacheFile(v1))).toBe(true);
  });

  it('without --force and without a terminal, gc only shows the plan and says how to go ahead', async () => {
    const before = await remote.snapshot();
    const r = await runCpv(a, ['gc', '--all-branches', '--all-tags', '--cloud', '--grace', '0s']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(keyOf('manifests', v1));
    expect(r.stderr).toMatch(/nothing was deleted.*--force/);
    expect(await remote.snapshot()).toEqual(before);
  });

  it('gc --cloud --force --grace 0s deletes them; fsck -r finds the remote sound', async () => {
    const r = await cpvJson<GcResult>(a, ['gc', '--all-branches', '--all-tags', '--cloud', '--grace', '0s', '--force']);
    expect(r.dryRun).toBe(false);
    expect(keysOf(r.remote!.removed)).toEqual(keysOf(planned.remote!.removed));
    expect(keysOf(r.cache.removed)).toEqual(keysOf(planned.cache.removed));
    const keys = await remote.keys();
    expect(keys).not.toContain(keyOf('manifests', v1));
    for (const k of [keyOf('manifests', v2), keyOf('trees', data), 'cpv-remote.json']) expect(keys).toContain(k);
    expect(existsSync(cacheFile(v1))).toBe(false);
    expect(await b3sum(cacheFile(v2))).toBe(v2.slice(3));
    expect(await remote.leftovers()).toEqual([]);

    const check = await cpvJson<FsckResult>(a, ['fsck', '-r', 'origin', '--read-data']);
    expect(check).toMatchObject({ ok: true, problems: [], readData: true });
    expect(check.remote!.packs).toBeGreaterThan(0);
    expect(check.remote!.pages).toBe(r.remote!.kept.pages);
    expect((await checkRemote(remote)).problems).toEqual([]);
    // Nothing left to collect.
    const again = await cpvJson<GcResult>(a, ['gc', '--all-branches', '--all-tags', '--cloud', '--grace', '0s', '--force']);
    expect(again.remote!.removed).toEqual([]);
    expect(again.cache.removed).toEqual([]);
  });

  it('a fresh clone still pulls v2 and the data, byte for byte', async () => {
    const b = await cloneRepo(origin, join(root, 'b'), 'Bob');
    await remote.join(b);
    await cpvJson(b, ['pull']);
    expect(await b3sum(join(b, 'model.safetensors'))).toBe(v2.slice(3));
    const files = await listFiles(join(b, 'data'));
    expect(files).toEqual(await listFiles(join(a, 'data')));
    for (const f of files) expect(await b3sum(join(b, 'data', f))).toBe(await b3sum(join(a, 'data', f)));
  });

  it('fsck --read-data exits non-zero naming a corrupted cache object; --repair fetches a good copy', async () => {
    await flipByte(cacheFile(v2), 123_456);
    const key = keyOf('files', v2);
    // Same size: only reading the data finds it.
    expect((await cpvJson<FsckResult>(a, ['fsck'])).ok).toBe(true);
    const bad = await cpvJsonResult<ErrorJson>(a, ['fsck', '--read-data']);
    expect(bad.exitCode).toBe(4);
    expect(bad.json.error.code).toBe('INTEGRITY');
    expect(bad.json.error.message).toContain(key);
    expect(bad.json.error.hint).toMatch(/--repair/);
    expect((bad.json.error.data as unknown as FsckResult).problems).toEqual([
      { where: 'cache', kind: 'file', key, oid: v2, reason: 'its content does not hash to its oid' },
    ]);
    const text = await runCpv(a, ['fsck', '--read-data']);
    expect(text.exitCode).toBe(4);
    expect(text.stderr).toContain(`cache file ${key}: its content does not hash to its oid`);

    const fixed = await cpvJson<FsckResult>(a, ['fsck', '--read-data', '--repair']);
    expect(fixed.ok).toBe(true);
    expect(fixed.problems).toEqual([{ where: 'cache', kind: 'file', key, oid: v2, reason: 'its content does not hash to its oid', repaired: true, repair: 'fetched from remote origin' }]);
    expect(await b3sum(cacheFile(v2))).toBe(v2.slice(3));
    expect((await cpvJson<FsckResult>(a, ['fsck', '--read-data', '-r', 'origin'])).problems).toEqual([]);
  });

  it('the repository lock keeps a second writer out; read-only commands run; a stale lock is taken over', async () => {
    const lock = join(a, '.cpv', 'tmp', 'lock');
    let holder: ChildProcess | undefined = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await mkdir(join(a, '.cpv', 'tmp'), { recursive: true });
      await writeFile(lock, JSON.stringify({ format: 'cpv-lock', version: 1, pid: holder.pid, hostname: hostname(), started: new Date().toISOString(), command: 'push', token: '0'.repeat(32) }) + '\n');
      const blocked = await cpvJsonResult<ErrorJson>(a, ['push']);
      expect(blocked.exitCode).toBe(8);
      expect(blocked.json.error).toMatchObject({ code: 'CONFLICT', data: { pid: holder.pid, command: 'push' } });
      expect(blocked.json.error.message).toContain(`pid ${holder.pid}`);
      expect(blocked.json.error.hint).toContain(lock);
      expect((await runCpv(a, ['gc', '--force'])).exitCode).toBe(8);
      for (const readOnly of [['status'], ['fsck'], ['gc', '--dry-run'], ['log']]) expect((await runCpv(a, readOnly)).exitCode, readOnly.join(' ')).toBe(0);
      holder.kill();
      await new Promise((r) => holder!.once('exit', r));
      holder = undefined;
      // The holder is gone: its lock is stale and the next writer takes over.
      expect((await runCpv(a, ['push'])).exitCode).toBe(0);
      expect(existsSync(lock)).toBe(false);
    } finally {
      holder?.kill();
    }
  });

  it('the pre-push hook run by the git push of `cpv push --tags` shares the lock of the cpv that runs it', async () => {
    await cpvJson(a, ['install']);
    await cpvJson(a, ['tag', 'create', 'v2', '-m', 'second']);
    const r = await runCpv(a, ['push', '--tags']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/holds the repository lock/);
    expect(await git(a, ['ls-remote', '--tags', 'origin'])).toContain('refs/tags/v2');
    expect(existsSync(join(a, '.cpv', 'tmp', 'lock'))).toBe(false);
  });
}
