import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeConfigFile } from '../config/config.js';
import { ConfigError, ConflictError, NotFoundError, UsageError } from '../errors.js';
import { parsePointer } from '../pointer/pointer.js';
import { emptyRegistry, type Registry } from '../registry/registry.js';
import { gitSync as git, setIdentity } from '../testing/git-fixture.js';
import { seededBytes } from '../testing/seeded.js';
import { add } from './add.js';
import { artifactInfo, artifactList, artifactRevert, artifactTag, artifactVersions } from './artifact-history.js';
import { artifactInit, artifactUpload, qualifiedName, selectArtifacts } from './artifacts.js';
import { checkpointCreate, checkpointList, checkpointRevert, isArtifactTag } from './checkpoints.js';
import { artifactDownload, resolveVersion } from './download.js';
import { expCompare, expShow, loadValues } from './experiments.js';
import { init } from './init.js';
import { openRepo, type Repo } from './repo.js';
import { remoteFor, routeItems } from './routing.js';
import { fetch, push } from './sync.js';
import { verifyTag } from './tags.js';
import { teamAdd, teamList } from './teams.js';

let base: string;
let dir: string;
let repo: Repo;

async function put(rel: string, bytes: Uint8Array | string): Promise<void> {
  const abs = path.join(dir, rel);
  await mkdir(path.dirname(abs), { recursive: true });
  await writeFile(abs, bytes);
}

async function rejects<T>(p: Promise<unknown>, cls: new (...a: never[]) => T): Promise<T> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(cls);
  return err as T;
}

async function reopen(): Promise<Repo> {
  repo = await openRepo({ cwd: dir });
  return repo;
}

