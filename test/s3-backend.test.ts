// The S3 backend against a real S3 server (Ceph radosgw by default, Swift with
// CPV_TEST_S3=swift, or any server named by CPV_TEST_S3_ENDPOINT): the same
// conformance suite the directory backend passes, plus what only S3 has (multipart
// uploads) and the errors users act on (wrong endpoint, missing bucket, bad keys).
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, NotFoundError, RemoteError } from '../packages/core/src/errors.js';
import { S3Backend, type S3Options } from '../packages/core/src/backend/s3.js';
import { backendConformance } from '../packages/core/src/backend/testing/conformance.js';
import { deleteBucketDeep, freshBucket, s3Config, s3ServerKind } from './setup/s3-env.js';
import { randomBytes } from './support/model.js';

const s3 = s3Config();
const MiB = 1024 * 1024;

function backend(bucket: string, over: Partial<S3Options> = {}): S3Backend {
  const c = s3!;
  return new S3Backend({
    bucket,
    prefix: 'cpv/',
    endpoint: c.endpoint,
    region: c.region,
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    // Small parts so the multipart path runs on test-sized objects.
    multipartThreshold: 6 * MiB,
    partSize: 5 * MiB,
    ...over,
  });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe.skipIf(!s3)('S3 backend', () => {
  const buckets: string[] = [];
  afterAll(async () => {
    for (const b of buckets) await deleteBucketDeep(b);
  });

  backendConformance(
    `conformance (${s3ServerKind() ?? 'none'})`,
    async () => {
      const bucket = await freshBucket('conf');
      buckets.push(bucket);
      const b = backend(bucket);
      return { backend: b, cleanup: () => b.close() };
    },
    // Swift answers 501 to conditional PUTs: the backend falls back to check-then-put,
    // which keeps single-writer semantics but cannot arbitrate a race.
    { supportsIfNoneMatch: s3ServerKind() !== 'swift' },
  );

  describe('multipart uploads', () => {
    let bucket: string;
    beforeAll(async () => {
      bucket = await freshBucket('mp');
      buckets.push(bucket);
    });

    it('uploads an object larger than the threshold in parts and reads back every byte', async () => {
      const b = backend(bucket);
      const data = randomBytes(7, 13 * MiB + 12345);
      async function* pieces(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < data.length; i += 1_000_003) yield data.subarray(i, i + 1_000_003);
      }
      await b.save('packs/big', pieces());
      expect((await b.stat('packs/big')).size).toBe(data.length);
      expect(Buffer.compare(Buffer.from(await b.load('packs/big')), Buffer.from(data))).toBe(0);
      const mid = await b.load('packs/big', { offset: 6 * MiB - 10, length: 20 });
      expect(Buffer.compare(Buffer.from(mid), Buffer.from(data.subarray(6 * MiB - 10, 6 * MiB + 10)))).toBe(0);
      await b.close();
    });

    it('a source that fails after parts were uploaded leaves no object and no open upload', async () => {
      const b = backend(bucket);
      async function* failing(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 3; i++) yield randomBytes(i, 5 * MiB);
        throw new Error('source broke');
      }
      await expect(b.save('packs/broken', failing())).rejects.toThrow('source broke');
      expect(await b.exists('packs/broken')).toBe(false);
      await b.close();
    });

    it('ifNoneMatch on an existing multipart-sized object is a conflict and keeps the old content', async () => {
      const b = backend(bucket);
      const first = randomBytes(1, 7 * MiB);
      await b.save('packs/once', first);
      const err = await rejection(b.save('packs/once', randomBytes(2, 7 * MiB), { ifNoneMatch: true }));
      expect((err as { code?: string }).code).toBe('CONFLICT');
      expect(Buffer.compare(Buffer.from(await b.load('packs/once')), Buffer.from(first))).toBe(0);
      await b.close();
    });
  });

  describe.skipIf(s3ServerKind() !== 'ceph')('per-remote upload options (Ceph)', () => {
    let bucket: string;
    beforeAll(async () => {
      bucket = await freshBucket('opts');
      buckets.push(bucket);
    });

    it('storage_class reaches the server: STANDARD is stored as such, an unknown class is refused with a hint', async () => {
      const ok = backend(bucket, { storageClass: 'STANDARD' });
      await ok.save('a', Buffer.from('a'));
      const head = await ok.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'cpv/a' }));
      expect(head.StorageClass ?? 'STANDARD').toBe('STANDARD');
      await ok.close();
      // This Ceph has no STANDARD_IA placement: it answers 400, which it would not if
      // the header were not sent.
      const ia = backend(bucket, { storageClass: 'STANDARD_IA' });
      const err = await rejection(ia.save('b', Buffer.from('b')));
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).message).toContain('does not accept storage class STANDARD_IA');
      expect((err as RemoteError).hint).toContain('storage_class');
      expect(await ia.exists('b')).toBe(false);
      await ia.close();
    });

    it('sse reaches the server: this Ceph has no key management, so AES256 is refused with a hint', async () => {
      const b = backend(bucket, { sse: 'AES256' });
      const err = await rejection(b.save('c', Buffer.from('c')));
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).message).toContain('encryption AES256');
      expect(await b.exists('c')).toBe(false);
      await b.close();
    });
  });

  describe('credentials from the AWS default chain', () => {
    let bucket: string;
    let saved: NodeJS.ProcessEnv;
    beforeAll(async () => {
      bucket = await freshBucket('chain');
      buckets.push(bucket);
    });
    const isolate = async (): Promise<string> => {
      saved = { ...process.env };
      for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
      process.env.AWS_EC2_METADATA_DISABLED = 'true';
      const dir = await mkdtemp(join(tmpdir(), 'cpv-aws-'));
      process.env.AWS_CONFIG_FILE = join(dir, 'config');
      process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'credentials');
      return dir;
    };
    const restore = (): void => {
      process.env = saved;
    };

    it('a profile from the shared credentials file', async () => {
      const dir = await isolate();
      try {
        await writeFile(join(dir, 'credentials'), `[ml-team]\naws_access_key_id = ${s3!.accessKeyId}\naws_secret_access_key = ${s3!.secretAccessKey}\n`);
        await writeFile(join(dir, 'config'), '');
        const b = backend(bucket, { accessKeyId: undefined, secretAccessKey: undefined, profile: 'ml-team' });
        await b.save('p', Buffer.from('profile'));
        expect(Buffer.from(await b.load('p')).toString()).toBe('profile');
        await b.close();
        // Another profile name finds no credentials: a ConfigError, not a hang.
        const wrong = backend(bucket, { accessKeyId: undefined, secretAccessKey: undefined, profile: 'nobody', maxAttempts: 1 });
        expect(await rejection(wrong.stat('p'))).toBeInstanceOf(ConfigError);
        await wrong.close();
      } finally {
        restore();
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)', async () => {
      const dir = await isolate();
      try {
        process.env.AWS_ACCESS_KEY_ID = s3!.accessKeyId;
        process.env.AWS_SECRET_ACCESS_KEY = s3!.secretAccessKey;
        const b = backend(bucket, { accessKeyId: undefined, secretAccessKey: undefined });
        await b.save('e', Buffer.from('env'));
        expect(Buffer.from(await b.load('e')).toString()).toBe('env');
        await b.close();
      } finally {
        restore();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('errors users act on', () => {
    it('a missing bucket is a RemoteError that says so', async () => {
      const b = backend('cpv-no-such-bucket-' + Date.now().toString(36));
      const err = await rejection(b.save('x', Buffer.from('x')));
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).message).toMatch(/bucket "cpv-no-such-bucket-[a-z0-9]+" does not exist/);
      await b.close();
    });

    it('a wrong secret is a RemoteError about the credentials', async () => {
      const bucket = await freshBucket('creds');
      buckets.push(bucket);
      const b = backend(bucket, { secretAccessKey: 'not-the-secret', maxAttempts: 1 });
      const err = await rejection(b.stat('anything'));
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).message).toMatch(/rejected the credentials|access denied/);
      await b.close();
    });

    it('an endpoint nobody listens on is a RemoteError saying it cannot be reached', async () => {
      const b = backend('whatever', { endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
      const err = await rejection(b.stat('x'));
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).message).toContain('cannot reach');
      await b.close();
    });

    it('a missing key is NotFoundError, and remove of it succeeds', async () => {
      const bucket = await freshBucket('missing');
      buckets.push(bucket);
      const b = backend(bucket);
      expect(await rejection(b.load('nope'))).toBeInstanceOf(NotFoundError);
      await b.remove('nope');
      await b.close();
    });

    it('no credentials at all is a ConfigError pointing at aws-config', async () => {
      const saved = { ...process.env };
      for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
      process.env.AWS_CONFIG_FILE = '/nonexistent/config';
      process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/credentials';
      process.env.AWS_EC2_METADATA_DISABLED = 'true';
      try {
        const b = backend('whatever', { accessKeyId: undefined, secretAccessKey: undefined, maxAttempts: 1 });
        const err = await rejection(b.stat('x'));
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).hint).toContain('cpv aws-config');
        await b.close();
      } finally {
        process.env = saved;
      }
    });
  });
});
