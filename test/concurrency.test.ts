// Two teammates push to the same remote at the same moment: overlapping content (the
// same base model, most of the same dataset, then an identical new file) and different
// content (each one's fine-tune and extra files). Both pushes must succeed, the remote
// must stay sound object by object (./support/remote-check.ts), and a third clone must
// pull both versions byte for byte. Runs over a directory remote and an S3 remote.
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cpvJson, runCpv, useHome, type PushJson } from './support/cpv.js';
import { cloneRepo, commitAll, git, makeOrigin, pushGit } from './support/git.js';
import { b3sum, randomBytes, rewriteTensors, writeDataset, writeModel } from './support/model.js';
import { listFiles, makeTempDir, removeTempDir } from './support/fsutil.js';
import { directoryRemote, s3Remote, type RemoteFixture } from './support/remote-fixture.js';
import { checkRemote } from './support/remote-check.js';
import { s3Config } from './setup/s3-env.js';

const MiB = 1024 * 1024;

describe('concurrent pushes to a directory remote', () => {
  concurrentPushes((root) => directoryRemote(join(root, 'remote')));
});

describe.skipIf(!s3Config())('concurrent pushes to an S3 remote', () => {
  concurrentPushes(() => s3Remote('concurrency', 'team/cpv'));
});

function concurrentPushes(makeRemote: (root: string) => Promise<RemoteFixture>): void {
  let root: string;
  let origin: string;
  let remote: RemoteFixture;
  let b: string;
  let c: string;

  /** b3sum of every tracked file of a clone: the models and every dataset file. */
  const sums = async (clone: string): Promise<Map<string, string>> => {
    const out = new Map<string, string>();
    const files = (await listFiles(clone, { exclude: ['.git', '.cpv'] })).filter((f) => !f.endsWith('.cpv') && !f.endsWith('.gitignore'));
    for (const f of files) out.set(f, await b3sum(join(clone, ...f.split('/'))));
    return out;
  };

  /** `cpv push` in B and C at the same moment; both must succeed. */
  const pushBoth = async (): Promise<[PushJson, PushJson]> => {
    const [rb, rc] = await Promise.all([runCpv(b, ['push', '--json']), runCpv(c, ['push', '--json'])]);
    expect(rb.exitCode, `B: ${rb.stderr}`).toBe(0);
    expect(rc.exitCode, `C: ${rc.stderr}`).toBe(0);
    return [JSON.parse(rb.stdout) as PushJson, JSON.parse(rc.stdout) as PushJson];
  };

  /** `d` checks out `branch` and pulls it: every tracked file byte-identical to `from`'s. */
  const pullsLike = async (d: string, branch: string, from: string): Promise<void> => {
    await git(d, ['checkout', '--quiet', branch]);
    const r = await runCpv(d, ['pull']);
    expect(r.exitCode, r.stderr).toBe(0);
    // (Files of the branch checked out before stay behind, untracked: compare the branch's own.)
    const want = await sums(from);
    expect(want.size).toBeGreaterThan(40);
    for (const [f, sum] of want) expect(await b3sum(join(d, ...f.split('/'))), f).toBe(sum);
  };

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('concurrency');
    useHome(join(root, 'home'));
    origin = await makeOrigin(join(root, 'origin.git'));
    remote = await makeRemote(root);
    const a = await cloneRepo(origin, join(root, 'a'), 'Alice');
    await remote.init(a);
    // Small packs: each push is many uploads, so the two interleave.
    await cpvJson(a, ['config', 'core.pack_size', String(MiB)]);
    await writeModel(join(a, 'base.safetensors'), { seed: 71, tensors: 16, bytes: 4 * MiB });
    await writeDataset(join(a, 'data'), { seed: 72, files: 40 });
    await cpvJson(a, ['add', 'base.safetensors', '--kind', 'model']);
    await cpvJson(a, ['add', 'data', '--kind', 'data']);
    await commitAll(a, 'base model and data');
    await pushGit(a);
    await cpvJson(a, ['push']);

    // B and C pull the base, then each makes a version of their own.
    b = await cloneRepo(origin, join(root, 'b'), 'Bob');
    c = await cloneRepo(origin, join(root, 'c'), 'Carol');
    for (const [clone, name, seed] of [
      [b, 'bob', 73],
      [c, 'carol', 74],
    ] as const) {
      await remote.join(clone);
      await cpvJson(clone, ['pull']);
      await git(clone, ['checkout', '--quiet', '-b', name]);
      // Overlapping: a fine-tune of the same base (most chunks shared between B and C),
      // the same new file in both, and the dataset with one file changed and one added.
      await copyFile(join(clone, 'base.safetensors'), join(clone, 'tuned.safetensors'));
      await rewriteTensors(join(clone, 'tuned.safetensors'), 0.25, seed);
      await writeModel(join(clone, 'shared.safetensors'), { seed: 75, tensors: 8, bytes: 2 * MiB });
      await writeFile(join(clone, 'data', 'train', 'shard-1', 'class-0', 'sample-0005.bin'), randomBytes(seed, 20_000));
      await writeFile(join(clone, 'data', `${name}.bin`), randomBytes(seed + 100, 50_000));
      // Different: a model of each one's own.
      await writeModel(join(clone, `${name}.safetensors`), { seed: seed + 200, tensors: 8, bytes: 3 * MiB });
      await cpvJson(clone, ['add', 'tuned.safetensors', 'shared.safetensors', `${name}.safetensors`, '--kind', 'model']);
      await cpvJson(clone, ['add', 'data']);
      await commitAll(clone, `${name}'s version`);
      await git(clone, ['push', '--quiet', '-u', 'origin', name]);
    }
  });
  afterAll(async () => {
    await remote?.dispose();
    await removeTempDir(root);
  });

  it('both push at once and succeed; the remote is sound; a third clone pulls both versions byte for byte', async () => {
    // Five tracked paths each: the base is on the remote already; the shared model may
    // be found there if the other push published it first.
    for (const p of await pushBoth()) {
      expect(p.uploaded + p.upToDate).toBe(5);
      expect(p.uploaded).toBeGreaterThanOrEqual(3);
    }
    const report = await checkRemote(remote);
    expect(report.problems).toEqual([]);
    const fsck = await runCpv(b, ['fsck', '-r', 'origin', '--read-data']);
    expect(fsck.exitCode, fsck.stdout + fsck.stderr).toBe(0);

    const d = await cloneRepo(origin, join(root, 'd'), 'Dave');
    await remote.join(d);
    await pullsLike(d, 'bob', b);
    await pullsLike(d, 'carol', c);
  });

  it('both push the same new content at once: both succeed, and it is stored soundly', async () => {
    for (const clone of [b, c]) {
      await writeModel(join(clone, 'same.safetensors'), { seed: 76, tensors: 8, bytes: 3 * MiB });
      await cpvJson(clone, ['add', 'same.safetensors']);
      await commitAll(clone, 'same new model');
      await git(clone, ['push', '--quiet']);
    }
    await pushBoth();
    expect((await checkRemote(remote)).problems).toEqual([]);

    const e = await cloneRepo(origin, join(root, 'e'), 'Erin');
    await remote.join(e);
    await pullsLike(e, 'carol', c);
    await pullsLike(e, 'bob', b);
  });

  it('gc with a grace period running during a push never breaks the push', async () => {
    // Carol pushes a new model while Bob collects the remote: everything Carol writes is
    // younger than the grace period, and older garbage may go.
    await writeModel(join(c, 'during-gc.safetensors'), { seed: 77, tensors: 16, bytes: 6 * MiB });
    await cpvJson(c, ['add', 'during-gc.safetensors']);
    await commitAll(c, 'a model pushed during gc');
    await git(c, ['push', '--quiet']);
    const [pushed, gc] = await Promise.all([runCpv(c, ['push', '--json']), runCpv(b, ['gc', '--cloud', '--force', '--grace', '1h', '--all-branches', '--json'])]);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    expect(gc.exitCode, gc.stderr).toBe(0);
    const fsck = await runCpv(c, ['fsck', '-r', 'origin', '--read-data']);
    expect(fsck.exitCode, fsck.stdout + fsck.stderr).toBe(0);
    const f = await cloneRepo(origin, join(root, 'f'), 'Frank');
    await remote.join(f);
    await pullsLike(f, 'carol', c);
  });
}