beforeEach(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-artifacts-')));
  dir = path.join(base, 'work');
  await mkdir(dir);
  git(dir, ['init', '--quiet', '--initial-branch=main']);
  setIdentity(dir, 'Ada', 'ada@example.com');
  await init({ dir, remote: path.join(base, 'remote') });
  await writeConfigFile(path.join(dir, '.cpv', 'config.local'), { chunker: { min: 1024, avg: 4096, max: 16384 } });
  git(dir, ['add', '.cpv']);
  git(dir, ['commit', '--quiet', '-m', 'init cpv']);
  await reopen();
  await put('models/net.bin', seededBytes(1, 40_000));
  await put('data/train/a.txt', 'alpha');
  await put('data/train/b.bin', seededBytes(2, 9_000));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('names and the registry', () => {
  it('qualifies names with a team and refuses contradictions', () => {
    expect(qualifiedName('resnet', undefined)).toBe('resnet');
    expect(qualifiedName('resnet', 'vision')).toBe('vision/resnet');
    expect(qualifiedName('vision/resnet', 'vision')).toBe('vision/resnet');
    expect(() => qualifiedName('nlp/bert', 'vision')).toThrow(UsageError);
    expect(() => qualifiedName('a b', undefined)).toThrow(UsageError);
    expect(() => qualifiedName('x', 'bad/team')).toThrow(UsageError);
  });

  it('selects by name, glob and team, and names what is missing', () => {
    const reg: Registry = { ...emptyRegistry(), models: { 'vision/a': { path: 'a' }, 'vision/b': { path: 'b' }, 'nlp/c': { path: 'c' }, d: { path: 'd' } } };
    expect(selectArtifacts(reg, 'model', []).map((r) => r.name)).toEqual(['d', 'nlp/c', 'vision/a', 'vision/b']);
    expect(selectArtifacts(reg, 'model', ['vision/*']).map((r) => r.name)).toEqual(['vision/a', 'vision/b']);
    expect(selectArtifacts(reg, 'model', [], 'nlp').map((r) => [r.name, r.team])).toEqual([['nlp/c', 'nlp']]);
    expect(selectArtifacts(reg, 'model', ['a'], 'vision').map((r) => r.path)).toEqual(['a']);
    expect(() => selectArtifacts(reg, 'model', ['zzz'])).toThrow(/no model named "zzz"/);
    expect(() => selectArtifacts(reg, 'model', ['x/*'])).toThrow(/no model name matches "x\/\*"/);
    expect(() => selectArtifacts(reg, 'data', ['d'])).toThrow(NotFoundError);
  });

  it('init registers, is idempotent, and refuses clashes and paths outside the repository', async () => {
    const r = await artifactInit(repo, { cwd: path.join(dir, 'models'), kind: 'model', name: 'net', path: 'net.bin', team: 'vision', description: 'a net' });
    expect(r).toMatchObject({ name: 'vision/net', team: 'vision', path: 'models/net.bin', created: true });
    expect(await readFile(path.join(dir, '.cpv', 'registry.yaml'), 'utf8')).toContain('vision/net:\n    path: models/net.bin\n    description: a net');
    expect((await artifactInit(repo, { cwd: dir, kind: 'model', name: 'vision/net', path: 'models/net.bin' })).created).toBe(false);
    await rejects(artifactInit(repo, { cwd: dir, kind: 'model', name: 'vision/net', path: 'models/other.bin' }), ConflictError);
    await rejects(artifactInit(repo, { cwd: dir, kind: 'data', name: 'net', path: 'models/net.bin' }), ConflictError);
    await rejects(artifactInit(repo, { cwd: dir, kind: 'data', name: 'out', path: '../x' }), UsageError);
    await rejects(artifactInit(repo, { cwd: dir, kind: 'data', name: 'c', path: '.cpv/cache' }), UsageError);
    await rejects(artifactInit(repo, { cwd: dir, kind: 'data', name: 'p', path: 'models/net.bin.cpv' }), UsageError);
    const dry = await artifactInit(repo, { cwd: dir, kind: 'data', name: 'train', path: 'data/train', dryRun: true });
    expect(dry.created).toBe(true);
    expect(await readFile(path.join(dir, '.cpv', 'registry.yaml'), 'utf8')).not.toContain('train');
  });
});

describe('upload, versions, tags, download, revert', () => {
  beforeEach(async () => {
    await artifactInit(repo, { cwd: dir, kind: 'model', name: 'net', path: 'models/net.bin' });
    await artifactInit(repo, { cwd: dir, kind: 'data', name: 'train', path: 'data/train' });
  });

  it('a dry run writes nothing: no pointer, no commit, no cache object', async () => {
    const head = git(dir, ['rev-parse', 'HEAD']);
    const r = await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], dryRun: true, tag: 'v1' });
    expect(r).toMatchObject({ dryRun: true, tags: ['net@v1'], items: [{ name: 'net', status: 'new' }] });
    expect(r.push).toBeUndefined();
    expect(git(dir, ['rev-parse', 'HEAD'])).toBe(head);
    await expect(readFile(path.join(dir, 'models', 'net.bin.cpv'))).rejects.toThrow();
    expect(await repo.cache.hasFile(r.items[0]!.oid)).toBe(false);
    expect(git(dir, ['tag'])).toBe('');
  });

  it('upload adds, commits pointer and registry, pushes, tags NAME@TAG; params replace, metrics drop with new content', async () => {
    const r = await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], tag: 'v1', params: { lr: 0.1, 'opt.name': 'sgd' }, metrics: { acc: 0.5 } });
    expect(r.committed).toEqual(['.cpv/registry.yaml', 'models/.gitignore', 'models/net.bin.cpv']);
    expect(r.push).toMatchObject({ uploaded: 1, remote: 'origin', remotes: ['origin'] });
    expect(git(dir, ['log', '-1', '--format=%s']).trim()).toBe('cpv: upload net');
    expect(git(dir, ['tag']).trim()).toBe('net@v1');
    expect(git(dir, ['status', '--porcelain', '--', 'models', '.cpv'])).toBe('');
    const pointer = parsePointer(await readFile(path.join(dir, 'models', 'net.bin.cpv'), 'utf8'), 'models/net.bin.cpv');
    expect(pointer).toMatchObject({ kind: 'model', name: 'net', params: { lr: 0.1, 'opt.name': 'sgd' }, metrics: { acc: 0.5 } });

    // Unchanged content, new metrics: params kept, metrics replaced.
    await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], metrics: { acc: 0.6 } });
    let p = parsePointer(await readFile(path.join(dir, 'models', 'net.bin.cpv'), 'utf8'), 'models/net.bin.cpv');
    expect([p.params, p.metrics]).toEqual([{ lr: 0.1, 'opt.name': 'sgd' }, { acc: 0.6 }]);
    // New content without values: the old ones described the old content and go.
    await put('models/net.bin', seededBytes(3, 40_000));
    await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], tag: 'v2' });
    p = parsePointer(await readFile(path.join(dir, 'models', 'net.bin.cpv'), 'utf8'), 'models/net.bin.cpv');
    expect([p.params, p.metrics]).toEqual([undefined, undefined]);

    const versions = await artifactVersions(repo, { kind: 'model', names: ['net'] });
    expect(versions[0]!.versions.map((v) => [v.tags, v.metrics])).toEqual([
      [['net@v2'], undefined],
      [[], { acc: 0.6 }],
      [['net@v1'], { acc: 0.5 }],
    ]);
    await rejects(artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], tag: 'v2' }), ConflictError);
    expect(await resolveVersion(repo, 'net', 'v1')).toMatchObject({ rev: 'net@v1' });
    expect((await resolveVersion(repo, 'net', 'HEAD~1')).rev).toBe('HEAD~1');
    await rejects(resolveVersion(repo, 'net', 'v9'), NotFoundError);
  });

  it('upload refuses a registered path that does not exist, and bad values', async () => {
    await artifactInit(repo, { cwd: dir, kind: 'model', name: 'ghost', path: 'models/ghost.bin' });
    const e = await rejects(artifactUpload(repo, { cwd: dir, kind: 'model', names: ['ghost'] }), NotFoundError);
    expect(e.message).toContain('models/ghost.bin (model ghost) does not exist');
    await rejects(artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], params: { 'bad key': 1 } }), UsageError);
    await rejects(artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], metrics: { acc: Number.NaN } }), UsageError);
  });

  it('download writes an older version to --out, verified, and never over a tracked path', async () => {
    const v1 = await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], tag: 'v1' });
    await artifactUpload(repo, { cwd: dir, kind: 'data', names: ['train'], tag: 'v1' });
    await put('models/net.bin', seededBytes(4, 40_000));
    await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], tag: 'v2' });
    const out = path.join(base, 'out');
    const r = await artifactDownload(repo, { cwd: dir, kind: 'model', names: ['net'], version: 'v1', out });
    expect(r.items[0]).toMatchObject({ rev: 'net@v1', oid: v1.items[0]!.oid, dest: '../out/net.bin' });
    expect(Buffer.compare(await readFile(path.join(out, 'net.bin')), Buffer.from(seededBytes(1, 40_000)))).toBe(0);
    const d = await artifactDownload(repo, { cwd: dir, kind: 'data', names: ['train'], version: 'v1', out });
    expect(d.items[0]!.files).toBe(2);
    expect(await readFile(path.join(out, 'train', 'a.txt'), 'utf8')).toBe('alpha');
    await rejects(artifactDownload(repo, { cwd: dir, kind: 'model', names: ['net'], version: 'v1', out }), ConflictError); // exists
    await artifactDownload(repo, { cwd: dir, kind: 'model', names: ['net'], version: 'v1', out, force: true });
    const over = await rejects(artifactDownload(repo, { cwd: path.join(dir, 'models'), kind: 'model', names: ['net'], version: 'v1' }), ConflictError);
    expect(over.message).toContain('models/net.bin is a tracked path');
    expect(Buffer.compare(await readFile(path.join(dir, 'models', 'net.bin')), Buffer.from(seededBytes(4, 40_000)))).toBe(0);
  });

  it('tag, info and revert find versions by NAME@TAG; revert is a new commit', async () => {
    await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], metrics: { acc: 0.7 } });
    await artifactUpload(repo, { cwd: dir, kind: 'data', names: ['train'] });
    const tagged = await artifactTag(repo, { cwd: dir, kind: 'model', names: ['net'], tag: 'prod' });
    expect(tagged.map((t) => t.tag)).toEqual(['net@prod']);
    await checkpointCreate(repo, { cwd: dir, tag: 'exp1', models: ['net'], data: ['train'], meta: { owner: 'ada' } });
    await put('models/net.bin', seededBytes(5, 40_000));
    await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'] });

    const info = await artifactInfo(repo, { kind: 'model', name: 'net', version: 'prod' });
    // Tags made within one second list in name order: compare as sets.
    expect(info).toMatchObject({ rev: 'net@prod', pointer: { metrics: { acc: 0.7 } } });
    expect(info.tags.sort()).toEqual(['exp1', 'net@prod']);
    expect(info.boundWith).toMatchObject([{ tag: 'exp1', kind: 'data', name: 'train', path: 'data/train' }]);
    const head = await artifactInfo(repo, { kind: 'model', name: 'net' });
    expect(head.tags).toEqual([]);

    const before = git(dir, ['rev-parse', 'HEAD']).trim();
    const [r] = await artifactRevert(repo, { cwd: dir, kind: 'model', names: ['net'], to: 'prod' });
    expect(r!.reverted.map((i) => [i.path, i.changed])).toEqual([['models/net.bin', true]]);
    expect(git(dir, ['rev-parse', 'HEAD~1']).trim()).toBe(before);
    expect(Buffer.compare(await readFile(path.join(dir, 'models', 'net.bin')), Buffer.from(seededBytes(1, 40_000)))).toBe(0);

    const list = await artifactList(repo, { kind: 'model' });
    expect(list).toMatchObject([{ name: 'net', tracked: true }]);
    expect(list[0]!.tags.sort()).toEqual(['exp1', 'net@prod']);
  });

  it('checkpoints bind models and data; per-artifact tags are not listed as checkpoints', async () => {
    await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], tag: 'v1' });
    await artifactUpload(repo, { cwd: dir, kind: 'data', names: ['train'] });
    await rejects(checkpointCreate(repo, { cwd: dir, tag: 'empty', models: [], data: [] }), UsageError);
    await rejects(checkpointCreate(repo, { cwd: dir, tag: 'bad', models: ['nope'], data: [] }), NotFoundError);
    const dry = await checkpointCreate(repo, { cwd: dir, tag: 'exp1', models: ['net'], data: ['train'], dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(git(dir, ['tag', '-l', 'exp1'])).toBe('');
    await checkpointCreate(repo, { cwd: dir, tag: 'exp1', models: ['net'], data: ['train'] });
    const list = await checkpointList(repo);
    expect(list.map((c) => [c.tag, c.models.map((m) => m.name), c.data.map((d) => d.name)])).toEqual([['exp1', ['net'], ['train']]]);
    expect(isArtifactTag({ name: 'net@v1', block: { version: 1, artifacts: [{ name: 'net', kind: 'model', path: 'm', type: 'file', oid: 'b3:' + '0'.repeat(64), size: 1 }] } })).toBe(true);
    expect(isArtifactTag({ name: 'other@v1', block: { version: 1, artifacts: [{ name: 'net', kind: 'model', path: 'm', type: 'file', oid: 'b3:' + '0'.repeat(64), size: 1 }] } })).toBe(false);
    expect(await checkpointList(repo, { team: 'vision' })).toEqual([]);
  });
});

