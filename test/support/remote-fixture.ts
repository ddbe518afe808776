// One interface over the kinds of cpv remote the end-to-end tests run against: how a
// clone is set up to use it, and how a test measures and fingerprints what is stored
// there. The same scenario then runs once per kind.
//
//   const remote = await directoryRemote(join(root, 'remote'));
//   const remote = await s3Remote('journey', 'team/cpv');   // a fresh bucket
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import { cpvJson } from './cpv.js';
import { dirBytes, listFiles, snapshotTree } from './fsutil.js';
import { deleteBucketDeep, freshBucket, s3Client, s3Config } from '../setup/s3-env.js';

/** What `cpv init --json` prints. */
export interface InitJson {
  root: string;
  created: string[];
  git: boolean;
}

/** A cpv remote used by a test, named `origin` in every clone. */
export interface RemoteFixture {
  readonly kind: 'directory' | 's3';
  /** The remote's URL as `.cpv/config` records it. */
  readonly url: string;
  /**
   * Make `clone` (a git work tree without `.cpv`) a cpv repository whose default remote
   * is this one, the way a user sets it up, and return what `cpv init` reported.
   * Credentials go to `.cpv/config.local`, never to the committed config (checked).
   */
  init(clone: string): Promise<InitJson>;
  /**
   * What a teammate does in a fresh git clone of that repository before the first
   * fetch: `.cpv/config.local` is git-ignored, so S3 keys have to be given again.
   */
  join(clone: string): Promise<void>;
  /** Every object on the remote, as sorted paths relative to its root. */
  keys(): Promise<string[]>;
  /** Total bytes stored on the remote. */
  bytes(): Promise<number>;
  /** Size of one object. */
  size(key: string): Promise<number>;
  /** The bytes of one object. */
  read(key: string): Promise<Buffer>;
  /** A fingerprint of every object: equal snapshots mean nothing was added, removed or changed. */
  snapshot(): Promise<Record<string, string>>;
  /**
   * What an interrupted or finished write may leave behind besides objects: files under
   * the directory remote's `.tmp/`, or open multipart uploads in the bucket. Empty when clean.
   */
  leftovers(): Promise<string[]>;
  /** Delete one object (a key as `keys()` lists it), as a damaged or pruned remote would lose it. */
  remove(key: string): Promise<void>;
  /** Remove what the fixture created on the server (the directory goes with the test's temp dir). */
  dispose(): Promise<void>;
}

/** A directory remote at `path` (created by cpv on first push). */
export async function directoryRemote(path: string): Promise<RemoteFixture> {
  return {
    kind: 'directory',
    url: path,
    async init(clone) {
      const init = await cpvJson<InitJson>(clone, ['init', '--remote', path]);
      expect(await readFile(join(clone, '.cpv', 'config'), 'utf8')).toContain(path);
      return init;
    },
    async join() {},
    keys: () => listFiles(path),
    bytes: () => dirBytes(path),
    size: async (key) => (await stat(join(path, ...key.split('/')))).size,
    read: (key) => readFile(join(path, ...key.split('/'))),
    snapshot: () => snapshotTree(path),
    leftovers: () => listFiles(join(path, '.tmp')),
    remove: (key) => rm(join(path, ...key.split('/'))),
    async dispose() {},
  };
}

/** One object of an S3 listing; `key` is relative to the listed prefix. */
export interface S3Object {
  key: string;
  size: number;
  etag: string;
}

/** Every object under `prefix` (`''` or ending in `/`) of `bucket`, sorted by key. */
export async function listS3Objects(client: S3Client, bucket: string, prefix: string): Promise<S3Object[]> {
  const out: S3Object[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      if (o.Key === undefined) continue;
      out.push({ key: o.Key.slice(prefix.length), size: o.Size ?? 0, etag: o.ETag ?? '' });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
}

/**
 * Keys of the multipart uploads still open under `prefix`, or null when the server
 * does not implement ListMultipartUploads.
 */
export async function openMultipartUploads(client: S3Client, bucket: string, prefix: string): Promise<string[] | null> {
  const out: string[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  try {
    for (;;) {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const u of page.Uploads ?? []) out.push(`${u.Key} (upload ${u.UploadId})`);
      if (!page.IsTruncated) return out;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NotImplemented' || e.$metadata?.httpStatusCode === 501) return null;
    throw err;
  }
}

/**
 * An S3 remote at `s3://<fresh bucket>/<prefix>/` on the test server, configured in each
 * clone with `cpv remote add --endpoint` and `cpv remote modify … access_key_id/
 * secret_access_key`. Requires `s3Config()`; `dispose` deletes the bucket.
 */
export async function s3Remote(bucketPrefix: string, prefix: string): Promise<RemoteFixture> {
  const config = s3Config();
  if (!config) throw new Error('no S3 test server (guard the suite with describe.skipIf(!s3Config()))');
  const bucket = await freshBucket(bucketPrefix);
  const url = `s3://${bucket}/${prefix}`;
  const keyPrefix = `${prefix}/`;
  const client = s3Client();
  const objects = () => listS3Objects(client, bucket, keyPrefix);
  const giveCredentials = async (clone: string): Promise<void> => {
    for (const [key, value] of [
      ['access_key_id', config.accessKeyId],
      ['secret_access_key', config.secretAccessKey],
    ] as const) {
      const r = await cpvJson<{ file: string }>(clone, ['remote', 'modify', 'origin', key, value]);
      expect(r.file).toMatch(/config\.local$/);
    }
    // The secret is in the git-ignored file only.
    expect(await readFile(join(clone, '.cpv', 'config.local'), 'utf8')).toContain(config.secretAccessKey);
    expect(await readFile(join(clone, '.cpv', 'config'), 'utf8')).not.toContain(config.secretAccessKey);
  };
  let warned = false;
  return {
    kind: 's3',
    url,
    async init(clone) {
      const init = await cpvJson<InitJson>(clone, ['init']);
      await cpvJson(clone, ['remote', 'add', 'origin', url, '--endpoint', config.endpoint, '--region', config.region, '--default']);
      await giveCredentials(clone);
      const committed = await readFile(join(clone, '.cpv', 'config'), 'utf8');
      expect(committed).toContain(url);
      expect(committed).toContain(config.endpoint);
      return init;
    },
    join: giveCredentials,
    keys: async () => (await objects()).map((o) => o.key),
    bytes: async () => (await objects()).reduce((n, o) => n + o.size, 0),
    async size(key) {
      const o = (await objects()).find((x) => x.key === key);
      if (!o) throw new Error(`${key} is not in ${url}`);
      return o.size;
    },
    async read(key) {
      const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: keyPrefix + key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    },
    snapshot: async () => Object.fromEntries((await objects()).map((o) => [o.key, `${o.size}:${o.etag}`])),
    async leftovers() {
      const open = await openMultipartUploads(client, bucket, keyPrefix);
      if (open === null && !warned) {
        warned = true;
        process.stderr.write(`${config.endpoint} does not implement ListMultipartUploads: open uploads not checked\n`);
      }
      return open ?? [];
    },
    async remove(key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: keyPrefix + key }));
    },
    dispose: () => deleteBucketDeep(bucket),
  };
}
