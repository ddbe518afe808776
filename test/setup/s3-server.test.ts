// The S3 test infrastructure itself: the server from the global setup answers, and the
// helpers create, fill and remove buckets.
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { deleteBucketDeep, freshBucket, s3Client, s3Config, uniqueBucketName } from './s3-env.js';

describe('uniqueBucketName', () => {
  it('makes valid, distinct S3 bucket names from any prefix', () => {
    const names = ['cpv-test', 'Weird_Prefix!!', '', 'x', 'a'.repeat(100), '--edge--'].map((p) => uniqueBucketName(p));
    for (const n of names) expect(n).toMatch(/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/);
    expect(new Set(names).size).toBe(names.length);
    expect(uniqueBucketName('same')).not.toBe(uniqueBucketName('same'));
  });
});

describe.skipIf(!s3Config())('S3 test server', () => {
  it('exports its endpoint to child processes', () => {
    expect(process.env.CPV_TEST_S3_ENDPOINT).toBe(s3Config()?.endpoint);
    expect(process.env.CPV_TEST_S3_ACCESS_KEY).toBe(s3Config()?.accessKeyId);
  });

  it('round-trips objects (buffer and stream bodies, 2 KiB of metadata) and deletes a full bucket', async () => {
    const s3 = s3Client();
    const bucket = await freshBucket('infra');
    try {
      const data = randomBytes(256 * 1024);
      // 8 values of 250 bytes: AWS allows 2 KiB of user metadata in total.
      const Metadata = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`m${i}`, 'v'.repeat(250)]));
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'a/blob', Body: data, Metadata }));
      await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: 'a/stream', Body: Readable.from([data.subarray(0, 1000)]), ContentLength: 1000 }),
      );
      for (let i = 0; i < 5; i++) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `b/${i}`, Body: `x${i}` }));
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'a/blob' }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(data)).toBe(true);
      const streamed = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'a/stream' }));
      expect(Buffer.from(await streamed.Body!.transformToByteArray()).equals(data.subarray(0, 1000))).toBe(true);
      expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'a/blob' }))).Metadata).toEqual(Metadata);
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
      expect(listed.KeyCount).toBe(7);
    } finally {
      await deleteBucketDeep(bucket);
    }
    await expect(s3.send(new HeadBucketCommand({ Bucket: bucket }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    await deleteBucketDeep(bucket); // already gone: not an error
  });
});
