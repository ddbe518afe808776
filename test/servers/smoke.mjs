// Smoke check of an S3 test server: create a bucket, PUT / GET / LIST / DELETE one object,
// remove the bucket. Exits non-zero on the first failure.
//
//   node test/servers/smoke.mjs ceph     (http://127.0.0.1:18081, cpvtest / cpvtestsecret)
//   node test/servers/smoke.mjs swift    (http://127.0.0.1:18080, test:tester / testing)
//   CPV_TEST_S3_ENDPOINT=... CPV_TEST_S3_ACCESS_KEY=... CPV_TEST_S3_SECRET_KEY=... node test/servers/smoke.mjs
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

const presets = {
  ceph: { endpoint: `http://127.0.0.1:${process.env.CPV_CEPH_PORT || 18081}`, accessKeyId: 'cpvtest', secretAccessKey: 'cpvtestsecret' },
  swift: { endpoint: `http://127.0.0.1:${process.env.CPV_SWIFT_PORT || 18080}`, accessKeyId: 'test:tester', secretAccessKey: 'testing' },
};
const which = process.argv[2];
const cfg = which
  ? presets[which]
  : {
      endpoint: process.env.CPV_TEST_S3_ENDPOINT,
      accessKeyId: process.env.CPV_TEST_S3_ACCESS_KEY,
      secretAccessKey: process.env.CPV_TEST_S3_SECRET_KEY,
    };
if (!cfg || !cfg.endpoint || !cfg.accessKeyId || !cfg.secretAccessKey) {
  console.error('usage: node smoke.mjs ceph|swift, or set CPV_TEST_S3_ENDPOINT / _ACCESS_KEY / _SECRET_KEY');
  process.exit(2);
}

const s3 = new S3Client({
  endpoint: cfg.endpoint,
  region: process.env.CPV_TEST_S3_REGION || 'us-east-1',
  credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  maxAttempts: 1,
});

const t0 = performance.now();
const step = (what) => console.log(`  ${what} ok (${Math.round(performance.now() - t0)} ms)`);
const fail = (what) => {
  throw new Error(what);
};
const sha = (b) => createHash('sha256').update(b).digest('hex');

const bucket = `cpv-smoke-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const key = 'dir/object with space.bin';
const data = randomBytes(3 * 1024 * 1024 + 17);
console.log(`smoke: ${cfg.endpoint} bucket ${bucket}`);
try {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  step('CreateBucket');
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data, Metadata: { 'cpv-hash': sha(data) } }));
  step('PutObject (Buffer)');
  const streamed = randomBytes(1024 * 1024);
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: 'dir/streamed.bin', Body: Readable.from([streamed]), ContentLength: streamed.length }),
  );
  step('PutObject (stream)');
  const got = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body.transformToByteArray());
  if (!got.equals(data)) fail(`GetObject returned ${got.length} bytes that differ from the ${data.length} put`);
  const gotStreamed = Buffer.from(
    await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/streamed.bin' }))).Body.transformToByteArray(),
  );
  if (!gotStreamed.equals(streamed)) fail(`streamed object came back as ${gotStreamed.length} different bytes`);
  step('GetObject');
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  if (head.ContentLength !== data.length || head.Metadata?.['cpv-hash'] !== sha(data))
    fail(`HeadObject: length ${head.ContentLength}, metadata ${JSON.stringify(head.Metadata)}`);
  step('HeadObject');
  const list = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'dir/' }));
  const keys = (list.Contents ?? []).map((o) => o.Key).sort();
  if (keys.join('|') !== [key, 'dir/streamed.bin'].sort().join('|')) fail(`ListObjectsV2: ${JSON.stringify(keys)}`);
  step('ListObjectsV2');
  for (const k of keys) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
  const after = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  if ((after.KeyCount ?? 0) !== 0) fail(`objects left after delete: ${after.KeyCount}`);
  step('DeleteObject');
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  step('DeleteBucket');
  console.log(`smoke: PASS in ${Math.round(performance.now() - t0)} ms`);
} catch (e) {
  console.error(`smoke: FAIL: ${e?.name ?? 'Error'} (HTTP ${e?.$metadata?.httpStatusCode ?? '-'}): ${e?.message ?? e}`);
  process.exit(1);
}
