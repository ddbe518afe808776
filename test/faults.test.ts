// Push and pull over a network that misbehaves: every request to the S3 server goes
// through a proxy (./support/fault-proxy.ts) that resets connections, answers 500 or
// 503 SlowDown, cuts bodies short or stalls on about one request in ten. Each command
// must either succeed with exactly the right content, or fail with a clear remote
// error (and a pull must leave the workspace as it was) and then succeed when run
// again without faults. The remote must never hold a damaged object.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cpvJson, readPointerFile, runCpv, useHome, type ErrorJson } from './support/cpv.js';
import { cloneRepo, commitAll, makeOrigin, pullGit, pushGit } from './support/git.js';
import { b3sum, rewriteTensors, writeDataset, writeModel } from './support/model.js';
import { makeTempDir, removeTempDir, snapshotTree } from './support/fsutil.js';
import { s3Remote, type RemoteFixture } from './support/remote-fixture.js';
import { checkRemote } from './support/remote-check.js';
import { startFaultProxy, type FaultKind, type FaultProxy, type ProxiedRequest } from './support/fault-proxy.js';
import { s3Config } from './setup/s3-env.js';

const MiB = 1024 * 1024;
const RATE = 0.1;
// A 2 s request timeout for the S3 client and 4 s stalls: every stall makes the
// client give up on the request and retry it.
const TIMEOUT_S = 2;
const STALL_MS = 4000;