describe('experiments', () => {
  it('loadValues reads key=value with types, and flattens YAML and JSON files', async () => {
    await put('params.yaml', 'lr: 0.001\nopt:\n  name: adam\n  betas: [0.9, 0.999]\nwarmup: true\n');
    await put('metrics.json', '{"acc": 0.93, "loss": {"train": 0.2, "val": 0.3}}');
    expect(await loadValues(dir, ['params.yaml', 'epochs=10', 'tag=abc', 'flag=false', 'lr=1e-4'])).toEqual({
      lr: 1e-4,
      'opt.name': 'adam',
      'opt.betas.0': 0.9,
      'opt.betas.1': 0.999,
      warmup: true,
      epochs: 10,
      tag: 'abc',
      flag: false,
    });
    expect(await loadValues(dir, ['metrics.json'])).toEqual({ acc: 0.93, 'loss.train': 0.2, 'loss.val': 0.3 });
    await put('bad.yaml', 'a: [1\n');
    await expect(loadValues(dir, ['bad.yaml'])).rejects.toThrow(/bad\.yaml: invalid YAML/);
    await put('list.json', '[1,2]');
    await expect(loadValues(dir, ['list.json'])).rejects.toThrow(/expected a mapping/);
    await expect(loadValues(dir, ['missing.yaml'], 'metrics')).rejects.toThrow(/--metrics missing\.yaml: no such file/);
  });

  it('show and compare read params and metrics from the pointers of each tagged commit', async () => {
    await artifactInit(repo, { cwd: dir, kind: 'model', name: 'net', path: 'models/net.bin' });
    await artifactInit(repo, { cwd: dir, kind: 'data', name: 'train', path: 'data/train' });
    await artifactUpload(repo, { cwd: dir, kind: 'data', names: ['train'], push: false });
    await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], push: false, params: { lr: 0.1, bs: 32 }, metrics: { acc: 0.8 } });
    await checkpointCreate(repo, { cwd: dir, tag: 'a', models: ['net'], data: ['train'] });
    await put('models/net.bin', seededBytes(6, 40_000));
    await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], push: false, params: { lr: 0.05, bs: 32 }, metrics: { acc: 0.85, f1: 0.7 } });
    await checkpointCreate(repo, { cwd: dir, tag: 'b', models: ['net'], data: ['train'] });

    const rows = await expShow(repo);
    expect(rows.map((r) => [r.tag, r.name, r.params, r.metrics])).toEqual([
      ['a', 'net', { bs: 32, lr: 0.1 }, { acc: 0.8 }],
      ['b', 'net', { bs: 32, lr: 0.05 }, { acc: 0.85, f1: 0.7 }],
    ]);
    const cmp = await expCompare(repo, { tags: ['a', 'b'] });
    expect(cmp.columns).toEqual(['a', 'b']);
    expect(cmp.rows).toEqual([
      { section: 'params', key: 'bs', values: [32, 32], differs: false },
      { section: 'params', key: 'lr', values: [0.1, 0.05], differs: true },
      { section: 'metrics', key: 'acc', values: [0.8, 0.85], differs: true, delta: [0, 0.05] },
      { section: 'metrics', key: 'f1', values: [null, 0.7], differs: true },
    ]);
    await rejects(expCompare(repo, { tags: ['a'] }), UsageError);
    await rejects(expShow(repo, { tags: ['nope'] }), NotFoundError);
  });
});

