import { mkdtemp, readFile, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, ConflictError, NotFoundError } from '../errors.js';
import { readConfigFile } from '../config/config.js';
import { init } from './init.js';
import { remoteAdd, remoteDefault, remoteList, remoteModify, remoteRemove } from './remotes.js';
import { openRepo, type Repo } from './repo.js';

let dir: string;
let repo: Repo;
beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-remotes-')));
  await init({ dir, noScm: true });
  repo = await openRepo({ cwd: dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const committed = (): Promise<string> => readFile(path.join(dir, '.cpv', 'config'), 'utf8');
const reopen = async (): Promise<Repo> => (repo = await openRepo({ cwd: dir }));

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe('remoteAdd', () => {
  it('writes the remote to .cpv/config and optionally makes it the default', async () => {
    expect(await remoteAdd(repo, 'origin', '/mnt/team/cpv', { makeDefault: true })).toEqual({ name: 'origin', url: '/mnt/team/cpv', default: true, scope: 'config' });
    expect(await committed()).toContain('core:\n  remote: origin\n');
    expect(await committed()).toContain('remotes:\n  origin:\n    url: /mnt/team/cpv\n');
    await reopen();
    expect(repo.config.remote).toBe('origin');
    expect(repo.config.remotes).toEqual({ origin: { url: '/mnt/team/cpv' } });
  });

  it('writes a local remote to .cpv/config.local only', async () => {
    const before = await committed();
    expect(await remoteAdd(repo, 'mine', 'file:///srv/cpv', { local: true })).toEqual({ name: 'mine', url: 'file:///srv/cpv', default: false, scope: 'local' });
    expect(await committed()).toBe(before);
    expect(await readConfigFile(path.join(dir, '.cpv', 'config.local'))).toEqual({ version: 1, remotes: { mine: { url: 'file:///srv/cpv' } } });
  });

  it('keeps .cpv/config.local (where credentials go) readable by its owner only', async () => {
    await remoteAdd(repo, 's3', 's3://bucket/prefix', { options: { endpoint: 'http://127.0.0.1:9000' } });
    await remoteModify(await openRepo({ cwd: dir }), 's3', 'secret_access_key', 'not-a-real-secret');
    expect((await stat(path.join(dir, '.cpv', 'config.local'))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dir, '.cpv', 'config'))).mode & 0o777).toBe(0o644);
  });

  it('refuses an existing name unless forced', async () => {
    await remoteAdd(repo, 'origin', '/a');
    await reopen();
    const err = await rejection(remoteAdd(repo, 'origin', '/b'));
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).message).toBe('remote "origin" already exists (/a)');
    await remoteAdd(repo, 'origin', '/b', { force: true });
    await reopen();
    expect(repo.config.remotes.origin!.url).toBe('/b');
  });

  it.each([
    ['an invalid name', 'bad name', '/x', 'invalid remote name "bad name"'],
    ['an empty URL', 'origin', '  ', 'remote URL is empty'],
    ['an unsupported scheme', 'origin', 'gs://bucket/prefix', 'unsupported remote URL "gs://bucket/prefix"'],
    ['an S3 URL without a bucket', 'origin', 's3://', 'not an S3 URL: "s3://"'],
    ['an S3 prefix with ".."', 'origin', 's3://bk/a/../c', 'invalid prefix "a/../c" in s3://bk/a/../c'],
    ['an option that needs S3', 'origin', '/x', 'option "endpoint" does not apply to directory remotes'],
  ])('rejects %s with ConfigError and writes nothing', async (_, name, url, message) => {
    const before = await committed();
    const err = await rejection(remoteAdd(repo, name, url, { options: { endpoint: url === '/x' ? 'http://h:1' : undefined } }));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe(message);
    expect(await committed()).toBe(before);
  });

  it('writes nothing with dryRun', async () => {
    const before = await committed();
    await remoteAdd(repo, 'origin', '/x', { dryRun: true, makeDefault: true });
    expect(await committed()).toBe(before);
  });
});

describe('remoteList', () => {
  it('lists remotes sorted by name, with the default and the defining file', async () => {
    expect(await remoteList(repo)).toEqual([]);
    await remoteAdd(repo, 'origin', '/o');
    await remoteAdd(repo, 'backup', '/b', { local: true, makeDefault: true });
    await reopen();
    expect(await remoteList(repo)).toEqual([
      { name: 'backup', url: '/b', default: true, scope: 'local' },
      { name: 'origin', url: '/o', default: false, scope: 'config' },
    ]);
  });
});

describe('remoteRemove', () => {
  it('removes the remote from both files and clears it as default', async () => {
    await remoteAdd(repo, 'origin', '/o', { makeDefault: true });
    await remoteAdd(repo, 'origin', '/secret', { local: true, force: true, makeDefault: true });
    await remoteAdd(repo, 'keep', '/k');
    await reopen();
    await remoteRemove(repo, 'origin');
    await reopen();
    expect(repo.config.remotes).toEqual({ keep: { url: '/k' } });
    expect(repo.config.remote).toBeUndefined();
    expect(await committed()).not.toContain('origin');
  });

  it('throws NotFoundError for an unknown remote', async () => {
    const err = await rejection(remoteRemove(repo, 'nope'));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toBe('no remote named "nope"');
  });
});

describe('remoteDefault', () => {
  it('sets the default remote', async () => {
    await remoteAdd(repo, 'a', '/a', { makeDefault: true });
    await remoteAdd(repo, 'b', '/b');
    await reopen();
    await remoteDefault(repo, 'b');
    await reopen();
    expect(repo.config.remote).toBe('b');
    expect((await remoteList(repo)).map((r) => [r.name, r.default])).toEqual([
      ['a', false],
      ['b', true],
    ]);
  });

  it('a local default overrides the committed one', async () => {
    await remoteAdd(repo, 'a', '/a', { makeDefault: true });
    await remoteAdd(repo, 'b', '/b');
    await reopen();
    await remoteDefault(repo, 'b', { local: true });
    await reopen();
    expect(repo.config.remote).toBe('b');
    expect(await committed()).toContain('remote: a');
  });

  it('throws NotFoundError for an unknown remote', async () => {
    await expect(remoteDefault(repo, 'nope')).rejects.toBeInstanceOf(NotFoundError);
  });
});