describe.skipIf(!s3Config())('faults: push and pull through a proxy that injects S3 faults', () => {
  let root: string;
  let origin: string;
  let remote: RemoteFixture;
  let proxy: FaultProxy;
  let a: string;
  let clones = 0;
  /** b3sum of every tracked file in A, by workspace path. */
  let sums = new Map<string, string>();
  /** How each command through the faults ended. */
  const outcomes: string[] = [];
  /** Targeted faults for the multipart test; undefined leaves it to the seeded draw. */
  let target: ((req: ProxiedRequest) => FaultKind | null | undefined) | undefined;

  const s3 = s3Config()!;
  const workspace = (dir: string) => snapshotTree(dir, { exclude: ['.git', '.cpv'] });

  /** Point a clone's S3 remote at the proxy, with a short request timeout. */
  const viaProxy = async (clone: string): Promise<void> => {
    await cpvJson(clone, ['remote', 'modify', 'origin', 'endpoint', proxy.url, '--local']);
    await cpvJson(clone, ['remote', 'modify', 'origin', 'timeout', String(TIMEOUT_S), '--local']);
  };

  /** A fresh clone of origin that reaches the remote through the proxy. */
  const freshClone = async (): Promise<string> => {
    const c = await cloneRepo(origin, join(root, `clone-${++clones}`), `User ${clones}`);
    await remote.join(c);
    await viaProxy(c);
    return c;
  };

  /**
   * Run `cpv ARGS` with faults on. Success is fine. A failure must be a remote error
   * (exit 6, code REMOTE, a hint, no stack trace) that left the workspace as it was;
   * then the same command must succeed with the faults off.
   */
  const throughFaults = async (clone: string, args: string[]): Promise<void> => {
    const before = await workspace(clone);
    proxy.rate = RATE;
    let r;
    try {
      r = await runCpv(clone, [...args, '--json'], { timeout: 170_000 });
    } finally {
      proxy.rate = 0;
    }
    const cmd = `cpv ${args.join(' ')}`;
    if (r.exitCode === 0) {
      outcomes.push(`${cmd}: ok`);
      return;
    }
    expect(r.stderr, cmd).not.toMatch(/internal error|\n\s+at /);
    expect(r.exitCode, `${cmd}\n${r.stderr}`).toBe(6);
    const e = JSON.parse(r.stdout) as ErrorJson;
    expect(e.error.code).toBe('REMOTE');
    expect(e.error.hint).toBeTruthy();
    expect(r.stderr).toContain(`cpv: error: ${e.error.message}`);
    expect(await workspace(clone)).toEqual(before);
    const again = await runCpv(clone, args);
    expect(again.exitCode, `${cmd} without faults\n${again.stderr}`).toBe(0);
    outcomes.push(`${cmd}: failed (${e.error.message}), then ok without faults`);
  };

  /** Every tracked file of `clone` is byte-identical to A's. */
  const expectSameContent = async (clone: string): Promise<void> => {
    for (const [path, sum] of sums) expect(await b3sum(join(clone, ...path.split('/'))), path).toBe(sum);
  };

  /** Record A's files (the models and every dataset file) as the expected content. */
  const recordSums = async (paths: string[]): Promise<void> => {
    sums = new Map();
    for (const p of paths) sums.set(p, await b3sum(join(a, ...p.split('/'))));
  };

  /** The remote is sound: checked object by object, directly on the server. */
  const expectSoundRemote = async (): Promise<void> => {
    const report = await checkRemote(remote);
    expect(report.problems).toEqual([]);
    expect(report.packs).toBeGreaterThan(0);
  };

  let dataset: string[];

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('faults');
    useHome(join(root, 'home'));
    origin = await makeOrigin(join(root, 'origin.git'));
    remote = await s3Remote('faults', 'team/cpv');
    proxy = await startFaultProxy({ upstream: s3.endpoint, seed: 20240611, rate: 0, stallMs: STALL_MS, target: (req) => target?.(req) });
    a = await cloneRepo(origin, join(root, 'a'), 'Alice');
    await remote.init(a);
    // 1 MiB packs (the smallest allowed): many requests for little data.
    await cpvJson(a, ['config', 'core.pack_size', String(MiB)]);
    await commitAll(a, 'cpv init');
    await viaProxy(a);
  });
  afterAll(async () => {
    if (proxy) {
      console.log(`fault proxy: ${proxy.summary()}`);
      console.log(`fault proxy: outcomes: ${outcomes.join('; ')}`);
      await proxy.close();
    }
    await remote?.dispose();
    await removeTempDir(root);
  });

  it('v1: push through faults, then fresh clones pull byte-identical content through faults', async () => {
    await writeModel(join(a, 'model.safetensors'), { seed: 41, tensors: 32, bytes: 16 * MiB });
    dataset = await writeDataset(join(a, 'data'), { seed: 42, files: 120 });
    await cpvJson(a, ['add', 'model.safetensors', '--kind', 'model']);
    await cpvJson(a, ['add', 'data', '--kind', 'data']);
    await commitAll(a, 'v1');
    await pushGit(a);
    await recordSums(['model.safetensors', ...dataset.map((p) => `data/${p}`)]);

    await throughFaults(a, ['push']);
    await expectSoundRemote();
    for (let i = 0; i < 2; i++) {
      const c = await freshClone();
      await throughFaults(c, ['pull']);
      await expectSameContent(c);
    }
  });

  it('v2: a changed model and a new one; an old clone and a new clone pull through faults', async () => {
    const b = await freshClone();
    proxy.rate = 0;
    await cpvJson(b, ['pull']);
    await rewriteTensors(join(a, 'model.safetensors'), 0.25, 43);
    await writeModel(join(a, 'extra', 'head.safetensors'), { seed: 44, tensors: 8, bytes: 6 * MiB });
    await cpvJson(a, ['add', 'model.safetensors', join('extra', 'head.safetensors')]);
    await commitAll(a, 'v2');
    await pushGit(a);
    await recordSums(['model.safetensors', 'extra/head.safetensors', ...dataset.map((p) => `data/${p}`)]);

    await throughFaults(a, ['push']);
    await expectSoundRemote();
    await pullGit(b);
    await throughFaults(b, ['pull']);
    await expectSameContent(b);
    const c = await freshClone();
    await throughFaults(c, ['pull']);
    await expectSameContent(c);
    expect(proxy.requests, 'enough requests to meet every kind of fault').toBeGreaterThan(150);
  });

  it('multipart: a lost CompleteMultipartUpload reply, a reset part, a cut and a stalled ranged read', async () => {
    // One pack over the 64 MiB multipart threshold: 16 MiB parts.
    await cpvJson(a, ['config', 'core.pack_size', String(80 * MiB), '--local']);
    await writeModel(join(a, 'big.safetensors'), { seed: 45, tensors: 16, bytes: 70 * MiB });
    await cpvJson(a, ['add', 'big.safetensors']);
    await commitAll(a, 'big');
    await pushGit(a);
    const oid = (await readPointerFile(join(a, 'big.safetensors.cpv'))).oid!;
    const seen = { complete: 0, part: 0, get: 0 };
    const injected: FaultKind[] = [];
    target = (req) => {
      const isPack = req.url.includes('/packs/');
      if (req.method === 'POST' && /[?&]uploadId=/.test(req.url) && seen.complete++ === 0) return injected.push('lostReply'), 'lostReply';
      if (req.method === 'PUT' && /[?&]partNumber=2/.test(req.url) && seen.part++ === 0) return injected.push('reset'), 'reset';
      if (req.method === 'GET' && isPack) {
        seen.get++;
        if (seen.get === 1) return injected.push('truncate'), 'truncate';
        if (seen.get === 3) return injected.push('stall'), 'stall';
      }
      return null;
    };
    try {
      const push = await runCpv(a, ['push', 'big.safetensors']);
      expect(push.exitCode, push.stderr).toBe(0);
      expect(injected).toEqual(['reset', 'lostReply']);
      await expectSoundRemote();
      const c = await cloneRepo(origin, join(root, `clone-${++clones}`), 'Carol');
      await remote.join(c);
      await viaProxy(c);
      const pull = await runCpv(c, ['pull', 'big.safetensors']);
      expect(pull.exitCode, pull.stderr).toBe(0);
      expect(injected).toEqual(['reset', 'lostReply', 'truncate', 'stall']);
      // The configured request timeout (2 s) ended the stalled read, not the stall.
      expect(proxy.abandoned).toBeGreaterThan(0);
      expect(`b3:${await b3sum(join(c, 'big.safetensors'))}`).toBe(oid);
    } finally {
      target = undefined;
    }
  });
});
