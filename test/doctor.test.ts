// `cpv doctor` names what is wrong with a remote: each failure is a different check with
// its own message, so a user can tell an unreachable endpoint from a missing bucket, a
// wrong secret from a key that may read but not write, and a broken git remote from a
// working one. Runs against the S3 test server; the directory and git cases need none.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PutBucketPolicyCommand } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cpvJson, cpvJsonResult, useHome } from './support/cpv.js';
import { cloneRepo, commitAll, git, makeOrigin, pushGit } from './support/git.js';
import { makeTempDir, removeTempDir } from './support/fsutil.js';
import { listS3Objects } from './support/remote-fixture.js';
import { deleteBucketDeep, freshBucket, s3Client, s3Config, s3ServerKind, uniqueBucketName } from './setup/s3-env.js';

const s3 = s3Config();

interface DoctorCheck {
  check: string;
  ok: boolean;
  detail: string;
  hint?: string;
}
interface DoctorJson {
  ok: boolean;
  checks: DoctorCheck[];
}

/** The checks of a doctor run, by name. */
function byCheck(r: DoctorJson): Record<string, DoctorCheck> {
  return Object.fromEntries(r.checks.map((c) => [c.check, c]));
}

/** Names of the failed checks. */
function failed(r: DoctorJson): string[] {
  return r.checks.filter((c) => !c.ok).map((c) => c.check);
}

