// A push that loses its S3 server half-way fails with a clear error and publishes
// nothing (packs come before manifests), and the next push uploads only what had not
// landed. The server is a Ceph instance of this file's own: its radosgw is killed
// mid-push and started again over the same mon and OSD, so what landed is still there.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cpvJson, objectPath, runCpv, useHome, type ErrorJson, type PullJson, type PushJson } from './support/cpv.js';
import { cloneRepo, commitAll, makeOrigin, pushGit } from './support/git.js';
import { b3sum, writeModel, type ModelInfo } from './support/model.js';
import { listFiles, makeTempDir, removeTempDir } from './support/fsutil.js';
import { listS3Objects, type S3Object } from './support/remote-fixture.js';
import { s3ServerKind } from './setup/s3-env.js';

const MiB = 1024 * 1024;
const CEPH_SCRIPT = fileURLToPath(new URL('./servers/ceph.sh', import.meta.url));
// A Ceph instance apart from the shared test server, so that killing its radosgw
// disturbs no other test.
const CEPH_ROOT = `/tmp/cpv-ceph-resume-${process.getuid!()}`;
const PORT = 18091;
const ENDPOINT = `http://127.0.0.1:${PORT}`;
const CEPH_ENV = { CPV_CEPH_ROOT: CEPH_ROOT, CPV_CEPH_PORT: String(PORT), CPV_CEPH_MON_PORT: '13391', CPV_CEPH_MEMSTORE_BYTES: String(512 * MiB) };
// The user test/servers/ceph.sh creates.
const KEYS = { accessKeyId: 'cpvtest', secretAccessKey: 'cpvtestsecret' };
const PREFIX = 'models/';

function ceph(command: 'start' | 'stop'): Promise<{ exitCode?: number; all?: string }> {
  return execa('bash', [CEPH_SCRIPT, command], { env: { ...process.env, ...CEPH_ENV }, reject: false, all: true, stdin: 'ignore', timeout: 180_000 });
}

