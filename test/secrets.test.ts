// Credentials never leak: an S3 remote is used with keys from `.cpv/config.local`, from
// the environment and from a profile in a shared credentials file; every command that
// touches it runs with and without --json, and errors are provoked (a wrong secret, a
// session token the server does not know, an endpoint that does not answer). Then every
// byte cpv printed and every file under the clones (git and .cpv included), the origin,
// HOME and the bucket is searched for the secret (and the access key). The only place
// a secret may be is `.cpv/config.local`, which must be readable by its owner only.
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCpv, useHome, type CpvResult } from './support/cpv.js';
import { cloneRepo, commitAll, git, makeOrigin, pushGit } from './support/git.js';
import { randomBytes, writeDataset, writeModel } from './support/model.js';
import { listFiles, makeTempDir, removeTempDir } from './support/fsutil.js';
import { listS3Objects } from './support/remote-fixture.js';
import { deleteBucketDeep, freshBucket, s3Config, s3ServerKind } from './setup/s3-env.js';

const MiB = 1024 * 1024;
const s3 = s3Config();
const tag = cryptoRandomBytes(8).toString('hex');
/** Credentials that must never show up anywhere, working or not. */
const FAKE = {
  secret: `WrongSecret${tag}Zq`,
  token: `SessionToken${tag}Xv`,
};

/**
 * Credentials for this test alone. On the local Ceph server: a user of its own with
 * keys made for this run (so a match can mean nothing but a leak); elsewhere the test
 * server's keys. `dispose` removes what was created.
 */
