import { mkdir, mkdtemp, readFile, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, ConflictError, NotAGitRepoError, NotARepoError } from '../errors.js';
import { DEFAULT_CHUNKER } from '../chunk/fastcdc.js';
import { writeConfigFile } from '../config/config.js';
import { init } from './init.js';
import { findRepoRoot, openRepo } from './repo.js';

let dir: string;
beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-repo-')));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe('init', () => {
  it('creates .cpv/config, .cpv/.gitignore and the cache', async () => {
    const r = await init({ dir, noScm: true, remote: '/mnt/r' });
    expect(r).toEqual({ root: dir, created: ['.cpv/config', '.cpv/.gitignore'], git: false });
    expect(await readFile(path.join(dir, '.cpv', '.gitignore'), 'utf8')).toBe('/config.local\n/cache/\n/tmp/\n');
    expect(await readFile(path.join(dir, '.cpv', 'cache', 'version'), 'utf8')).toBe('cpv-cache 1\n');
    const repo = await openRepo({ cwd: dir });
    expect(repo.config.chunker).toEqual({ ...DEFAULT_CHUNKER });
    expect(repo.config.remote).toBe('origin');
    expect(repo.config.remotes).toEqual({ origin: { url: '/mnt/r' } });
  });

  it('refuses to initialize twice unless forced', async () => {
    await init({ dir, noScm: true });
    const err = await rejection(init({ dir, noScm: true }));
    expect(err).toBeInstanceOf(ConflictError);
    await init({ dir, noScm: true, force: true });
  });

  it('requires git unless noScm', async () => {
    const err = await rejection(init({ dir }));
    expect(err).toBeInstanceOf(NotAGitRepoError);
    expect(await readdir(dir)).toEqual([]);
  });

  it('writes nothing with dryRun', async () => {
    await init({ dir, noScm: true, dryRun: true });
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('findRepoRoot / openRepo', () => {
  it('finds the root from a subdirectory', async () => {
    await init({ dir, noScm: true });
    await mkdir(path.join(dir, 'a', 'b'), { recursive: true });
    expect(await findRepoRoot(path.join(dir, 'a', 'b'))).toBe(dir);
    expect((await openRepo({ cwd: path.join(dir, 'a', 'b') })).root).toBe(dir);
  });

  it('throws NotARepoError naming the start directory', async () => {
    const err = await rejection(findRepoRoot(dir));
    expect(err).toBeInstanceOf(NotARepoError);
    expect((err as NotARepoError).message).toBe(`not a cpv repository: ${dir}`);
    expect((err as NotARepoError).exitCode).toBe(2);
  });

  it('merges user config < .cpv/config < .cpv/config.local < env < overrides', async () => {
    await init({ dir, noScm: true });
    const user = path.join(dir, 'user-config');
    await writeConfigFile(user, { core: { remote: 'u', jobs: 2 }, remotes: { u: { url: '/u' } } });
    await writeConfigFile(path.join(dir, '.cpv', 'config'), { chunker: { ...DEFAULT_CHUNKER }, core: { remote: 'c', jobs: 3 }, remotes: { c: { url: '/c' } } });
    expect((await openRepo({ cwd: dir, userConfig: user })).config).toMatchObject({ remote: 'c', jobs: 3 });
    await writeConfigFile(path.join(dir, '.cpv', 'config.local'), { core: { remote: 'l' }, remotes: { l: { url: '/l' } } });
    expect((await openRepo({ cwd: dir, userConfig: user })).config).toMatchObject({ remote: 'l', jobs: 3 });
    expect((await openRepo({ cwd: dir, userConfig: user, env: { CPV_REMOTE: 'e', CPV_JOBS: '5' } })).config).toMatchObject({ remote: 'e', jobs: 5 });
    expect((await openRepo({ cwd: dir, userConfig: user, env: { CPV_REMOTE: 'e' }, overrides: { remote: 'flag' } })).config.remote).toBe('flag');
    expect(Object.keys((await openRepo({ cwd: dir, userConfig: user })).config.remotes).sort()).toEqual(['c', 'l', 'u']);
  });

  it('does not let an undefined override hide an environment override', async () => {
    await init({ dir, noScm: true });
    const repo = await openRepo({ cwd: dir, env: { CPV_REMOTE: 'e', CPV_JOBS: '5' }, overrides: { remote: undefined, jobs: undefined } });
    expect(repo.config.remote).toBe('e');
    expect(repo.config.jobs).toBe(5);
  });

  it('opens a cache at CPV_CACHE_DIR and initializes it', async () => {
    await init({ dir, noScm: true });
    const shared = path.join(dir, 'shared-cache');
    const repo = await openRepo({ cwd: dir, env: { CPV_CACHE_DIR: shared } });
    expect(repo.cache.dir).toBe(shared);
    expect(await readFile(path.join(shared, 'version'), 'utf8')).toBe('cpv-cache 1\n');
  });

  it('throws ConfigError naming a broken config file', async () => {
    await init({ dir, noScm: true });
    const local = path.join(dir, '.cpv', 'config.local');
    await writeFile(local, 'core: [\n');
    const err = await rejection(openRepo({ cwd: dir }));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message.startsWith(`${local}: invalid YAML`)).toBe(true);
  });

  it('throws ConfigError for a bad CPV_JOBS', async () => {
    await init({ dir, noScm: true });
    await expect(openRepo({ cwd: dir, env: { CPV_JOBS: 'lots' } })).rejects.toBeInstanceOf(ConfigError);
  });
});
