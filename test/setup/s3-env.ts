// S3 helpers for tests: the server chosen by the global setup in ./s3-server.ts, a client
// configured for it, throwaway buckets and their removal.
//
//   const s3 = s3Config();
//   describe.skipIf(!s3)('s3 remote', () => {
//     let bucket: string;
//     beforeAll(async () => { bucket = await freshBucket('remote'); });
//     afterAll(async () => { await deleteBucketDeep(bucket); });
//   });
import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import type { S3TestConfig } from './s3-server.js';

export type { S3TestConfig };

/** Endpoint and credentials of the S3 test server, or null when S3 tests are to be skipped. */
export function s3Config(): Pick<S3TestConfig, 'endpoint' | 'accessKeyId' | 'secretAccessKey' | 'region'> | null {
  const provided = inject('s3');
  if (!provided) return null;
  const { endpoint, accessKeyId, secretAccessKey, region } = provided;
  return { endpoint, accessKeyId, secretAccessKey, region };
}

/** Which server the tests run against (`ceph`, `swift` or `external`), or null. */
export function s3ServerKind(): S3TestConfig['server'] | null {
  return inject('s3')?.server ?? null;
}

function requireConfig(): NonNullable<ReturnType<typeof s3Config>> {
  const config = s3Config();
  if (!config) throw new Error('no S3 test server (guard the suite with describe.skipIf(!s3Config()))');
  return config;
}

let client: S3Client | undefined;

/**
 * An S3 client for the test server: path-style addressing, and checksums only where an
 * operation requires them (with the SDK's default, streamed bodies go out as aws-chunked
 * with a trailing checksum, which radosgw and Swift reject).
 */
export function s3Client(): S3Client {
  if (!client) {
    const { endpoint, accessKeyId, secretAccessKey, region } = requireConfig();
    client = new S3Client({
      endpoint,
      region,
      credentials: { accessKeyId, secretAccessKey },
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }
  return client;
}

/** A valid, unique bucket name: `<prefix>-<time>-<random>`, at most 63 characters. */
export function uniqueBucketName(prefix = 'cpv-test'): string {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40)
      .replace(/-+$/, '') || 'cpv-test';
  return `${clean.length < 3 ? `cpv-${clean}` : clean}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Creates an empty bucket with a unique name (starting with `prefix`) and returns its name. */
export async function freshBucket(prefix?: string): Promise<string> {
  const name = uniqueBucketName(prefix);
  await s3Client().send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

function isNoSuchBucket(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === 'NoSuchBucket' || err?.$metadata?.httpStatusCode === 404;
}

/**
 * Deletes a bucket with everything in it: pending multipart uploads, then every object
 * (one request per object, as Swift's DeleteObjects wants a Content-MD5 that the SDK no
 * longer sends), then the bucket. A bucket that does not exist is not an error.
 */
export async function deleteBucketDeep(name: string): Promise<void> {
  const s3 = s3Client();
  try {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: name, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const u of page.Uploads ?? []) {
        if (u.Key && u.UploadId) await s3.send(new AbortMultipartUploadCommand({ Bucket: name, Key: u.Key, UploadId: u.UploadId }));
      }
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: name, ContinuationToken: token }));
      const keys = (page.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [o.Key]));
      for (let i = 0; i < keys.length; i += 16) {
        await Promise.all(keys.slice(i, i + 16).map((Key) => s3.send(new DeleteObjectCommand({ Bucket: name, Key }))));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    await s3.send(new DeleteBucketCommand({ Bucket: name }));
  } catch (e) {
    if (isNoSuchBucket(e)) return;
    throw e;
  }
}