describe('teams route to their own remote', () => {
  it('team add --prefix creates the team remote; uploads of team/name go there, others to the default', async () => {
    const t = await teamAdd(repo, { team: 'vision', prefix: 'teams/vision' });
    expect(t).toMatchObject({ team: 'vision', entry: { remote: 'vision' }, createdRemote: { name: 'vision', url: `${path.join(base, 'remote')}/teams/vision` } });
    await reopen();
    await artifactInit(repo, { cwd: dir, kind: 'model', name: 'net', team: 'vision', path: 'models/net.bin' });
    await artifactInit(repo, { cwd: dir, kind: 'data', name: 'train', path: 'data/train' });
    const m = await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['vision/net'] });
    expect(m.push).toMatchObject({ remote: 'vision', uploaded: 1 });
    expect(m.committed).not.toContain('.cpv/config'); // the new remote: reported, for the user to commit
    expect(m.configModified).toBe(true);
    const d = await artifactUpload(repo, { cwd: dir, kind: 'data', names: ['train'] });
    expect(d.push!.remote).toBe('origin');
    // One push of everything splits by team; an explicit remote overrides routing.
    const all = await push(repo, { cwd: dir, targets: [], dryRun: true });
    expect(all.remotes.sort()).toEqual(['origin', 'vision']);
    const explicit = await push(repo, { cwd: dir, targets: [], remote: 'origin', dryRun: true });
    expect(explicit.remotes).toEqual(['origin']);
    expect(await teamList(repo)).toEqual([{ team: 'vision', remote: 'vision', models: 1, data: 0 }]);
  });

  it('routing names a team remote that is not configured, and plain names go to the default', async () => {
    const reg: Registry = { ...emptyRegistry(), teams: { nlp: { remote: 'nlp-store' } } };
    expect(remoteFor(reg, 'nlp/bert', undefined)).toBe('nlp-store');
    expect(remoteFor(reg, 'nlp/bert', 'backup')).toBe('backup');
    expect(remoteFor(reg, 'bert', undefined)).toBeUndefined();
    expect(remoteFor(reg, 'vision/x', undefined)).toBeUndefined();
    await writeFile(path.join(dir, '.cpv', 'registry.yaml'), 'version: 1\nteams:\n  nlp:\n    remote: nlp-store\n');
    const e = await rejects(routeItems(repo, undefined, [{ path: 'models/bert', name: 'nlp/bert' }]), ConfigError);
    expect(e.message).toContain('remote "nlp-store" is not configured here');
    expect(await routeItems(repo, undefined, [])).toEqual([{ remote: undefined, items: [] }]);
    await rejects(teamAdd(repo, { team: 'x', remote: 'nope' }), ConfigError);
    await rejects(teamAdd(repo, { team: 'x', prefix: '../up' }), UsageError);
  });
});