/** Whether radosgw answers HTTP on its port. */
async function answers(): Promise<boolean> {
  try {
    await fetch(`${ENDPOINT}/`, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGKILL this instance's radosgw (the leader of its own process group); mon and OSD keep running. */
async function killRadosgw(): Promise<string[]> {
  const pid = Number(await readFile(join(CEPH_ROOT, 'run', 'rgw.pid'), 'utf8'));
  // Its command line, to start it again exactly as test/servers/ceph.sh did.
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
  expect(argv[0]).toMatch(/radosgw$/);
  process.kill(-pid, 'SIGKILL');
  await waitFor('radosgw to stop answering', async () => !(await answers()), 10_000);
  return argv;
}

/**
 * Start radosgw again with `argv`, the way test/servers/ceph.sh launches it (its own
 * session, output to its log, pid in run/rgw.pid so that `ceph.sh stop` ends it).
 */
async function restartRadosgw(argv: string[]): Promise<void> {
  const run = join(CEPH_ROOT, 'run');
  const log = join(CEPH_ROOT, 'log', 'rgw-restart.out');
  await execa('bash', ['-c', 'setsid "$@" < /dev/null > "$LOG" 2>&1 & echo $! > "$RUN/rgw.pid"', 'launch', ...argv], {
    env: { ...process.env, LOG: log, RUN: run },
    stdin: 'ignore',
  });
  await waitFor('radosgw to answer again', answers, 60_000);
}

/** Sum of the chunk lengths a pack holds, read from its trailer index (docs/format.md). */
function packChunkBytes(pack: Uint8Array): number {
  const buf = Buffer.from(pack);
  expect(buf.subarray(0, 8).toString('latin1')).toBe('CPVPACK1');
  expect(buf.subarray(buf.length - 8).toString('latin1')).toBe('CPVPEND1');
  const indexLength = buf.readUInt32LE(buf.length - 12);
  const index = JSON.parse(buf.subarray(buf.length - 12 - indexLength, buf.length - 12).toString('utf8')) as { chunks: Array<[string, number, number]> };
  return index.chunks.reduce((n, [, , length]) => n + length, 0);
}

/**
 * The packs this clone proved it uploaded, each with the chunk bytes it holds: read from
 * the location records under `.cpv/cache/remotes/<remote id>/known/` (docs/format.md).
 */
async function acknowledgedPacks(clone: string): Promise<Map<string, number>> {
  const dir = join(clone, '.cpv', 'cache', 'remotes');
  const chunks = new Map<string, [pack: string, length: number]>();
  for (const rel of (await listFiles(dir)).filter((f) => f.includes('/known/'))) {
    const record = JSON.parse(await readFile(join(dir, ...rel.split('/')), 'utf8')) as { format: string; chunks: Array<[string, string, number, number]> };
    expect(record.format).toBe('cpv-locations');
    for (const [chunk, pack, , length] of record.chunks) chunks.set(chunk, [pack, length]);
  }
  const packs = new Map<string, number>();
  for (const [pack, length] of chunks.values()) packs.set(pack, (packs.get(pack) ?? 0) + length);
  return packs;
}

describe.skipIf(s3ServerKind() !== 'ceph')('resume: a push interrupted by a dead S3 server', () => {
  let root: string;
  let origin: string;
  let a: string;
  let bucket: string;
  let client: S3Client;
  let model: ModelInfo;
  let modelOid: string;
  let argv: string[];
  let landedPacks: S3Object[];
  let landedChunkBytes: number;
  /** Landed packs whose upload the push saw succeed, with their chunk bytes. */
  let acknowledged: Map<string, number>;
  const JOBS = 2;

  const giveKeys = async (clone: string): Promise<void> => {
    await cpvJson(clone, ['remote', 'modify', 'origin', 'access_key_id', KEYS.accessKeyId]);
    await cpvJson(clone, ['remote', 'modify', 'origin', 'secret_access_key', KEYS.secretAccessKey]);
  };
  /** Keys on the remote (relative to its prefix) that start with `start`. */
  const keys = async (start: string): Promise<string[]> => (await listS3Objects(client, bucket, PREFIX)).map((o) => o.key).filter((k) => k.startsWith(start));

  beforeAll(async () => {
    assertBuilt();
    const started = await ceph('start');
    if (started.exitCode !== 0) throw new Error(`could not start a second Ceph instance:\n${started.all}`);
    client = new S3Client({
      endpoint: ENDPOINT,
      region: 'us-east-1',
      credentials: KEYS,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    bucket = `cpv-resume-${Date.now().toString(36)}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));

    root = await makeTempDir('resume');
    useHome(join(root, 'home'));
    origin = await makeOrigin(join(root, 'origin.git'));
    a = await cloneRepo(origin, join(root, 'a'), 'Alice');
    await cpvJson(a, ['init']);
    await cpvJson(a, ['remote', 'add', 'origin', `s3://${bucket}/${PREFIX}`, '--endpoint', ENDPOINT, '--default']);
    await giveKeys(a);
    // The smallest pack size: the model goes out as some sixty packs.
    await cpvJson(a, ['config', 'core.pack_size', String(1 * MiB)]);
    model = await writeModel(join(a, 'model.safetensors'), { seed: 11, tensors: 64, bytes: 64 * MiB });
    modelOid = `b3:${await b3sum(join(a, 'model.safetensors'))}`;
    await cpvJson(a, ['add', 'model.safetensors', '--kind', 'model']);
    await commitAll(a, 'Add model');
    await pushGit(a);
  });
  afterAll(async () => {
    client?.destroy();
    // Kills mon, OSD and the restarted radosgw, and removes the instance's state.
    const stopped = await ceph('stop');
    if (stopped.exitCode !== 0) process.stderr.write(`ceph.sh stop (resume instance) failed:\n${stopped.all}\n`);
    expect(existsSync(CEPH_ROOT)).toBe(false);
    await removeTempDir(root);
  });

  it('the push fails saying it cannot reach the remote, and publishes no manifest', async () => {
    let settled = false;
    const running = runCpv(a, ['push', '--json', '-j', String(JOBS)], { timeout: 170_000 }).finally(() => {
      settled = true;
    });
    // Kill radosgw as soon as the first pack has landed.
    await waitFor('the first pack on the remote', async () => settled || (await keys('packs/')).length > 0, 60_000);
    expect(settled, 'the push finished before a pack was seen: nothing was interrupted').toBe(false);
    argv = await killRadosgw();

    const r = await running;
    expect(r.exitCode).toBe(6); // RemoteError
    const err = (JSON.parse(r.stdout) as ErrorJson).error;
    expect(err.code).toBe('REMOTE');
    expect(err.message).toMatch(/^cannot reach s3:\/\/cpv-resume-[a-z0-9]+\/models\/ at http:\/\/127\.0\.0\.1:18091/);
    expect(err.hint).toMatch(/resumes when run again/);
    expect(r.stderr).toContain('cpv: error: cannot reach');

    await restartRadosgw(argv);
    const landed = await listS3Objects(client, bucket, PREFIX);
    landedPacks = landed.filter((o) => o.key.startsWith('packs/'));
    // Write order: packs first, and no manifest until every pack is up.
    expect(landed.filter((o) => !o.key.startsWith('packs/')).map((o) => o.key)).toEqual(['cpv-remote.json']);
    expect(await keys('manifests/')).toEqual([]);
    landedChunkBytes = 0;
    const landedChunks = new Map<string, number>();
    for (const p of landedPacks) {
      const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: PREFIX + p.key }));
      const bytes = await body.Body!.transformToByteArray();
      expect(bytes.length).toBe(p.size);
      const chunkBytes = packChunkBytes(bytes);
      landedChunks.set(p.key.slice('packs/'.length).replace('/', ''), chunkBytes);
      landedChunkBytes += chunkBytes;
    }
    expect(landedPacks.length).toBeGreaterThan(0);
    expect(landedChunkBytes).toBeLessThan(model.size);

    // Every pack the push recorded as uploaded is on the remote, whole. A pack can also
    // land without the push hearing back (the server died before it answered): only
    // the uploads in flight, at most one per job.
    acknowledged = await acknowledgedPacks(a);
    expect(acknowledged.size).toBeGreaterThan(0);
    for (const [pack, length] of acknowledged) expect(landedChunks.get(pack), pack).toBe(length);
    expect(landedPacks.length - acknowledged.size).toBeLessThanOrEqual(JOBS);
  });

  it('the next push uploads only what had not landed, and a fresh clone pulls it byte-identical', async () => {
    const push = await cpvJson<PushJson>(a, ['push']);
    const landedPackBytes = landedPacks.reduce((n, p) => n + p.size, 0);
    const acknowledgedBytes = [...acknowledged.values()].reduce((n, b) => n + b, 0);
    console.log(
      `resume: ${landedPacks.length} pack(s) of ${landedPackBytes} bytes (${landedChunkBytes} chunk bytes) had landed before the interruption, ` +
        `${acknowledged.size} of them (${acknowledgedBytes} chunk bytes) acknowledged; ` +
        `the rerun uploaded ${push.bytes} chunk bytes in ${push.packs} pack(s) for a ${model.size}-byte model`,
    );
    expect(push).toMatchObject({ uploaded: 1, upToDate: 0, files: 1 });
    expect(push.bytes + push.dedupBytes).toBe(model.size);
    // Nothing the push knew had landed is sent again.
    expect(push.dedupBytes).toBe(acknowledgedBytes);
    expect(push.bytes).toBe(model.size - acknowledgedBytes);
    // Measured against what is on the remote: when every landed pack was acknowledged
    // (the usual case), exactly the rest is uploaded; otherwise the in-flight packs the
    // push never heard back about are sent again.
    if (landedPacks.length === acknowledged.size) expect(push.bytes).toBe(model.size - landedChunkBytes);
    // The packs that landed are used as they are.
    const after = await listS3Objects(client, bucket, PREFIX);
    for (const p of landedPacks) expect(after.find((q) => q.key === p.key)?.etag, p.key).toBe(p.etag);
    expect(await keys('manifests/')).toEqual([objectPath('manifests', modelOid)]);

    const again = await cpvJson<PushJson>(a, ['push']);
    expect(again).toMatchObject({ upToDate: 1, uploaded: 0, bytes: 0 });

    const b = await cloneRepo(origin, join(root, 'b'), 'Bob');
    await giveKeys(b);
    const pull = await cpvJson<PullJson>(b, ['pull']);
    expect(pull.fetch).toMatchObject({ files: 1, bytes: model.size });
    expect(`b3:${await b3sum(join(b, 'model.safetensors'))}`).toBe(modelOid);
  });
});
