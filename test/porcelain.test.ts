// The model / data / checkpoint workflow, end to end: clone A publishes two versions of a
// model and of its dataset by name, each pair bound by a checkpoint; clone B restores the
// first checkpoint byte for byte, reverts to it as a new commit, compares the experiments;
// a team's artifacts live under the team's own remote prefix; a remote that lost an object
// fails `tag verify` by name, and the pre-push hook refuses a tag whose objects exist
// nowhere. The steps run in order and build on each other, once per kind of remote.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  ArtifactDownloadResult,
  ArtifactInfo,
  ArtifactInitResult,
  ArtifactSummary,
  ArtifactUploadResult,
  ArtifactVersion,
  CheckpointCreateResult,
  CheckpointInfo,
  CheckpointSummary,
  ExpCompareResult,
  ExpRow,
  RevertResult,
  VerifyTagResult,
} from '../packages/core/src/index.js';
import { assertBuilt, childEnv, cpvJson, cpvJsonResult, cpvOk, objectPath, runCpv, useHome, type ErrorJson } from './support/cpv.js';
import { cloneRepo, commitAll, git, makeOrigin, pushGit } from './support/git.js';
import { b3sum, rewriteTensors, writeDataset, writeModel } from './support/model.js';
import { listFiles, makeTempDir, removeTempDir } from './support/fsutil.js';
import { directoryRemote, s3Remote, type RemoteFixture } from './support/remote-fixture.js';
import { s3Config } from './setup/s3-env.js';

const MiB = 1024 * 1024;

describe('porcelain: models, datasets and checkpoints by name through git and a directory remote', () => {
  workflow((root) => directoryRemote(join(root, 'remote')));
});

describe.skipIf(!s3Config())('porcelain: models, datasets and checkpoints by name through git and an S3 remote', () => {
  workflow(() => s3Remote('porcelain', 'ml/cpv'));
});

/** b3sum of the model and of every dataset file, keyed by path relative to the clone. */
async function sums(clone: string): Promise<Record<string, string>> {
  const out: Record<string, string> = { 'models/resnet.safetensors': await b3sum(join(clone, 'models', 'resnet.safetensors')) };
  for (const f of await listFiles(join(clone, 'data', 'train'))) out[`data/train/${f}`] = await b3sum(join(clone, 'data', 'train', ...f.split('/')));
  return out;
}

async function gitResult(cwd: string, args: readonly string[]): Promise<{ exitCode: number; stderr: string }> {
  const r = await execa('git', args, { cwd, env: childEnv(), extendEnv: false, reject: false, stdin: 'ignore' });
  return { exitCode: r.exitCode ?? -1, stderr: String(r.stderr) };
}