describe('add keeps params and metrics with unchanged content only', () => {
  it('drops them when the content changes and no new ones are given', async () => {
    await add(repo, { cwd: dir, paths: ['models/net.bin'], params: { a: 1 } });
    await add(repo, { cwd: dir, paths: ['models/net.bin'] });
    expect(parsePointer(await readFile(path.join(dir, 'models', 'net.bin.cpv'), 'utf8'), 'net.bin.cpv').params).toEqual({ a: 1 });
    await put('models/net.bin', 'changed');
    await add(repo, { cwd: dir, paths: ['models/net.bin'] });
    expect(parsePointer(await readFile(path.join(dir, 'models', 'net.bin.cpv'), 'utf8'), 'net.bin.cpv').params).toBeUndefined();
  });
});

describe('what must not happen', () => {
  beforeEach(async () => {
    await artifactInit(repo, { cwd: dir, kind: 'model', name: 'net', path: 'models/net.bin' });
    await artifactInit(repo, { cwd: dir, kind: 'data', name: 'train', path: 'data/train' });
  });

  it('a download never replaces the repository, the current directory, a file given as --out, or a git repository', async () => {
    await artifactUpload(repo, { cwd: dir, kind: 'data', names: ['train'], tag: 'v1' });
    // The dataset's base name is "train": an --out whose "train" is the current directory.
    const inside = path.join(dir, 'data', 'train');
    const e1 = await rejects(artifactDownload(repo, { cwd: inside, kind: 'data', names: ['train'], version: 'v1', out: '..', force: true }), UsageError);
    expect(e1.message).toContain('holds the repository or the current directory');
    await put('notadir', 'x');
    const e2 = await rejects(artifactDownload(repo, { cwd: dir, kind: 'data', names: ['train'], version: 'v1', out: 'notadir' }), UsageError);
    expect(e2.message).toContain('is not a directory');
    const other = path.join(base, 'other', 'train');
    await mkdir(path.join(other, '.git'), { recursive: true });
    await rejects(artifactDownload(repo, { cwd: dir, kind: 'data', names: ['train'], version: 'v1', out: path.dirname(other), force: true }), UsageError);
    expect(await readFile(path.join(dir, 'data', 'train', 'a.txt'), 'utf8')).toBe('alpha');
    if (process.platform === 'linux') {
      await rejects(artifactDownload(repo, { cwd: dir, kind: 'data', names: ['train'], version: 'v1', out: '/proc/cpv-nope' }), UsageError);
    }
  });

  it('versions resolve NAME@TAG and checkpoints as tags, never as a branch of the same name', async () => {
    await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], tag: 'v1' });
    await artifactUpload(repo, { cwd: dir, kind: 'data', names: ['train'] });
    await checkpointCreate(repo, { cwd: dir, tag: 'cp', models: ['net'], data: ['train'] });
    const tagged = git(dir, ['rev-parse', 'HEAD']).trim();
    await put('models/net.bin', seededBytes(7, 40_000));
    await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'] });
    // Branches named like the tags, on the newer commit.
    git(dir, ['branch', 'net@v1']);
    git(dir, ['branch', 'cp']);
    expect((await resolveVersion(repo, 'net', 'v1')).commit).toBe(git(dir, ['rev-parse', 'refs/tags/net@v1^{commit}']).trim());
    const r = await checkpointRevert(repo, { cwd: dir, tag: 'cp' });
    expect(r.rev).toBe('cp');
    expect(r.revCommit).toBe(tagged);
    expect(Buffer.compare(await readFile(path.join(dir, 'models', 'net.bin')), Buffer.from(seededBytes(1, 40_000)))).toBe(0);
  });

  it('one name is a model or a dataset, never both', async () => {
    const e = await rejects(artifactInit(repo, { cwd: dir, kind: 'data', name: 'net', path: 'data/other' }), ConflictError);
    expect(e.message).toContain('already the name of a model');
  });

  it('a bad tag, a missing path, or --no-push with --git-push leave nothing behind', async () => {
    const head = git(dir, ['rev-parse', 'HEAD']);
    await rejects(artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], tag: 'bad..tag' }), UsageError);
    await rejects(artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], message: '-----BEGIN CPV VERSION-----' }), UsageError);
    await rejects(artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'], push: false, gitPush: 'origin' }), UsageError);
    await artifactInit(repo, { cwd: dir, kind: 'model', name: 'ghost', path: 'models/ghost.bin' });
    await rejects(artifactUpload(repo, { cwd: dir, kind: 'model', names: [] }), NotFoundError); // net exists, ghost does not
    expect(git(dir, ['rev-parse', 'HEAD'])).toBe(head);
    await expect(readFile(path.join(dir, 'models', 'net.bin.cpv'))).rejects.toThrow();
    await expect(readFile(path.join(dir, 'models', '.gitignore'))).rejects.toThrow();
  });

  it('uncommitted config edits are reported, not committed', async () => {
    await writeConfigFile(path.join(dir, '.cpv', 'config'), { ...(await import('yaml')).parse(await readFile(path.join(dir, '.cpv', 'config'), 'utf8')), core: { jobs: 3 } });
    const r = await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['net'] });
    expect(r.committed).not.toContain('.cpv/config');
    expect(r.configModified).toBe(true);
    expect(git(dir, ['status', '--porcelain', '.cpv/config'])).toContain('.cpv/config');
  });
});

