// `cpv aws-config` in scripted mode: writes the remote (keys only in the git-ignored
// config.local), then checks it, and fails loudly when the remote does not work.
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cpvJson, cpvJsonResult, runCpv, useHome } from './support/cpv.js';
import { cloneRepo, gitDirty, makeOrigin } from './support/git.js';
import { makeTempDir, removeTempDir } from './support/fsutil.js';
import { deleteBucketDeep, freshBucket, s3Config } from './setup/s3-env.js';

const s3 = s3Config();

interface Check {
  check: string;
  ok: boolean;
  detail: string;
}

describe.skipIf(!s3)('aws-config (scripted)', () => {
  let root: string;
  let repo: string;
  let bucket: string;

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('aws-config');
    useHome(join(root, 'home'));
    repo = await cloneRepo(await makeOrigin(join(root, 'origin.git')), join(root, 'repo'));
    await cpvJson(repo, ['init']);
    bucket = await freshBucket('awsconfig');
  });
  afterAll(async () => {
    await deleteBucketDeep(bucket);
    await removeTempDir(root);
  });

  const keys = () => ['--access-key-id', s3!.accessKeyId, '--secret-access-key', s3!.secretAccessKey];

  it('writes a working remote, keeps the keys out of git, and verifies every permission', async () => {
    const r = await cpvJson<{ name: string; url: string; verified: boolean; checks: Check[] }>(repo, [
      'aws-config',
      '--bucket',
      bucket,
      '--prefix',
      'team-a/',
      '--endpoint',
      s3!.endpoint,
      '--region',
      s3!.region,
      ...keys(),
    ]);
    expect(r).toMatchObject({ name: 'origin', url: `s3://${bucket}/team-a`, verified: true });
    expect(r.checks.map((c) => [c.check, c.ok])).toEqual([
      ['hashing', true],
      ['cache', true],
      ['remote origin: list', true],
      ['remote origin: write', true],
      ['remote origin: read', true],
      ['remote origin: delete', true],
    ]);
    const committed = await readFile(join(repo, '.cpv', 'config'), 'utf8');
    expect(committed).toContain(`url: s3://${bucket}/team-a`);
    expect(committed).toContain(`endpoint: ${s3!.endpoint}`);
    expect(committed).not.toContain(s3!.secretAccessKey);
    expect(committed).not.toContain(s3!.accessKeyId);
    expect(await readFile(join(repo, '.cpv', 'config.local'), 'utf8')).toContain(`secret_access_key: ${s3!.secretAccessKey}`);
    // git sees the committed config, never the local one.
    expect((await gitDirty(repo)).some((l) => l.includes('config.local'))).toBe(false);
  });

  it('exits non-zero and names the problem when the bucket does not exist', async () => {
    const r = await cpvJsonResult<{ verified: boolean; checks: Check[] }>(repo, [
      'aws-config',
      '--name',
      'nobucket',
      '--bucket',
      `${bucket}-missing`,
      '--endpoint',
      s3!.endpoint,
      '--no-default',
      ...keys(),
    ]);
    expect(r.exitCode).toBe(1);
    const list = r.json?.checks.find((c) => c.check === 'remote nobucket: list');
    expect(list).toMatchObject({ ok: false });
    expect(list?.detail).toContain('does not exist');
  });

  it('refuses half a key pair and a missing bucket without a terminal', async () => {
    const half = await runCpv(repo, ['aws-config', '--name', 'half', '--bucket', bucket, '--access-key-id', 'x']);
    expect(half.exitCode).toBe(2);
    expect(half.stderr).toContain('give both --access-key-id and --secret-access-key');
    const none = await runCpv(repo, ['aws-config', '--name', 'none']);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('no bucket given');
  });
});

describe('secrets in the committed config', () => {
  beforeAll(() => assertBuilt());
  it('a committed secret is refused on every command, with the fix in the hint', async () => {
    const other = await makeTempDir('aws-config-secret');
    useHome(join(other, 'home'));
    try {
      const r = await cloneRepo(await makeOrigin(join(other, 'o.git')), join(other, 'r'));
      await cpvJson(r, ['init']);
      const cfg = join(r, '.cpv', 'config');
      await appendFile(cfg, 'remotes:\n  leak:\n    url: s3://b/p\n    secret_access_key: hunter2\n');
      const st = await runCpv(r, ['status']);
      expect(st.exitCode).toBe(7);
      expect(st.stderr).toContain('holds secret_access_key for remote "leak"');
      expect(st.stderr).toContain('config.local');
      expect(st.stderr).not.toContain('hunter2');
    } finally {
      await removeTempDir(other);
    }
  });
});
