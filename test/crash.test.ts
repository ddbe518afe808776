// Crash suite: `kill -9` cpv at random points of add, push, pull, checkout and gc, run
// the command again, and prove nothing was lost: `cpv fsck --read-data` (cache and
// remote) is clean and the content is byte-identical. The kill points are drawn from a
// seeded generator between cpv's start-up and the end of an uninterrupted run; the seed and every
// trial's delay are printed so a failure can be replayed (CPV_CRASH_SEED, and
// CPV_CRASH_TRIALS for a longer run; CI runs 10 trials per command).
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, childEnv, CPV_BIN, cpvJson, cpvOk, runCpv, useHome } from './support/cpv.js';
import { cloneRepo, commitAll, git, makeOrigin, pushGit } from './support/git.js';
import { b3sum, rewriteTensors, splitmix32, writeDataset, writeModel } from './support/model.js';
import { listFiles, makeTempDir, removeTempDir } from './support/fsutil.js';
import { directoryRemote, type RemoteFixture } from './support/remote-fixture.js';

const TRIALS = Number(process.env.CPV_CRASH_TRIALS ?? 10);
const SEED = Number(process.env.CPV_CRASH_SEED ?? 20261130);
const MiB = 1024 * 1024;

/** Start `cpv ARGS` and SIGKILL it after `delayMs` (if it is still running). Resolves to whether it was killed. */
function runAndKill(cwd: string, args: readonly string[], delayMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CPV_BIN, ...args], { cwd, env: childEnv(), stdio: 'ignore' });
    let killed = false;
    const timer = setTimeout(() => {
      killed = child.kill('SIGKILL');
    }, delayMs);
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(killed);
    });
  });
}

async function timed(cwd: string, args: readonly string[]): Promise<number> {
  const t0 = Date.now();
  await cpvOk(cwd, args);
  return Date.now() - t0;
}

async function sums(clone: string): Promise<Record<string, string>> {
  const out: Record<string, string> = { 'model.safetensors': await b3sum(join(clone, 'model.safetensors')) };
  for (const f of await listFiles(join(clone, 'data'))) out[`data/${f}`] = await b3sum(join(clone, 'data', ...f.split('/')));
  return out;
}

async function fsckClean(cwd: string, remote: boolean): Promise<void> {
  const r = await runCpv(cwd, ['fsck', '--read-data', ...(remote ? ['-r', 'origin'] : [])]);
  expect(r.exitCode, `fsck after a crash:\n${r.stdout}\n${r.stderr}`).toBe(0);
}