function workflow(makeRemote: (root: string) => Promise<RemoteFixture>): void {
  let root: string;
  let origin: string;
  let remote: RemoteFixture;
  let a: string; // Alice: trains and publishes
  let b: string; // Bob: restores
  let v1: Record<string, string>;
  let v2: Record<string, string>;
  let cp1Keys: string[];

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('porcelain');
    useHome(join(root, 'home'));
    origin = await makeOrigin(join(root, 'origin.git'));
    remote = await makeRemote(root);
    a = await cloneRepo(origin, join(root, 'a'), 'Alice');
    await remote.init(a);
    await commitAll(a, 'Initialize cpv');
    await pushGit(a);
  });
  afterAll(async () => {
    await remote?.dispose();
    await removeTempDir(root);
  });

  it('A: registers a model and a dataset by name; bad names and paths are refused', async () => {
    const m = await cpvJson<ArtifactInitResult>(a, ['model', 'init', 'resnet', '--path', 'models/resnet.safetensors', '--description', 'ResNet-50']);
    expect(m).toMatchObject({ kind: 'model', name: 'resnet', path: 'models/resnet.safetensors', created: true, file: '.cpv/registry.yaml' });
    const d = await cpvJson<ArtifactInitResult>(a, ['data', 'init', 'train', '--path', 'data/train']);
    expect(d).toMatchObject({ kind: 'data', name: 'train', path: 'data/train', created: true });
    // The same registration again is a no-op; the same path under another name is refused.
    expect((await cpvJson<ArtifactInitResult>(a, ['model', 'init', 'resnet', '--path', 'models/resnet.safetensors'])).created).toBe(false);
    const clash = await cpvJsonResult<ErrorJson>(a, ['data', 'init', 'other', '--path', 'models/resnet.safetensors']);
    expect(clash.exitCode).not.toBe(0);
    expect(clash.json.error.message).toContain('already registered as model resnet');
    const outside = await runCpv(a, ['model', 'init', 'x', '--path', '../elsewhere']);
    expect(outside.exitCode).not.toBe(0);
    expect(outside.stderr).toContain('is not inside the repository');
    const unknown = await runCpv(a, ['model', 'upload', 'nosuch']);
    expect(unknown.exitCode).not.toBe(0);
    expect(unknown.stderr).toContain('no model named "nosuch"');
    expect(unknown.stderr).toContain('cpv model init nosuch --path PATH');
  });

  it('A: uploads v1 of both with params and metrics, and binds them in checkpoint cp1, published to git', async () => {
    await writeModel(join(a, 'models', 'resnet.safetensors'), { seed: 101, tensors: 16, bytes: 4 * MiB });
    await writeDataset(join(a, 'data', 'train'), { seed: 102, files: 30 });
    await writeFile(join(a, 'params.yaml'), 'lr: 0.001\noptimizer:\n  name: adamw\n  betas: [0.9, 0.999]\n');
    const head = await git(a, ['rev-parse', 'HEAD']);
    const dry = await cpvJson<ArtifactUploadResult>(a, ['model', 'upload', 'resnet', '--dry-run']);
    expect(dry).toMatchObject({ dryRun: true, committed: ['.cpv/registry.yaml', 'models/resnet.safetensors.cpv'] });
    expect(await listFiles(join(a, 'models'))).toEqual(['resnet.safetensors']); // no pointer, no .gitignore
    expect(await git(a, ['rev-parse', 'HEAD'])).toBe(head);
    expect(await remote.keys()).toEqual([]);

    const up = await cpvJson<ArtifactUploadResult>(a, ['model', 'upload', 'resnet', '--params', 'params.yaml', '--metrics', 'accuracy=0.71', '--metrics', 'loss=1.25']);
    expect(up.items).toMatchObject([{ name: 'resnet', path: 'models/resnet.safetensors', type: 'file', status: 'new' }]);
    expect(up.items[0]!.oid).toBe(`b3:${await b3sum(join(a, 'models', 'resnet.safetensors'))}`);
    expect(up.committed).toEqual(['.cpv/registry.yaml', 'models/.gitignore', 'models/resnet.safetensors.cpv']);
    expect(up.push!.uploaded).toBe(1);
    expect(up.push!.bytes).toBe(up.items[0]!.size); // every chunk is new
    expect((await git(a, ['rev-parse', 'HEAD'])).trim()).toBe(up.commit);
    const data = await cpvJson<ArtifactUploadResult>(a, ['data', 'upload', 'train']);
    expect(data.items).toMatchObject([{ name: 'train', type: 'dir', files: 30, status: 'new' }]);

    const cp = await cpvJson<CheckpointCreateResult>(a, ['checkpoint', 'create', 'cp1', '--model', 'resnet', '--data', 'train', '-m', 'baseline', '--meta', 'epochs=3', '--git-push']);
    expect(cp.artifacts.map((x) => [x.kind, x.name, x.path])).toEqual([
      ['data', 'train', 'data/train'],
      ['model', 'resnet', 'models/resnet.safetensors'],
    ]);
    expect(cp.published!.tags).toMatchObject([{ tag: 'cp1', status: 'pushed' }]);
    expect(await git(a, ['ls-remote', 'origin', 'refs/tags/cp1'])).toContain('refs/tags/cp1');
    await pushGit(a);
    v1 = await sums(a);
    cp1Keys = await remote.keys();
  });

  it('A: uploads v2 of both, tagged, and checkpoint cp2; only the changed chunks move', async () => {
    const changed = await rewriteTensors(join(a, 'models', 'resnet.safetensors'), 0.125, 103);
    const up = await cpvJson<ArtifactUploadResult>(a, ['model', 'upload', 'resnet', '--tag', 'v2', '--params', 'lr=0.0005', '--metrics', 'accuracy=0.74', '--metrics', 'loss=1.1', '--git-push']);
    expect(up.items[0]!.status).toBe('modified');
    expect(up.tags).toEqual(['resnet@v2']);
    expect(up.push!.bytes).toBeLessThanOrEqual(changed * 1.05);
    expect(up.push!.dedupBytes).toBeGreaterThan(0);
    expect(up.gitPushed!.refs).toEqual(['HEAD', 'refs/tags/resnet@v2']);
    await writeFile(join(a, 'data', 'train', 'extra.txt'), 'one more sample\n');
    await cpvOk(a, ['data', 'upload', 'train', '--git-push']);
    await cpvOk(a, ['checkpoint', 'create', 'cp2', '--model', 'resnet', '--data', 'train', '--git-push']);
    v2 = await sums(a);
    expect(v2['models/resnet.safetensors']).not.toBe(v1['models/resnet.safetensors']);
    expect(await git(a, ['ls-remote', '--tags', 'origin'])).toMatch(/refs\/tags\/cp2[\s\S]*refs\/tags\/resnet@v2|refs\/tags\/resnet@v2[\s\S]*refs\/tags\/cp2/);

    const list = await cpvJson<{ items: CheckpointSummary[] }>(a, ['checkpoint', 'list']);
    expect(list.items.map((c) => [c.tag, c.models.map((m) => m.name), c.data.map((d) => d.name)])).toEqual([
      ['cp1', ['resnet'], ['train']],
      ['cp2', ['resnet'], ['train']],
    ]);
    const models = await cpvJson<{ items: ArtifactSummary[] }>(a, ['model', 'list']);
    expect(models.items).toMatchObject([{ name: 'resnet', tracked: true, oid: up.items[0]!.oid }]);
    expect(models.items[0]!.tags.sort()).toEqual(['cp1', 'cp2', 'resnet@v2']); // tags of one second list by name
    const versions = await cpvJson<{ items: Array<{ versions: ArtifactVersion[] }> }>(a, ['model', 'list', 'resnet']);
    expect(versions.items[0]!.versions.map((v) => v.metrics)).toEqual([
      { accuracy: 0.74, loss: 1.1 },
      { accuracy: 0.71, loss: 1.25 },
    ]);
  });

  it('B: git checkout cp1 && cpv pull restores v1 of the model and the data byte for byte', async () => {
    b = await cloneRepo(origin, join(root, 'b'), 'Bob');
    await remote.join(b);
    await git(b, ['checkout', '--quiet', 'cp1']);
    await cpvOk(b, ['pull']);
    expect(await sums(b)).toEqual(v1);
    await git(b, ['checkout', '--quiet', 'main']);
    await cpvOk(b, ['pull']);
    expect(await sums(b)).toEqual(v2);
  });

  it('B: model download --version writes an older version beside the workspace, verified, never over it', async () => {
    const r = await cpvJson<ArtifactDownloadResult>(b, ['model', 'download', 'resnet', '--version', 'cp1', '--out', join(root, 'export')]);
    expect(r.items).toMatchObject([{ name: 'resnet', rev: 'cp1', oid: `b3:${v1['models/resnet.safetensors']}` }]);
    expect(await b3sum(join(root, 'export', 'resnet.safetensors'))).toBe(v1['models/resnet.safetensors']);
    const byTag = await cpvJson<ArtifactDownloadResult>(b, ['data', 'download', 'train', '--version', 'cp1', '--out', join(root, 'export')]);
    expect(byTag.items[0]!.files).toBe(30);
    expect((await listFiles(join(root, 'export', 'train'))).length).toBe(30);
    const over = await runCpv(join(b, 'models'), ['model', 'download', 'resnet', '--version', 'cp1']);
    expect(over.exitCode).not.toBe(0);
    expect(over.stderr).toContain('is a tracked path');
    expect(await sums(b)).toEqual(v2);
    const info = await cpvJson<ArtifactInfo>(b, ['model', 'info', 'resnet', '--version', 'v2']);
    expect(info).toMatchObject({ rev: 'resnet@v2', pointer: { params: { lr: 0.0005 }, metrics: { accuracy: 0.74 } } });
    expect(info.tags.sort()).toEqual(['cp2', 'resnet@v2']);
    expect(info.boundWith).toMatchObject([{ tag: 'cp2', kind: 'data', name: 'train' }]);
  });

  it('B: exp show and compare put the params and metrics of the checkpoints side by side', async () => {
    const show = await cpvJson<{ rows: ExpRow[] }>(b, ['exp', 'show', 'cp1', 'cp2']);
    expect(show.rows.map((r) => [r.tag, r.name, r.params.lr, r.params['optimizer.name'], r.metrics.accuracy])).toEqual([
      ['cp1', 'resnet', 0.001, 'adamw', 0.71],
      ['cp2', 'resnet', 0.0005, undefined, 0.74],
    ]);
    const cmp = await cpvJson<ExpCompareResult>(b, ['exp', 'compare', 'cp1', 'cp2']);
    expect(cmp.columns).toEqual(['cp1', 'cp2']);
    expect(cmp.rows.find((r) => r.key === 'accuracy')).toMatchObject({ section: 'metrics', values: [0.71, 0.74], differs: true, delta: [0, 0.03] });
    expect(cmp.rows.find((r) => r.key === 'optimizer.betas.1')).toMatchObject({ section: 'params', values: [0.999, null], differs: true });
    const text = await runCpv(b, ['exp', 'compare', 'cp1', 'cp2']);
    expect(text.stdout).toMatch(/\* metric\s+accuracy\s+0\.71\s+0\.74 \(\+0\.03\)/);
  });

  it('B: checkpoint revert cp1 restores v1 of both as a new commit, leaving history as it was', async () => {
    const before = (await git(b, ['rev-parse', 'HEAD'])).trim();
    const dry = await cpvJson<RevertResult>(b, ['checkpoint', 'revert', 'cp1', '--dry-run']);
    expect(dry.commit).toBeUndefined();
    expect(await sums(b)).toEqual(v2);
    const r = await cpvJson<RevertResult>(b, ['checkpoint', 'revert', 'cp1']);
    expect(r.reverted.map((i) => [i.path, i.changed])).toEqual([
      ['data/train', true],
      ['models/resnet.safetensors', true],
    ]);
    expect(await sums(b)).toEqual(v1);
    expect((await git(b, ['rev-parse', 'HEAD~1'])).trim()).toBe(before);
    expect((await git(b, ['rev-parse', 'HEAD'])).trim()).toBe(r.commit);
    expect(await git(b, ['diff', 'cp1', 'HEAD', '--', 'models/resnet.safetensors.cpv', 'data/train.cpv'])).toBe('');
    expect(await git(b, ['status', '--porcelain'])).toBe('');
    const info = await cpvJson<CheckpointInfo>(b, ['checkpoint', 'info', 'cp1']);
    expect(info.block.meta).toEqual({ epochs: 3 });
    expect(info.artifacts.find((x) => x.kind === 'model')!.pointer.metrics).toEqual({ accuracy: 0.71, loss: 1.25 });
  });

  it('A: a team model lives under the team prefix of the remote, and a clone finds it there', async () => {
    await cpvOk(a, ['team', 'add', 'vision', '--prefix', 'teams/vision']);
    await commitAll(a, 'Team vision and its remote'); // .cpv/config and the registry, for every clone
    await cpvOk(a, ['model', 'init', 'detector', '--team', 'vision', '--path', 'models/detector.safetensors']);
    await writeModel(join(a, 'models', 'detector.safetensors'), { seed: 104, tensors: 4, bytes: 512 * 1024 });
    const before = new Set(await remote.keys());
    const up = await cpvJson<ArtifactUploadResult>(a, ['model', 'upload', 'vision/detector', '--tag', 'v1', '--git-push']);
    expect(up.push!.remote).toBe('vision');
    const added = (await remote.keys()).filter((k) => !before.has(k));
    expect(added.length).toBeGreaterThan(0);
    expect(added.every((k) => k.startsWith('teams/vision/'))).toBe(true);
    const team = await cpvJson<{ items: ArtifactSummary[] }>(a, ['model', 'list', '--team', 'vision']);
    expect(team.items.map((i) => [i.name, i.remote])).toEqual([['vision/detector', 'vision']]);

    const c = await cloneRepo(origin, join(root, 'c'), 'Carol');
    await remote.join(c);
    if (remote.kind === 's3') {
      // A teammate gives the team remote the same keys as the default one.
      for (const key of ['access_key_id', 'secret_access_key'] as const) {
        const cfg = s3Config()!;
        await cpvOk(c, ['remote', 'modify', 'vision', key, key === 'access_key_id' ? cfg.accessKeyId : cfg.secretAccessKey]);
      }
    }
    await cpvOk(c, ['model', 'download', 'vision/detector']);
    expect(await b3sum(join(c, 'models', 'detector.safetensors'))).toBe(await b3sum(join(a, 'models', 'detector.safetensors')));
    expect((await cpvJson<VerifyTagResult>(c, ['tag', 'verify', 'vision/detector@v1'])).remote).toBe('vision');
  });

  it('tag verify fails naming the object a remote lost', async () => {
    expect((await cpvJson<VerifyTagResult>(b, ['tag', 'verify', 'cp1'])).ok).toBe(true);
    const pack = cp1Keys.find((k) => k.startsWith('packs/'))!;
    await remote.remove(pack);
    const lost = await runCpv(b, ['tag', 'verify', 'cp1']);
    expect(lost.exitCode).not.toBe(0);
    expect(lost.stdout + lost.stderr).toContain(pack);
  });

  it('A: with the hooks installed, git push of a checkpoint whose objects exist nowhere is refused', async () => {
    await cpvOk(a, ['install']);
    await rewriteTensors(join(a, 'models', 'resnet.safetensors'), 0.25, 105);
    const up = await cpvJson<ArtifactUploadResult>(a, ['model', 'upload', 'resnet', '--no-push']);
    await cpvOk(a, ['checkpoint', 'create', 'cp3', '--model', 'resnet', '--data', 'train']);
    await rm(objectPath(join(a, '.cpv', 'cache', 'files'), up.items[0]!.oid), { force: true });
    const refused = await gitResult(a, ['push', 'origin', 'cp3']);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain('models/resnet.safetensors');
    expect(await git(a, ['ls-remote', 'origin', 'refs/tags/cp3'])).toBe('');
  });
}
