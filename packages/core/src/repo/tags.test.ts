import { mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gitSync, setIdentity } from '../testing/git-fixture.js';
import { ConflictError, FormatError, NotFoundError, UsageError } from '../errors.js';
import { writeConfigFile } from '../config/config.js';
import { parseVersionBlock } from '../pointer/version-block.js';
import { seededBytes } from '../testing/seeded.js';
import { add } from './add.js';
import { init } from './init.js';
import { openRepo, type Repo } from './repo.js';
import { pushTags } from './sync.js';
import { createTag, listTags, showTag, verifyTag } from './tags.js';

let base: string;
let dir: string;
let remoteDir: string;
let origin: string;
let repo: Repo;

const git = gitSync;

async function put(rel: string, bytes: Uint8Array | string): Promise<void> {
  const abs = path.join(dir, rel);
  await mkdir(path.dirname(abs), { recursive: true });
  await writeFile(abs, bytes);
}

async function expectReject<T>(p: Promise<unknown>, cls: new (...a: never[]) => T): Promise<T> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(cls);
  return err as T;
}

beforeEach(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-tags-')));
  dir = path.join(base, 'work');
  remoteDir = path.join(base, 'remote');
  origin = path.join(base, 'origin.git');
  await mkdir(dir);
  git(base, ['init', '--quiet', '--bare', '--initial-branch=main', origin]);
  git(dir, ['init', '--quiet', '--initial-branch=main']);
  setIdentity(dir, 'Tess Ter', 'tess@example.com');
  git(dir, ['remote', 'add', 'origin', origin]);
  await init({ dir, remote: remoteDir });
  // Small chunks, so modest files have several and directories get nested manifests.
  await writeConfigFile(path.join(dir, '.cpv', 'config.local'), { chunker: { min: 1024, avg: 4096, max: 16384 } });
  git(dir, ['add', '.cpv']);
  git(dir, ['commit', '--quiet', '-m', 'init cpv']);
  repo = await openRepo({ cwd: dir });
  await put('model.bin', seededBytes(1, 60_000));
  await put('data/a.txt', 'alpha');
  await put('data/sub/big.bin', seededBytes(2, 50_000));
  await put('data/empty', '');
  await add(repo, { cwd: dir, paths: ['model.bin'], kind: 'model' });
  await add(repo, { cwd: dir, paths: ['data'], kind: 'data' });
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('createTag', () => {
  it('commits uncommitted pointers and their .gitignore, then tags that commit with the block', async () => {
    git(dir, ['add', 'data.cpv']); // staged but not committed counts as uncommitted too
    const r = await createTag(repo, { cwd: dir, name: 'v1', models: ['model.bin'], data: ['data/'], message: 'first', meta: { epochs: 3 } });
    expect(r.newCommit).toBe(true);
    expect(r.committed).toEqual(['.gitignore', 'data.cpv', 'model.bin.cpv']);
    expect(git(dir, ['log', '-1', '--format=%s']).trim()).toBe('cpv: version v1');
    expect(git(dir, ['status', '--porcelain']).trim()).toBe('');
    expect(git(dir, ['rev-parse', 'v1^{commit}']).trim()).toBe(r.commit);
    expect(git(dir, ['cat-file', '-t', 'v1']).trim()).toBe('tag');
    const parsed = parseVersionBlock(git(dir, ['tag', '-l', '--format=%(contents)', 'v1']), 'v1')!;
    expect(parsed.message).toBe('first');
    expect(parsed.block.meta).toEqual({ epochs: 3 });
    expect(parsed.block.artifacts).toEqual(r.artifacts);
    expect(r.artifacts.map((a) => [a.path, a.kind, a.type])).toEqual([
      ['data', 'data', 'dir'],
      ['model.bin', 'model', 'file'],
    ]);
    expect(r.artifacts[0]!.files).toBe(3);
  });

  it('commits only the pointers: other staged work stays staged and out of the commit', async () => {
    await put('notes.txt', 'work in progress');
    git(dir, ['add', 'notes.txt']);
    const r = await createTag(repo, { cwd: dir, name: 'v1' });
    expect(git(dir, ['show', '--name-only', '--format=', r.commit!]).trim().split('\n').sort()).toEqual(['.gitignore', 'data.cpv', 'model.bin.cpv']);
    expect(git(dir, ['status', '--porcelain']).trim()).toBe('A  notes.txt');
  });

  it('tags HEAD without a commit when the pointers are committed already', async () => {
    git(dir, ['add', '-A']);
    git(dir, ['commit', '--quiet', '-m', 'track']);
    const head = git(dir, ['rev-parse', 'HEAD']).trim();
    const r = await createTag(repo, { cwd: dir, name: 'v1', models: ['model.bin.cpv'] });
    expect(r).toMatchObject({ newCommit: false, committed: [], commit: head });
    expect(r.artifacts.map((a) => a.path)).toEqual(['model.bin']);
  });

  it('binds every tracked path with its pointer kind when no paths are given; the message defaults', async () => {
    const r = await createTag(repo, { cwd: dir, name: 'release/2024-05' });
    expect(r.artifacts.map((a) => [a.path, a.kind])).toEqual([
      ['data', 'data'],
      ['model.bin', 'model'],
    ]);
    expect((await showTag(repo, 'release/2024-05')).message).toBe('Version release/2024-05');
  });

  it('dry run checks everything and writes nothing', async () => {
    const r = await createTag(repo, { cwd: dir, name: 'v1', dryRun: true });
    expect(r).toMatchObject({ dryRun: true, newCommit: true, commit: undefined });
    expect(git(dir, ['tag', '-l']).trim()).toBe('');
    expect(git(dir, ['log', '-1', '--format=%s']).trim()).toBe('init cpv');
  });

  it('refuses when the workspace differs from a pointer, and names it', async () => {
    await put('model.bin', seededBytes(3, 60_000));
    const err = await expectReject(createTag(repo, { cwd: dir, name: 'v1' }), ConflictError);
    expect(err.message).toContain('model.bin');
    expect(err.hint).toContain('cpv add model.bin');
    expect(git(dir, ['tag', '-l']).trim()).toBe('');
    expect(git(dir, ['log', '-1', '--format=%s']).trim()).toBe('init cpv');
  });

  it('refuses an existing tag, an invalid name, bad metadata and a path inside a tracked directory', async () => {
    await createTag(repo, { cwd: dir, name: 'v1' });
    const exists = await expectReject(createTag(repo, { cwd: dir, name: 'v1' }), ConflictError);
    expect(exists.hint).toContain('git tag -d v1');
    git(dir, ['tag', 'plain']);
    await expectReject(createTag(repo, { cwd: dir, name: 'plain' }), ConflictError);
    for (const bad of ['has space', 'a..b', '-x', 'x.lock', 'x~1', '']) await expectReject(createTag(repo, { cwd: dir, name: bad }), UsageError);
    await expectReject(createTag(repo, { cwd: dir, name: 'v9', meta: { 'bad key': 1 } }), UsageError);
    await expectReject(createTag(repo, { cwd: dir, name: 'v9', data: ['data/a.txt'] }), UsageError);
    await expectReject(createTag(repo, { cwd: dir, name: 'v9', models: ['model.bin'], data: ['model.bin'] }), UsageError);
    await expectReject(createTag(repo, { cwd: dir, name: 'v9', models: ['nope.bin'] }), NotFoundError);
  });

  it('refuses content that is not in the cache', async () => {
    const objects = path.join(repo.cache.dir, 'files');
    await rm(objects, { recursive: true, force: true });
    const err = await expectReject(createTag(repo, { cwd: dir, name: 'v1', models: ['model.bin'] }), NotFoundError);
    expect(err.hint).toContain('cpv fetch model.bin');
  });
});

describe('listTags and showTag', () => {
  it('lists only version tags, oldest first, and shows one in full', async () => {
    await createTag(repo, { cwd: dir, name: 'v1', message: 'first line\n\nbody' });
    git(dir, ['tag', '-a', '-m', 'an ordinary release', 'release-notes']);
    git(dir, ['tag', 'lightweight']);
    const list = await listTags(repo);
    expect(list.map((t) => [t.name, t.artifacts, t.subject])).toEqual([['v1', 2, 'first line']]);
    const t = await showTag(repo, 'v1');
    expect(t).toMatchObject({ name: 'v1', message: 'first line\n\nbody', tagger: 'Tess Ter <tess@example.com>' });
    expect(t.commit).toBe(git(dir, ['rev-parse', 'v1^{commit}']).trim());
    expect(t.date).toMatch(/^\d{4}-\d\d-\d\dT/);
    await expectReject(showTag(repo, 'lightweight'), NotFoundError);
    await expectReject(showTag(repo, 'release-notes'), NotFoundError);
    await expectReject(showTag(repo, 'nope'), NotFoundError);
  });

  it('lists a tag with an unreadable block with its reason, and showTag fails naming it', async () => {
    await createTag(repo, { cwd: dir, name: 'v1' });
    const msg = git(dir, ['tag', '-l', '--format=%(contents)', 'v1']).replace('version: 1', 'version: 7');
    await writeFile(path.join(base, 'msg'), msg);
    git(dir, ['tag', '-a', '--cleanup=verbatim', '-F', path.join(base, 'msg'), 'v7']);
    const list = await listTags(repo);
    expect(list.find((t) => t.name === 'v7')?.error).toContain('unsupported version 7');
    const err = await expectReject(showTag(repo, 'v7'), FormatError);
    expect(err.message).toContain('version tag "v7"');
  });
});

describe('verifyTag and pushTags', () => {
  it('push --tags uploads, proves and pushes each tag; verify finds a lost pack', async () => {
    await createTag(repo, { cwd: dir, name: 'v1', message: 'first' });
    const before = await verifyTag(repo, { name: 'v1' });
    expect(before.ok).toBe(false);
    expect(before.missing.map((m) => [m.path, m.what])).toEqual([
      ['data', 'tree'],
      ['model.bin', 'manifest'],
    ]);

    const dry = await pushTags(repo, { dryRun: true });
    expect(dry.tags).toEqual([{ tag: 'v1', status: 'would-push', unavailable: [], missing: [] }]);
    expect(git(dir, ['ls-remote', '--tags', 'origin']).trim()).toBe('');

    const r = await pushTags(repo, {});
    expect(r.tags.map((t) => [t.tag, t.status])).toEqual([['v1', 'pushed']]);
    expect(r.upload.uploaded).toBe(2);
    expect(git(dir, ['ls-remote', '--tags', 'origin', 'v1'])).toContain('refs/tags/v1');

    const ok = await verifyTag(repo, { name: 'v1' });
    expect(ok).toMatchObject({ ok: true, artifacts: 2, missing: [] });
    expect(ok.packs).toBeGreaterThan(0);

    // Lose every pack: each artifact (and the nested manifest of data/sub/big.bin) names one.
    const packs = path.join(remoteDir, 'packs');
    await rename(packs, path.join(base, 'packs-aside'));
    const lost = await verifyTag(repo, { name: 'v1' });
    expect(lost.ok).toBe(false);
    expect(new Set(lost.missing.map((m) => m.what))).toEqual(new Set(['pack']));
    expect(lost.missing.map((m) => m.path)).toEqual(expect.arrayContaining(['data', 'data/sub/big.bin', 'model.bin']));
    expect(lost.missing[0]!.key).toMatch(/^packs\/[0-9a-f]{2}\/[0-9a-f]{62}$/);
    // Pushing again cannot repair records whose packs are gone: the tag is refused.
    const refused = await pushTags(repo, {});
    expect(refused.tags[0]).toMatchObject({ tag: 'v1', status: 'refused' });
    expect(refused.tags[0]!.missing.length).toBeGreaterThan(0);
    await rm(path.join(remoteDir, 'packs'), { recursive: true, force: true });
    await rename(path.join(base, 'packs-aside'), packs);
    expect((await verifyTag(repo, { name: 'v1' })).ok).toBe(true);
  });

  it('refuses a tag whose content is neither cached nor on the remote, and still pushes the others', async () => {
    await createTag(repo, { cwd: dir, name: 'v1', models: ['model.bin'] });
    await put('model.bin', seededBytes(9, 60_000));
    await add(repo, { cwd: dir, paths: ['model.bin'] });
    const v2 = await createTag(repo, { cwd: dir, name: 'v2', models: ['model.bin'] });
    await rm(repo.cache.filePath(v2.artifacts[0]!.oid), { force: true });
    const r = await pushTags(repo, {});
    expect(r.tags.map((t) => [t.tag, t.status])).toEqual([
      ['v1', 'pushed'],
      ['v2', 'refused'],
    ]);
    expect(r.tags[1]!.unavailable).toEqual([{ path: 'model.bin', oid: v2.artifacts[0]!.oid, type: 'file' }]);
    const remoteTags = git(dir, ['ls-remote', '--tags', 'origin']);
    expect(remoteTags).toContain('refs/tags/v1');
    expect(remoteTags).not.toContain('refs/tags/v2');
  });

  it('refuses a tag whose block disagrees with its commit', async () => {
    const v1 = await createTag(repo, { cwd: dir, name: 'v1', models: ['model.bin'] });
    const msg = git(dir, ['tag', '-l', '--format=%(contents)', 'v1']).replace(v1.artifacts[0]!.oid, 'b3:' + 'e'.repeat(64));
    await writeFile(path.join(base, 'msg'), msg);
    git(dir, ['tag', '-a', '--cleanup=verbatim', '-F', path.join(base, 'msg'), 'forged']);
    const r = await pushTags(repo, {});
    const forged = r.tags.find((t) => t.tag === 'forged')!;
    expect(forged.status).toBe('refused');
    expect(forged.error).toContain('but its commit');
    expect(git(dir, ['ls-remote', '--tags', 'origin'])).not.toContain('forged');
  });

  it('has nothing to do without version tags', async () => {
    const r = await pushTags(repo, {});
    expect(r.tags).toEqual([]);
    expect(await readdir(base)).not.toContain('remote');
    expect(await readFile(path.join(dir, '.cpv', 'config'), 'utf8')).toContain(remoteDir);
  });
});