// Each trial runs the command twice (killed, then to completion) and checks the result.
describe('crash: kill -9 at random points, rerun, nothing lost', { timeout: 360_000 }, () => {
  let root: string;
  let remote: RemoteFixture;
  let a: string;
  let b: string;
  let expected: Record<string, string>;
  const rand = splitmix32(SEED);
  const trials: Record<string, { killed: number; finished: number }> = {};
  /** How long cpv takes to start (`cpv --version`): kills before that test nothing. */
  let boot = 0;

  /** One command under random kills: kill, rerun to completion, check. */
  async function crashTrials(name: string, cwd: string, args: readonly string[], prepare: () => Promise<void>, check: () => Promise<void>): Promise<void> {
    // The shorter of two uninterrupted runs: a first run can be slower (cold caches).
    let full = Infinity;
    for (let i = 0; i < 2; i++) {
      await prepare();
      full = Math.min(full, await timed(cwd, args));
      await check();
    }
    const from = full > boot ? boot : 0;
    const to = full * 1.1;
    const stats = (trials[name] = { killed: 0, finished: 0 });
    for (let i = 0; i < TRIALS; i++) {
      await prepare();
      // splitmix32 draws uint32: scale to a point between start-up and the end of the run.
      const delay = Math.floor(from + (rand() / 2 ** 32) * (to - from));
      expect(delay, `${name}: kill delay outside the run`).toBeLessThanOrEqual(to);
      const killed = await runAndKill(cwd, args, delay);
      stats[killed ? 'killed' : 'finished']++;
      const rerun = await runCpv(cwd, args);
      expect(rerun.exitCode, `${name} trial ${i} (killed after ${delay} ms of ~${full} ms, seed ${SEED}):\n${rerun.stderr}`).toBe(0);
      await check();
    }
    process.stderr.write(`crash ${name}: ${TRIALS} trials, kills drawn over ${from}-${Math.round(to)} ms of ~${full} ms runs: ${stats.killed} killed mid-run, ${stats.finished} finished first (seed ${SEED})\n`);
    expect(stats.killed).toBeGreaterThan(0);
  }

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('crash');
    useHome(join(root, 'home'));
    boot = Math.min(await timed(root, ['--version']), await timed(root, ['--version']));
    const origin = await makeOrigin(join(root, 'origin.git'));
    remote = await directoryRemote(join(root, 'remote'));
    a = await cloneRepo(origin, join(root, 'a'), 'Alice');
    await remote.init(a);
    // Small packs: a push writes many objects, so kills land between them.
    await cpvOk(a, ['config', 'core.pack_size', String(MiB)]);
    await writeModel(join(a, 'model.safetensors'), { seed: 301, tensors: 24, bytes: 3 * MiB });
    await writeDataset(join(a, 'data'), { seed: 302, files: 60 });
    await commitAll(a, 'Initialize cpv');
    await pushGit(a);
    b = await cloneRepo(origin, join(root, 'b'), 'Bob');
  });
  afterAll(async () => {
    await remote?.dispose();
    await removeTempDir(root);
  });

  it('add: the cache and the pointers are whole after every kill', async () => {
    let version = 0;
    await crashTrials(
      'add',
      a,
      ['add', 'model.safetensors', 'data'],
      // New content each trial, so every run has real work to do.
      async () => {
        await rewriteTensors(join(a, 'model.safetensors'), 0.1, 400 + version++);
      },
      async () => {
        await fsckClean(a, false);
        const pointer = await cpvJson<{ items: Array<{ path: string; oid: string; workspace: string }> }>(a, ['status']);
        expect(pointer.items.every((i) => i.workspace === 'unchanged'), JSON.stringify(pointer.items)).toBe(true);
      },
    );
    await commitAll(a, 'model and data');
    await pushGit(a);
    expected = await sums(a);
  });

  it('push: the remote holds a pullable version after every kill', async () => {
    let version = 0;
    await crashTrials(
      'push',
      a,
      ['push'],
      async () => {
        await rewriteTensors(join(a, 'model.safetensors'), 0.1, 500 + version++);
        await cpvOk(a, ['add', 'model.safetensors']);
      },
      () => fsckClean(a, true),
    );
    await commitAll(a, 'pushed');
    await pushGit(a);
    expected = await sums(a);
    await git(b, ['pull', '--quiet', '--ff-only']);
  });

  it('pull: the clone ends byte-identical after every kill', async () => {
    await crashTrials(
      'pull',
      b,
      ['pull'],
      async () => {
        await rm(join(b, '.cpv', 'cache'), { recursive: true, force: true });
        await rm(join(b, 'model.safetensors'), { force: true });
        await rm(join(b, 'data'), { recursive: true, force: true });
      },
      async () => {
        await fsckClean(b, false);
        expect(await sums(b)).toEqual(expected);
      },
    );
  });

  it('checkout: the workspace ends byte-identical after every kill', async () => {
    await crashTrials(
      'checkout',
      b,
      ['checkout'],
      async () => {
        await rm(join(b, 'model.safetensors'), { force: true });
        await rm(join(b, 'data'), { recursive: true, force: true });
      },
      async () => {
        expect(await sums(b)).toEqual(expected);
      },
    );
  });

  it('gc: the remote stays sound and the current version pullable after every kill', async () => {
    await crashTrials(
      'gc',
      a,
      ['gc', '--cloud', '--force', '--grace', '0s'],
      async () => {
        // Something to collect each time: a version that is pushed and then forgotten.
        await rewriteTensors(join(a, 'model.safetensors'), 0.05, 600 + Math.floor(rand() * 1e6));
        await cpvOk(a, ['add', 'model.safetensors']);
        await cpvOk(a, ['push']);
        await git(a, ['checkout', '--quiet', '--', 'model.safetensors.cpv']);
        await cpvOk(a, ['checkout', '--force', 'model.safetensors']);
      },
      async () => {
        await fsckClean(a, true);
      },
    );
    await rm(join(b, '.cpv', 'cache'), { recursive: true, force: true });
    await rm(join(b, 'model.safetensors'), { force: true });
    await cpvOk(b, ['pull']);
    expect(await sums(b)).toEqual(expected);
  });
});