describe('routing follows the registry, whatever the pointer says', () => {
  it('a plain add of a registered path records its name; push, tag verify and fetch all use the team remote', async () => {
    await teamAdd(repo, { team: 'vision', prefix: 'teams/vision' });
    await reopen();
    // The name equals the path: the case a pointer-name heuristic gets wrong.
    await put('vision/det', seededBytes(8, 30_000));
    await artifactInit(repo, { cwd: dir, kind: 'model', name: 'vision/det', path: 'vision/det' });
    const added = await add(repo, { cwd: dir, paths: ['vision/det'] });
    const p = parsePointer(await readFile(path.join(dir, 'vision', 'det.cpv'), 'utf8'), 'det.cpv');
    expect([p.name, p.kind]).toEqual(['vision/det', 'model']);
    await rejects(add(repo, { cwd: dir, paths: ['vision/det'], name: 'other' }), UsageError);
    const up = await artifactUpload(repo, { cwd: dir, kind: 'model', names: ['vision/det'], tag: 'v1' });
    expect(up.push!.remote).toBe('vision');
    const v = await verifyTag(repo, { name: 'vision/det@v1' });
    expect([v.ok, v.remote]).toEqual([true, 'vision']);
    // An empty cache gets it back from the team remote.
    await rm(path.join(dir, '.cpv', 'cache'), { recursive: true });
    await reopen();
    await repo.cache.init();
    const f = await fetch(repo, { cwd: dir, targets: ['vision/det'] });
    expect([f.remote, f.files]).toEqual(['vision', 1]);
    expect(await repo.cache.hasFile(added.items[0]!.oid)).toBe(true);
  });

  it('team add refuses to move a team that has artifacts, unless forced', async () => {
    await artifactInit(repo, { cwd: dir, kind: 'model', name: 'vision/net', path: 'models/net.bin' });
    const e = await rejects(teamAdd(repo, { team: 'vision', prefix: 'teams/vision' }), ConflictError);
    expect(e.message).toContain('team vision already has 1 artifact(s) (vision/net)');
    await reopen();
    expect(repo.config.remotes.vision).toBeUndefined(); // nothing was created
    await teamAdd(repo, { team: 'vision', prefix: 'teams/vision', force: true });
    await reopen();
    expect((await teamAdd(repo, { team: 'vision', description: 'image models' })).entry).toEqual({ remote: 'vision', description: 'image models' });
  });
});
