// The acceptance test of cpv: two people share a model and a dataset through git and
// a cpv remote, version the model, and get byte-identical, deduplicated copies. The
// steps run in order and build on each other. The whole journey runs once over a
// directory remote and once over an S3 remote (./support/remote-fixture.ts).
import { appendFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  cpvJson,
  objectPath,
  readPointerFile,
  useHome,
  type AddJson,
  type DiffJson,
  type PullJson,
  type PushJson,
  type StatusJson,
} from './support/cpv.js';
import { cloneRepo, commitAll, gitDirty, isIgnored, makeOrigin, pullGit, pushGit } from './support/git.js';
import { b3sum, randomBytes, rewriteTensors, writeDataset, writeModel, type ModelInfo } from './support/model.js';
import { listFiles, makeTempDir, removeTempDir, snapshotTree } from './support/fsutil.js';
import { directoryRemote, s3Remote, type RemoteFixture } from './support/remote-fixture.js';
import { s3Config } from './setup/s3-env.js';

const KiB = 1024;
const MiB = 1024 * KiB;

// Dedup bound for a small in-place change (v2): a push may upload at most 15% more
// chunk bytes than the bytes that changed (room for chunks that straddle the edge of a
// rewritten tensor), and the remote may grow by that plus MANIFEST_ALLOWANCE for the
// new remote manifest (~512 chunk entries of ~90 bytes for a 32 MiB file at the 64 KiB
// average chunk) and the new pack's trailer index.
const DEDUP_RATIO = 1.15;
const MANIFEST_ALLOWANCE = 64 * KiB;

// What a remote holds after a push: its marker, packs, manifests and trees (docs/format.md).
const REMOTE_LAYOUT = /^(cpv-remote\.json|(packs|pages|manifests|trees)\/[0-9a-f]{2}\/[0-9a-f]{62})$/;

describe('journey: two clones share a model and a dataset through git and a directory remote', () => {
  journey((root) => directoryRemote(join(root, 'remote')));
});

describe.skipIf(!s3Config())('journey: two clones share a model and a dataset through git and an S3 remote', () => {
  journey(() => s3Remote('journey', 'team/cpv'));
});