async function distinctiveCredentials(): Promise<{ accessKeyId: string; secretAccessKey: string; bucket: string; client: S3Client; dispose: () => Promise<void> }> {
  const base = s3!;
  const conf = join(process.env.CPV_CEPH_ROOT || `/tmp/cpv-ceph-${process.getuid!()}`, 'ceph.conf');
  if (s3ServerKind() === 'ceph') {
    const uid = `cpv-secrets-${tag}`;
    const keys = { accessKeyId: `CPVKEY${tag.toUpperCase()}`, secretAccessKey: `CpvSecret${tag}${cryptoRandomBytes(6).toString('hex')}` };
    const made = await execa('radosgw-admin', ['-c', conf, 'user', 'create', `--uid=${uid}`, `--display-name=${uid}`, `--access-key=${keys.accessKeyId}`, `--secret-key=${keys.secretAccessKey}`], { reject: false });
    if (made.exitCode === 0) {
      const client = new S3Client({ endpoint: base.endpoint, region: base.region, credentials: keys, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
      const bucket = `secrets-${tag}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      return {
        ...keys,
        bucket,
        client,
        dispose: async () => {
          client.destroy();
          await execa('radosgw-admin', ['-c', conf, 'user', 'rm', `--uid=${uid}`, '--purge-data'], { reject: false });
        },
      };
    }
  }
  const bucket = await freshBucket('secrets');
  const { s3Client } = await import('./setup/s3-env.js');
  return { accessKeyId: base.accessKeyId, secretAccessKey: base.secretAccessKey, bucket, client: s3Client(), dispose: () => deleteBucketDeep(bucket) };
}

describe.skipIf(!s3)('secrets: credentials never reach output, logs, committed files, the cache or the remote', () => {
  let root: string;
  let origin: string;
  let creds: Awaited<ReturnType<typeof distinctiveCredentials>>;
  let a: string; // keys in .cpv/config.local
  let b: string; // keys in the environment
  let c: string; // keys in a profile of ~/.aws/credentials
  /** Everything cpv printed: which command (arguments masked) and its stdout and stderr. */
  const printed: Array<{ cmd: string; out: string }> = [];
  // No instance-metadata lookups: there is no EC2 here, only waiting.
  const baseEnv = { AWS_EC2_METADATA_DISABLED: 'true' };

  /** Run cpv and keep everything it printed. */
  const cpv = async (cwd: string, args: string[], env: Record<string, string> = {}): Promise<CpvResult> => {
    const r = await runCpv(cwd, args, { env: { ...baseEnv, ...env } });
    printed.push({ cmd: `cpv ${args.slice(0, 3).join(' ')}`, out: `${r.stdout}\n${r.stderr}` });
    return r;
  };
  /** Run cpv with and without --json; each must exit `exit`. */
  const both = async (cwd: string, args: string[], exit: number, env: Record<string, string> = {}): Promise<void> => {
    for (const extra of [[], ['--json']]) {
      const r = await cpv(cwd, [...args, ...extra], env);
      expect(r.exitCode, `cpv ${[...args, ...extra].join(' ')}: ${r.stderr}`).toBe(exit);
    }
  };
  const envKeys = () => ({ AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey });
  /** Replace one option in A's config.local for the duration of `fn`. */
  const withLocalOption = async (key: string, value: string, fn: () => Promise<void>): Promise<void> => {
    const file = join(a, '.cpv', 'config.local');
    const saved = await readFile(file);
    expect((await cpv(a, ['remote', 'modify', 'origin', key, value, '--local'])).exitCode).toBe(0);
    try {
      await fn();
    } finally {
      await writeFile(file, saved);
    }
  };

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('secrets');
    const home = useHome(join(root, 'home'));
    creds = await distinctiveCredentials();
    origin = await makeOrigin(join(root, 'origin.git'));
    const url = `s3://${creds.bucket}/team/cpv`;

    a = await cloneRepo(origin, join(root, 'a'), 'Alice');
    expect((await cpv(a, ['init'])).exitCode).toBe(0);
    expect((await cpv(a, ['remote', 'add', 'origin', url, '--endpoint', s3!.endpoint, '--region', s3!.region, '--default'])).exitCode).toBe(0);
    for (const [key, value] of [
      ['access_key_id', creds.accessKeyId],
      ['secret_access_key', creds.secretAccessKey],
    ] as const) {
      const r = await cpv(a, ['remote', 'modify', 'origin', key, value]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain('(hidden)');
    }
    await commitAll(a, 'cpv init');
    await pushGit(a);

    b = await cloneRepo(origin, join(root, 'b'), 'Bob');
    c = await cloneRepo(origin, join(root, 'c'), 'Carol');
    await mkdir(join(home, '.aws'), { recursive: true });
    await writeFile(join(home, '.aws', 'credentials'), `[ml-team]\naws_access_key_id = ${creds.accessKeyId}\naws_secret_access_key = ${creds.secretAccessKey}\n`);
    await chmod(join(home, '.aws', 'credentials'), 0o600);
    expect((await cpv(c, ['remote', 'modify', 'origin', 'profile', 'ml-team', '--local'])).exitCode).toBe(0);
  });
  afterAll(async () => {
    await creds?.dispose();
    await removeTempDir(root);
  });

  it('keys in .cpv/config.local: add, status, push, fetch, doctor, remote list and config, text and --json', async () => {
    await writeModel(join(a, 'model.safetensors'), { seed: 91, tensors: 8, bytes: 2 * MiB });
    await writeDataset(join(a, 'data'), { seed: 92, files: 20 });
    await both(a, ['add', 'model.safetensors', '--kind', 'model'], 0);
    await both(a, ['add', 'data', '--kind', 'data'], 0);
    await commitAll(a, 'model and data');
    await pushGit(a);
    await both(a, ['status', '-r', 'origin'], 0);
    await both(a, ['push'], 0);
    await both(a, ['fetch'], 0);
    await both(a, ['doctor'], 0);
    await both(a, ['remote', 'list'], 0);
    await both(a, ['config', 'core.remote'], 0);
    await both(a, ['config', 'core.pack_size', String(4 * MiB), '--local'], 0);
    expect((await cpv(a, ['tag', 'create', 'v1', '--model', 'model.safetensors', '--data', 'data', '-m', 'first', '--json'])).exitCode).toBe(0);
    await both(a, ['tag', 'verify', 'v1'], 0);
    // The key file: the owner alone may read it.
    expect((await stat(join(a, '.cpv', 'config.local'))).mode & 0o777).toBe(0o600);
  });

  it('keys in the environment and in a profile: pull, status, doctor, push', async () => {
    await git(b, ['pull', '--quiet']);
    await git(c, ['pull', '--quiet']);
    await both(b, ['pull'], 0, envKeys());
    await both(b, ['status', '-r', 'origin'], 0, envKeys());
    await both(b, ['doctor'], 0, envKeys());
    await both(c, ['pull'], 0);
    await both(c, ['doctor'], 0);
    await writeFile(join(c, 'notes.bin'), randomBytes(93, 100_000));
    await both(c, ['add', 'notes.bin'], 0);
    await both(c, ['push'], 0);
  });

  it('errors (a wrong secret, an unknown session token, a dead endpoint, a missing profile) print no credentials', async () => {
    await writeFile(join(a, 'extra.bin'), randomBytes(94, 50_000));
    await both(a, ['add', 'extra.bin'], 0);
    /**
     * Run each of `runs`. push and doctor always ask the remote: with `mustFail` they
     * must fail (cleanly). pull and status may have nothing to ask it. None may crash.
     */
    const attempt = async (clone: string, mustFail: boolean, runs: string[][], env: Record<string, string> = {}) => {
      for (const args of runs) {
        const r = await cpv(clone, args, env);
        if (mustFail && (args[0] === 'push' || args[0] === 'doctor')) expect(r.exitCode, `cpv ${args.join(' ')} should fail`).not.toBe(0);
        expect(r.stderr).not.toMatch(/internal error/);
      }
    };
    const all = [['push'], ['push', '--json'], ['doctor'], ['doctor', '--json'], ['pull'], ['status', '-r', 'origin', '--json']];
    await withLocalOption('secret_access_key', FAKE.secret, () => attempt(a, true, all));
    await withLocalOption('endpoint', 'http://127.0.0.1:9', () => attempt(a, true, [['push', '--json'], ['doctor']]));
    // A token the server never issued: some servers refuse it, some ignore it.
    await withLocalOption('session_token', FAKE.token, () => attempt(a, false, [['push', '--json'], ['doctor', '--json']]));
    await attempt(b, true, [['push'], ['doctor', '--json']], { AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: FAKE.secret });
    await attempt(b, true, [['push', '--json']], { AWS_PROFILE: 'nobody' });
    await attempt(b, false, [['push']], { ...envKeys(), AWS_SESSION_TOKEN: FAKE.token });
    // And the good keys work again afterwards.
    await both(a, ['push'], 0);
  });

  it('no secret in anything printed, any file written, or any object on the remote', async () => {
    const secrets = [creds.secretAccessKey, FAKE.secret, FAKE.token];
    const leaks = (where: string, text: string | Buffer, alsoKeyId = true): string[] => {
      const s = typeof text === 'string' ? text : text.toString('latin1');
      return [...secrets, ...(alsoKeyId ? [creds.accessKeyId] : [])].filter((x) => s.includes(x)).map((x) => `${where} contains ${x === creds.accessKeyId ? 'the access key' : x === creds.secretAccessKey ? 'the secret key' : x}`);
    };
    const found: string[] = [];
    expect(printed.length).toBeGreaterThan(40);
    for (const { cmd, out } of printed) found.push(...leaks(`output of ${cmd}`, out));

    // Every file under the clones (git and .cpv included), the origin and HOME. The
    // secret may live in config.local (by design) and in the credentials file the test wrote.
    const allowed = new Set([join(a, '.cpv', 'config.local'), join(root, 'home', '.aws', 'credentials')]);
    for (const dir of [a, b, c, origin, join(root, 'home')]) {
      for (const rel of await listFiles(dir)) {
        const file = join(dir, rel);
        if (allowed.has(file)) continue;
        found.push(...leaks(file, await readFile(file)));
      }
    }
    // git history, uncompressed: nothing committed ever held a key.
    for (const clone of [a, b, c]) found.push(...leaks(`git history of ${clone}`, await git(clone, ['log', '--all', '-p', '--format=%H %B'])));
    // Every object on the remote.
    const objects = await listS3Objects(creds.client, creds.bucket, '');
    expect(objects.length).toBeGreaterThan(3);
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    for (const o of objects) {
      const body = await (await creds.client.send(new GetObjectCommand({ Bucket: creds.bucket, Key: o.key }))).Body!.transformToByteArray();
      found.push(...leaks(`s3://${creds.bucket}/${o.key}`, Buffer.from(body)));
    }
    expect(found).toEqual([]);

    // config.local holds the keys, for its owner only.
    const local = await readFile(join(a, '.cpv', 'config.local'), 'utf8');
    expect(local).toContain(creds.secretAccessKey);
    expect((await stat(join(a, '.cpv', 'config.local'))).mode & 0o777).toBe(0o600);
  });
});
