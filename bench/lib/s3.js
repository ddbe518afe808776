// The local Ceph radosgw for the benchmark: start/stop through test/servers/ceph.sh on
// ports and a state directory of its own, plus the bucket chores (create, measure,
// empty) done with the SDK so they never depend on a reference tool being installed.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CreateBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

export const CEPH = {
  port: 18281,
  root: '/tmp/cpv-ceph-bench',
  accessKey: 'cpvtest',
  secretKey: 'cpvtestsecret',
  region: 'us-east-1',
  get endpoint() {
    return `http://127.0.0.1:${this.port}`;
  },
};

function cephScript(repoRoot, action, memstoreBytes) {
  const env = { ...process.env, CPV_CEPH_PORT: String(CEPH.port), CPV_CEPH_ROOT: CEPH.root };
  if (memstoreBytes) env.CPV_CEPH_MEMSTORE_BYTES = String(memstoreBytes);
  const r = spawnSync('bash', [join(repoRoot, 'test/servers/ceph.sh'), action], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: r.status === 0, status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

/** Install (if needed) and start radosgw. Returns { ok, reason }. */
export function startCeph(repoRoot, memstoreBytes) {
  const inst = cephScript(repoRoot, 'install');
  if (!inst.ok) return { ok: false, reason: inst.out.split('\n').pop() };
  const st = cephScript(repoRoot, 'start', memstoreBytes);
  if (!st.ok) return { ok: false, reason: st.out.split('\n').slice(-3).join(' / ') };
  return { ok: true, reason: st.out.split('\n').pop() };
}

export function stopCeph(repoRoot) {
  return cephScript(repoRoot, 'stop');
}

/**
 * Let radosgw reclaim deleted objects now: it defers the data of deleted objects to a
 * garbage collector that by default waits two hours, and the memstore OSD keeps it in RAM.
 */
export function cephGc() {
  spawnSync('radosgw-admin', ['-c', join(CEPH.root, 'ceph.conf'), 'gc', 'process', '--include-all'], { stdio: 'ignore' });
}

// The harness itself runs on Node 20 too; the SDK's notice about Node 22 is not news here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let client;
function s3() {
  client ??= new S3Client({
    endpoint: CEPH.endpoint,
    region: CEPH.region,
    forcePathStyle: true,
    credentials: { accessKeyId: CEPH.accessKey, secretAccessKey: CEPH.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return client;
}

export async function ensureBucket(bucket) {
  try {
    await s3().send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes(err.name)) throw err;
  }
}

async function* listAll(bucket, prefix) {
  let token;
  do {
    const r = await s3().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    yield* r.Contents ?? [];
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
}

/** { objects, bytes } stored under a prefix. */
export async function prefixUsage(bucket, prefix) {
  let objects = 0;
  let bytes = 0;
  for await (const o of listAll(bucket, prefix)) {
    objects++;
    bytes += o.Size ?? 0;
  }
  return { objects, bytes };
}

/** Delete everything under a prefix (then run `cephGc` to free the memory). */
export async function deletePrefix(bucket, prefix) {
  let batch = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const r = await s3().send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
    if (r.Errors?.length) throw new Error(`delete ${bucket}/${prefix}: ${r.Errors[0].Code} ${r.Errors[0].Message}`);
    batch = [];
  };
  for await (const o of listAll(bucket, prefix)) {
    batch.push({ Key: o.Key });
    if (batch.length === 1000) await flush();
  }
  await flush();
}