/** The journey's steps, over the remote that `makeRemote` sets up inside the test's temp dir. */
function journey(makeRemote: (root: string) => Promise<RemoteFixture>): void {
  let root: string;
  let origin: string;
  let remote: RemoteFixture;
  let a: string; // Alice's clone
  let b: string; // Bob's clone
  let model: ModelInfo;
  let dataset: string[];
  let datasetBytes: number;
  const sums = new Map<string, string>(); // A's b3sums: model and every dataset file
  let v1Oid: string;
  let v2Oid: string;
  let changedV2: number;

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('journey');
    useHome(join(root, 'home'));
    origin = await makeOrigin(join(root, 'origin.git'));
    remote = await makeRemote(root);
    a = await cloneRepo(origin, join(root, 'a'), 'Alice');
  });
  afterAll(async () => {
    await remote?.dispose();
    await removeTempDir(root);
  });

  it('A: init with a remote, add a 32 MiB model and a 200-file dataset, commit, push', async () => {
    const init = await remote.init(a);
    expect(init).toMatchObject({ git: true, created: ['.cpv/config', '.cpv/.gitignore'] });

    model = await writeModel(join(a, 'model.safetensors'), { seed: 1, tensors: 64, bytes: 32 * MiB });
    expect(model.tensors).toHaveLength(64);
    dataset = await writeDataset(join(a, 'data'), { seed: 2, files: 200 });
    expect(dataset).toHaveLength(200);
    datasetBytes = 0;
    for (const p of dataset) {
      const file = join(a, 'data', ...p.split('/'));
      datasetBytes += (await stat(file)).size;
      sums.set(`data/${p}`, await b3sum(file));
    }
    v1Oid = `b3:${await b3sum(join(a, 'model.safetensors'))}`;
    sums.set('model.safetensors', v1Oid.slice(3));

    const addModel = await cpvJson<AddJson>(a, ['add', 'model.safetensors', '--kind', 'model', '--name', 'tiny-llm', '--meta', 'epoch=1']);
    expect(addModel.items).toEqual([
      { path: 'model.safetensors', pointerPath: 'model.safetensors.cpv', type: 'file', oid: v1Oid, size: model.size, status: 'new', storedBytes: model.size },
    ]);
    const addData = await cpvJson<AddJson>(a, ['add', 'data', '--kind', 'data']);
    expect(addData.items).toHaveLength(1);
    expect(addData.items[0]).toMatchObject({ path: 'data', pointerPath: 'data.cpv', type: 'dir', size: datasetBytes, files: 200, status: 'new', storedBytes: datasetBytes });
    expect(addData.items[0]!.oid).toMatch(/^b3:[0-9a-f]{64}$/);

    // Pointers: the file oid is exactly b3sum of the file.
    const pm = await readPointerFile(join(a, 'model.safetensors.cpv'));
    expect(pm).toEqual({ version: '1', kind: 'model', name: 'tiny-llm', path: 'model.safetensors', type: 'file', oid: v1Oid, size: String(model.size), 'meta.epoch': '1' });
    const pd = await readPointerFile(join(a, 'data.cpv'));
    expect(pd).toEqual({ version: '1', kind: 'data', path: 'data', type: 'dir', oid: addData.items[0]!.oid, size: String(datasetBytes), files: '200' });

    // git sees pointers and config, never the data or the cache.
    const gitignore = (await readFile(join(a, '.gitignore'), 'utf8')).split('\n');
    expect(gitignore).toContain('/model.safetensors');
    expect(gitignore).toContain('/data');
    expect(await isIgnored(a, 'model.safetensors')).toBe(true);
    expect(await isIgnored(a, 'data/train/shard-2/class-0/sample-0002.bin')).toBe(true);
    expect(await isIgnored(a, 'model.safetensors.cpv')).toBe(false);
    expect(await gitDirty(a)).toEqual(['.cpv/.gitignore', '.cpv/config', '.gitignore', 'data.cpv', 'model.safetensors.cpv']);

    await commitAll(a, 'Add model v1 and dataset');
    await pushGit(a);

    const push = await cpvJson<PushJson>(a, ['push', '-j', '4']);
    // Random content: no chunk repeats, so every byte is uploaded exactly once.
    expect(push).toMatchObject({ remote: 'origin', upToDate: 0, uploaded: 2, files: 201, bytes: model.size + datasetBytes, dedupBytes: 0 });
    const size = await remote.bytes();
    // wireBytes counts packs, manifests and trees; the remote also has its marker file.
    expect(push.wireBytes).toBe(size - (await remote.size('cpv-remote.json')));
    // Overhead of packs' trailers, manifests and the tree index stays small.
    expect(size - push.bytes).toBeLessThan(256 * KiB);
    // Nothing half-written is left, and nothing but the layout's objects was written.
    expect(await remote.leftovers()).toEqual([]);
    const keys = await remote.keys();
    expect(keys.filter((k) => !REMOTE_LAYOUT.test(k))).toEqual([]);
    // The model's manifest and the dataset's tree index, under their oids.
    expect(keys).toContain(objectPath('manifests', v1Oid));
    expect(keys.filter((k) => k.startsWith('trees/'))).toEqual([objectPath('trees', addData.items[0]!.oid)]);

    // A second push moves nothing.
    const again = await cpvJson<PushJson>(a, ['push']);
    expect(again).toMatchObject({ upToDate: 2, uploaded: 0, bytes: 0, files: 0 });
    expect(await remote.bytes()).toBe(size);
  });

  it('B: a fresh clone pulls byte-identical content', async () => {
    b = await cloneRepo(origin, join(root, 'b'), 'Bob');
    await remote.join(b);
    const pull = await cpvJson<PullJson>(b, ['pull'], { env: { CPV_JOBS: '2' } });
    expect(pull.fetch).toMatchObject({ remote: 'origin', files: 201, bytes: model.size + datasetBytes, reusedBytes: 0 });
    const byPath = Object.fromEntries(pull.checkout.items.map((i) => [i.path, i]));
    expect(byPath['model.safetensors']).toMatchObject({ created: 1, updated: 0, deleted: 0 });
    expect(byPath['data']).toMatchObject({ created: 200, updated: 0, deleted: 0 });

    const pointer = await readPointerFile(join(b, 'model.safetensors.cpv'));
    const got = await b3sum(join(b, 'model.safetensors'));
    expect(got).toBe(sums.get('model.safetensors'));
    expect(`b3:${got}`).toBe(pointer.oid);
    for (const p of dataset) expect(await b3sum(join(b, 'data', ...p.split('/'))), p).toBe(sums.get(`data/${p}`));
    // Same names (including the non-ASCII one), same modes (including the 0755 script).
    expect(await snapshotTree(join(b, 'data'))).toEqual(await snapshotTree(join(a, 'data')));
    expect(((await stat(join(b, 'data', 'tools', 'prepare.sh'))).mode & 0o777).toString(8)).toBe('755');
    // Nothing stray in the workspace: git sees a clean tree.
    expect(await gitDirty(b)).toEqual([]);
  });

  it('re-adding the unchanged model stores nothing and leaves the pointer alone', async () => {
    const pointerFile = join(a, 'model.safetensors.cpv');
    const before = await stat(pointerFile);
    const text = await readFile(pointerFile, 'utf8');
    const r = await cpvJson<AddJson>(a, ['add', 'model.safetensors']);
    expect(r.items).toHaveLength(1);
    expect(r.items[0]).toMatchObject({ status: 'unchanged', storedBytes: 0, oid: v1Oid });
    expect(await readFile(pointerFile, 'utf8')).toBe(text);
    expect((await stat(pointerFile)).mtimeMs).toBe(before.mtimeMs);
    expect(await gitDirty(a)).toEqual([]);
  });

  it('v2: rewriting 5% of the tensors in place grows the remote by about the changed bytes', async () => {
    changedV2 = await rewriteTensors(join(a, 'model.safetensors'), 0.05, 3);
    expect(changedV2).toBeGreaterThan(0.75 * MiB); // 3 of 64 tensors of 0.25–0.75 MiB
    v2Oid = `b3:${await b3sum(join(a, 'model.safetensors'))}`;
    expect(v2Oid).not.toBe(v1Oid);
    sums.set('model.safetensors', v2Oid.slice(3));

    const add = await cpvJson<AddJson>(a, ['add', 'model.safetensors']);
    expect(add.items[0]).toMatchObject({ status: 'modified', oid: v2Oid, size: model.size });
    // Kind, name and metadata carry over from the previous pointer.
    expect(await readPointerFile(join(a, 'model.safetensors.cpv'))).toMatchObject({ kind: 'model', name: 'tiny-llm', oid: v2Oid, 'meta.epoch': '1' });

    const st = await cpvJson<StatusJson>(a, ['status', '-r', 'origin']);
    const byPath = Object.fromEntries(st.items.map((i) => [i.path, i]));
    expect(byPath['model.safetensors']).toMatchObject({ workspace: 'unchanged', cache: 'present', remote: 'missing' });
    expect(byPath['data']).toMatchObject({ workspace: 'unchanged', cache: 'present', remote: 'present' });

    const before = await remote.bytes();
    const push = await cpvJson<PushJson>(a, ['push']);
    const growth = (await remote.bytes()) - before;
    console.log(
      `v2 push (${remote.kind}): ${changedV2} bytes changed, push reported ${push.bytes} chunk bytes (${(push.bytes / changedV2).toFixed(3)}x), ` +
        `remote grew ${growth} bytes (${(growth / changedV2).toFixed(3)}x)`,
    );
    expect(push).toMatchObject({ uploaded: 1, upToDate: 1, files: 1 });
    // Every chunk is either uploaded or already on the remote.
    expect(push.bytes + push.dedupBytes).toBe(model.size);
    expect(push.bytes).toBeGreaterThanOrEqual(changedV2);
    expect(push.bytes).toBeLessThanOrEqual(DEDUP_RATIO * changedV2);
    expect(growth).toBe(push.wireBytes);
    expect(growth).toBeLessThanOrEqual(DEDUP_RATIO * changedV2 + MANIFEST_ALLOWANCE);

    await commitAll(a, 'Fine-tune: model v2');
    await pushGit(a);
  });

  it('B: git pull + cpv pull gets v2, mostly from chunks already in its cache', async () => {
    await pullGit(b);
    const pull = await cpvJson<PullJson>(b, ['pull']);
    console.log(
      `v2 pull (${remote.kind}): ${pull.fetch.bytes} bytes downloaded, ${pull.fetch.reusedBytes} bytes reused from the cache ` +
        `(${((100 * pull.fetch.reusedBytes) / model.size).toFixed(1)}% of the model), ${pull.fetch.requests} request(s)`,
    );
    expect(pull.fetch).toMatchObject({ files: 1, upToDate: 1 });
    expect(pull.fetch.bytes + pull.fetch.reusedBytes).toBe(model.size);
    expect(pull.fetch.bytes).toBeLessThanOrEqual(DEDUP_RATIO * changedV2);
    expect(pull.fetch.reusedBytes).toBeGreaterThanOrEqual(0.9 * model.size);
    const byPath = Object.fromEntries(pull.checkout.items.map((i) => [i.path, i]));
    expect(byPath['model.safetensors']).toMatchObject({ oid: v2Oid, created: 0, updated: 1, deleted: 0 });
    expect(byPath['data']).toMatchObject({ created: 0, updated: 0, deleted: 0, unchanged: 200 });

    expect(await b3sum(join(b, 'model.safetensors'))).toBe(v2Oid.slice(3));
    expect(await b3sum(join(b, 'model.safetensors'))).toBe(await b3sum(join(a, 'model.safetensors')));
    for (const p of dataset) expect(await b3sum(join(b, 'data', ...p.split('/'))), p).toBe(sums.get(`data/${p}`));
    expect(await gitDirty(b)).toEqual([]);
  });

  it('status is clean after a pull and names the files changed inside a tracked directory', async () => {
    const clean = await cpvJson<StatusJson>(b, ['status']);
    expect(clean.clean).toBe(true);
    expect(clean.items.map((i) => [i.path, i.workspace, i.cache])).toEqual([
      ['data', 'unchanged', 'present'],
      ['model.safetensors', 'unchanged', 'present'],
    ]);

    const modified = dataset.find((p) => p.startsWith('train/shard-1/'))!;
    const deleted = dataset.find((p) => p.startsWith('val/'))!;
    await appendFile(join(b, 'data', ...modified.split('/')), 'one more line\n');
    await rm(join(b, 'data', ...deleted.split('/')));
    await writeFile(join(b, 'data', 'train', 'new-sample.bin'), randomBytes(99, 3000));

    const dirty = await cpvJson<StatusJson>(b, ['status']);
    expect(dirty.clean).toBe(false);
    const data = dirty.items.find((i) => i.path === 'data')!;
    expect(data.workspace).toBe('modified');
    expect(data.changes).toEqual({ added: ['train/new-sample.bin'], modified: [modified], deleted: [deleted] });
    expect(dirty.items.find((i) => i.path === 'model.safetensors')!.workspace).toBe('unchanged');

    // --force discards all three changes; the workspace matches the pointer again.
    await cpvJson(b, ['checkout', '--force']);
    expect((await cpvJson<StatusJson>(b, ['status'])).clean).toBe(true);
    expect(await snapshotTree(join(b, 'data'))).toEqual(await snapshotTree(join(a, 'data')));
  });

  it('C: pulling files inside a tracked directory creates just those files', async () => {
    const c = await cloneRepo(origin, join(root, 'c'), 'Carol');
    await remote.join(c);
    const one = dataset.find((p) => p.startsWith('train/shard-2/'))!;
    const special = 'meta/label notes ü.txt';
    const pull = await cpvJson<PullJson>(c, ['pull', `data/${one}`, `data/${special}`]);
    const expectBytes = (await stat(join(a, 'data', ...one.split('/')))).size + (await stat(join(a, 'data', ...special.split('/')))).size;
    expect(pull.fetch).toMatchObject({ files: 2, bytes: expectBytes });
    expect(await listFiles(join(c, 'data'))).toEqual([special, one].sort());
    expect(await b3sum(join(c, 'data', ...one.split('/')))).toBe(sums.get(`data/${one}`));
    expect(await b3sum(join(c, 'data', ...special.split('/')))).toBe(sums.get(`data/${special}`));
    // Nothing else was materialized or fetched.
    expect(await listFiles(c, { exclude: ['.git', '.cpv'] })).toEqual(['.gitignore', 'data.cpv', ...[special, one].sort().map((p) => `data/${p}`), 'model.safetensors.cpv'].sort());
    expect(await listFiles(join(c, '.cpv', 'cache', 'files'))).toHaveLength(2);
  });

  it('diff HEAD~1 HEAD lists the model as modified, with sizes and oids', async () => {
    const d = await cpvJson<DiffJson>(a, ['diff', 'HEAD~1', 'HEAD']);
    expect(d).toEqual({
      a: 'HEAD~1',
      b: 'HEAD',
      items: [{ path: 'model.safetensors', status: 'modified', type: 'file', oldOid: v1Oid, newOid: v2Oid, oldSize: model.size, newSize: model.size }],
    });
    // HEAD against the workspace: nothing changed since the commit.
    expect((await cpvJson<DiffJson>(a, ['diff'])).items).toEqual([]);
  });

  it('dry runs: add --dry-run writes no pointer, push --dry-run uploads nothing but reports the upload', async () => {
    const cacheFiles = await listFiles(join(a, '.cpv', 'cache'), { exclude: ['tmp'] });
    const outsideData = { exclude: ['.git', '.cpv', 'model.safetensors', 'data'] };
    const tracked = await snapshotTree(a, outsideData);

    // A new path, dry: no pointer, no .gitignore entry, nothing cached.
    await writeFile(join(a, 'extra.bin'), randomBytes(5, 200 * KiB));
    const dryNew = await cpvJson<AddJson>(a, ['add', 'extra.bin', '--dry-run']);
    expect(dryNew.items[0]).toMatchObject({ path: 'extra.bin', status: 'new', oid: `b3:${await b3sum(join(a, 'extra.bin'))}` });
    expect(dryNew.gitAdd).toEqual([]);
    await rm(join(a, 'extra.bin'));
    expect(await snapshotTree(a, outsideData)).toEqual(tracked);

    // A changed model, dry: reports the new oid, the pointer stays at v2.
    const changed = await rewriteTensors(join(a, 'model.safetensors'), 0.05, 4);
    const v3Oid = `b3:${await b3sum(join(a, 'model.safetensors'))}`;
    const pointerText = await readFile(join(a, 'model.safetensors.cpv'), 'utf8');
    const dryAdd = await cpvJson<AddJson>(a, ['add', 'model.safetensors', '--dry-run']);
    expect(dryAdd.items[0]).toMatchObject({ status: 'modified', oid: v3Oid });
    expect(await readFile(join(a, 'model.safetensors.cpv'), 'utf8')).toBe(pointerText);
    expect(await listFiles(join(a, '.cpv', 'cache'), { exclude: ['tmp'] })).toEqual(cacheFiles);

    // Recorded for real, then a dry push: the remote does not change at all.
    await cpvJson<AddJson>(a, ['add', 'model.safetensors']);
    const remoteBefore = await remote.snapshot();
    const dryPush = await cpvJson<PushJson>(a, ['push', '--dry-run']);
    expect(await remote.snapshot()).toEqual(remoteBefore);
    expect(dryPush).toMatchObject({ uploaded: 1, upToDate: 1, files: 1 });
    expect(dryPush.bytes).toBeGreaterThanOrEqual(changed);
    expect(dryPush.bytes).toBeLessThanOrEqual(DEDUP_RATIO * changed);
    expect(dryPush.packs).toBe(1);

    // The real push does what the dry run said.
    const push = await cpvJson<PushJson>(a, ['push']);
    expect({ chunks: push.chunks, bytes: push.bytes, files: push.files, uploaded: push.uploaded }).toEqual({
      chunks: dryPush.chunks,
      bytes: dryPush.bytes,
      files: dryPush.files,
      uploaded: dryPush.uploaded,
    });
    expect(await gitDirty(a)).toEqual(['model.safetensors.cpv']);
  });

  it('never wrote to HOME (no user-level state)', async () => {
    expect(await listFiles(join(root, 'home'))).toEqual([]);
  });
}