describe.skipIf(!s3)('doctor: tells apart what is wrong with a remote', () => {
  let root: string;
  let origin: string;
  let a: string;
  let bucket: string;
  /** A radosgw user created for the read-only case, removed in afterAll. */
  let readOnlyUser: string | undefined;

  const doctor = (args: string[]) => cpvJsonResult<DoctorJson>(a, ['doctor', ...args]);
  /** Add an S3 remote over `url` on `endpoint` with the given keys (keys go to config.local). */
  const addS3 = async (name: string, url: string, keys: { id: string; secret: string }, endpoint = s3!.endpoint): Promise<void> => {
    await cpvJson(a, ['remote', 'add', name, url, '--endpoint', endpoint, '--region', s3!.region]);
    await cpvJson(a, ['remote', 'modify', name, 'access_key_id', keys.id]);
    await cpvJson(a, ['remote', 'modify', name, 'secret_access_key', keys.secret]);
  };
  const goodKeys = () => ({ id: s3!.accessKeyId, secret: s3!.secretAccessKey });

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('doctor');
    useHome(join(root, 'home'));
    origin = await makeOrigin(join(root, 'origin.git'));
    a = await cloneRepo(origin, join(root, 'a'), 'Alice');
    await cpvJson(a, ['init']);
    await commitAll(a, 'Initialize cpv');
    await pushGit(a);
    bucket = await freshBucket('doctor');
    await addS3('origin', `s3://${bucket}/cpv`, goodKeys());
    await cpvJson(a, ['remote', 'default', 'origin']);
  });
  afterAll(async () => {
    if (bucket) await deleteBucketDeep(bucket);
    if (readOnlyUser) await radosgwAdmin(['user', 'rm', `--uid=${readOnlyUser}`]).catch(() => undefined);
    await removeTempDir(root);
  });

  it('all good: every check passes, exit 0, and the probe object is gone', async () => {
    const r = await doctor([]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json.ok).toBe(true);
    expect(failed(r.json)).toEqual([]);
    expect(r.json.checks.map((c) => c.check)).toEqual([
      'hashing',
      'cache',
      'remote origin: list',
      'remote origin: write',
      'remote origin: read',
      'remote origin: delete',
      'git remote origin',
    ]);
    expect(byCheck(r.json)['remote origin: list']!.detail).toContain(`s3://${bucket}/cpv/`);
    // The probe went under tmp/ and was deleted again.
    expect(await listS3Objects(s3Client(), bucket, 'cpv/')).toEqual([]);
  });

  it('wrong endpoint: the list check fails saying it cannot reach the remote', async () => {
    await addS3('nowhere', `s3://${bucket}/cpv`, goodKeys(), 'http://127.0.0.1:9');
    const r = await doctor(['-r', 'nowhere', '--no-git']);
    expect(r.exitCode).toBe(1);
    expect(r.json.ok).toBe(false);
    // Nothing past an unreachable list is tried.
    expect(r.json.checks.map((c) => c.check)).toEqual(['hashing', 'cache', 'remote nowhere: list']);
    const list = byCheck(r.json)['remote nowhere: list']!;
    expect(list.ok).toBe(false);
    expect(list.detail).toMatch(/^cannot reach s3:\/\/.* at http:\/\/127\.0\.0\.1:9/);
    expect(list.hint).toMatch(/endpoint/);
  });

  it('missing bucket: the list check fails saying the bucket does not exist', async () => {
    const missing = uniqueBucketName('doctor-missing');
    await addS3('nobucket', `s3://${missing}/cpv`, goodKeys());
    const r = await doctor(['-r', 'nobucket', '--no-git']);
    expect(r.exitCode).toBe(1);
    expect(failed(r.json)).toEqual(['remote nobucket: list']);
    const list = byCheck(r.json)['remote nobucket: list']!;
    expect(list.detail).toContain(`bucket "${missing}" does not exist`);
    expect(list.hint).toMatch(/create the bucket/);
  });

  it('wrong secret: the list check fails saying the credentials were rejected', async () => {
    await addS3('badkeys', `s3://${bucket}/cpv`, { id: s3!.accessKeyId, secret: 'not-the-secret' });
    const r = await doctor(['-r', 'badkeys', '--no-git']);
    expect(r.exitCode).toBe(1);
    expect(failed(r.json)).toEqual(['remote badkeys: list']);
    const list = byCheck(r.json)['remote badkeys: list']!;
    expect(list.detail).toMatch(/rejected the credentials \((SignatureDoesNotMatch|InvalidAccessKeyId)\)/);
    // A bad key is not a missing permission: the fix is the key, not a policy.
    expect(list.detail).not.toMatch(/lack/);
    expect(list.hint).toMatch(/access key and secret/);
  });

  // Ceph only: a second radosgw user that a bucket policy lets list and read, nothing more.
  it.skipIf(s3ServerKind() !== 'ceph')('read-only key: list passes, write fails naming s3:PutObject', async () => {
    readOnlyUser = `cpv-ro-${randomBytes(4).toString('hex')}`;
    const keys = { id: `ro${randomBytes(8).toString('hex')}`, secret: randomBytes(20).toString('hex') };
    await radosgwAdmin(['user', 'create', `--uid=${readOnlyUser}`, `--display-name=${readOnlyUser}`, `--access-key=${keys.id}`, `--secret-key=${keys.secret}`]);
    const policy = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: [`arn:aws:iam:::user/${readOnlyUser}`] },
          Action: ['s3:ListBucket', 's3:GetObject'],
          Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`],
        },
      ],
    };
    await s3Client().send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(policy) }));
    await addS3('readonly', `s3://${bucket}/cpv`, keys);

    const r = await doctor(['-r', 'readonly', '--no-git']);
    expect(r.exitCode).toBe(1);
    expect(r.json.checks.map((c) => [c.check, c.ok])).toEqual([
      ['hashing', true],
      ['cache', true],
      ['remote readonly: list', true],
      ['remote readonly: write', false],
    ]);
    const write = byCheck(r.json)['remote readonly: write']!;
    expect(write.detail).toMatch(/^access denied: the credentials lack s3:PutObject/);
    expect(write.hint).toContain('s3:PutObject');
    // The owner's key still does everything.
    expect((await doctor(['-r', 'origin', '--no-git'])).json.ok).toBe(true);
  });

  it('a directory remote and a git remote on disk pass; a git remote at a missing path fails', async () => {
    await cpvJson(a, ['remote', 'add', 'dir', join(root, 'dir-remote')]);
    const good = await doctor(['-r', 'dir']);
    expect(good.exitCode, good.stderr).toBe(0);
    expect(good.json.checks.map((c) => [c.check, c.ok])).toEqual([
      ['hashing', true],
      ['cache', true],
      ['remote dir: list', true],
      ['remote dir: write', true],
      ['remote dir: read', true],
      ['remote dir: delete', true],
      ['git remote origin', true],
    ]);
    expect(byCheck(good.json)['git remote origin']!.detail).toContain(origin);

    const nowhere = join(root, 'no-such-repo.git');
    expect(existsSync(nowhere)).toBe(false);
    await git(a, ['remote', 'add', 'broken', nowhere]);
    const bad = await doctor(['-r', 'dir']);
    expect(bad.exitCode).toBe(1);
    expect(bad.json.ok).toBe(false);
    expect(failed(bad.json)).toEqual(['git remote broken']);
    const broken = byCheck(bad.json)['git remote broken']!;
    expect(broken.detail).toContain(nowhere);
    expect(broken.detail).toMatch(/does not appear to be a git repository|not found/);
    expect(broken.hint).toMatch(/repository path/);
    expect(byCheck(bad.json)['git remote origin']!.ok).toBe(true);
  });
});

/** Run radosgw-admin against the Ceph test server started by test/servers/ceph.sh. */
async function radosgwAdmin(args: string[]): Promise<string> {
  const conf = join(process.env.CPV_CEPH_ROOT || `/tmp/cpv-ceph-${process.getuid!()}`, 'ceph.conf');
  if (!existsSync(conf)) throw new Error(`no Ceph config at ${conf} (is the Ceph test server running from test/servers/ceph.sh?)`);
  const r = await execa('radosgw-admin', ['-c', conf, ...args], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`radosgw-admin ${args.join(' ')} exited ${r.exitCode}\n${r.stderr}`);
  return String(r.stdout);
}
