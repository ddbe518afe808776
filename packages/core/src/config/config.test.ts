import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { DEFAULT_CHUNKER } from '../chunk/fastcdc.js';
import {
  configPaths,
  DEFAULT_LINK,
  DEFAULT_PACK_SIZE,
  envOverrides,
  isValidRemoteName,
  mergeConfig,
  parseJobs,
  parseLinkList,
  readConfigFile,
  writeConfigFile,
  type ConfigFile,
} from './config.js';

const ROOT = '/work/repo';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('CONFIG');
    expect((err as ConfigError).exitCode).toBe(7);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('mergeConfig', () => {
  it('fills in the defaults', () => {
    expect(mergeConfig(ROOT, [])).toEqual({
      chunker: { ...DEFAULT_CHUNKER },
      remote: undefined,
      link: DEFAULT_LINK,
      packSize: DEFAULT_PACK_SIZE,
      jobs: 8,
      cacheDir: path.join(ROOT, '.cpv', 'cache'),
      remotes: {},
    });
  });

  it('applies layers in order: user < committed < local < overrides', () => {
    const user: ConfigFile = { core: { remote: 'u', jobs: 2, link: ['copy'], pack_size: 2 * 1024 * 1024 }, cache: { dir: '/u/cache' }, remotes: { u: { url: '/u' } } };
    const committed: ConfigFile = { core: { remote: 'c', jobs: 3 }, cache: { dir: '/c/cache' }, remotes: { c: { url: '/c' } } };
    const local: ConfigFile = { core: { remote: 'l' }, remotes: { l: { url: '/l' } } };
    const merged = mergeConfig(ROOT, [user, committed, local], { jobs: 16, cacheDir: '/o/cache' });
    expect(merged.remote).toBe('l');
    expect(merged.jobs).toBe(16);
    expect(merged.link).toEqual(['copy']);
    expect(merged.packSize).toBe(2 * 1024 * 1024);
    expect(merged.cacheDir).toBe('/o/cache');
    expect(merged.remotes).toEqual({ u: { url: '/u' }, c: { url: '/c' }, l: { url: '/l' } });

    expect(mergeConfig(ROOT, [user, committed]).remote).toBe('c');
    expect(mergeConfig(ROOT, [user, committed]).jobs).toBe(3);
    expect(mergeConfig(ROOT, [user, committed]).cacheDir).toBe('/c/cache');
    expect(mergeConfig(ROOT, [user, committed, local], { remote: 'flag' }).remote).toBe('flag');
    expect(mergeConfig(ROOT, [user], { link: ['hardlink', 'copy'] }).link).toEqual(['hardlink', 'copy']);
  });

  it('merges a remote field by field, so config.local can add options to a committed remote', () => {
    const committed: ConfigFile = { remotes: { origin: { url: '/team/remote', region: 'eu' } } };
    const local: ConfigFile = { remotes: { origin: { token: 'secret' } as unknown as { url: string } } };
    expect(mergeConfig(ROOT, [committed, local]).remotes).toEqual({ origin: { url: '/team/remote', region: 'eu', token: 'secret' } });
  });

  it('merges chunker fields over the defaults and later layers win', () => {
    const merged = mergeConfig(ROOT, [{ chunker: { min: 1024, avg: 4096, max: 16384 } }, { chunker: { max: 32768 } }]);
    expect(merged.chunker).toEqual({ ...DEFAULT_CHUNKER, min: 1024, avg: 4096, max: 32768 });
  });

  it('resolves a relative cache dir against the root and keeps an absolute one', () => {
    expect(mergeConfig(ROOT, [{ cache: { dir: 'shared/cache' } }]).cacheDir).toBe('/work/repo/shared/cache');
    expect(mergeConfig(ROOT, [{ cache: { dir: '../cache' } }]).cacheDir).toBe('/work/cache');
    expect(mergeConfig(ROOT, [{ cache: { dir: '/mnt/cache' } }]).cacheDir).toBe('/mnt/cache');
    expect(mergeConfig(ROOT, [], { cacheDir: 'rel' }).cacheDir).toBe('/work/repo/rel');
  });

  it.each([
    ['avg not a power of two', { avg: 5000 }, 'avg must be a power of two'],
    ['min above avg', { min: 131072 }, 'min <= avg <= max'],
    ['an unknown algorithm', { algorithm: 'rabin' as 'fastcdc-v1' }, 'unknown chunker algorithm'],
    ['an unknown gear', { gear: 'other' as 'cpv-gear-v1' }, 'unknown gear table'],
    ['an unknown key', { window: 48 } as unknown as Record<string, number>, 'unknown chunker parameter "window"'],
    ['a string size', { min: '16384' } as unknown as Record<string, number>, 'min'],
  ])('rejects a chunker with %s', (_, chunker, reason) => {
    const e = configError(() => mergeConfig(ROOT, [{ chunker: chunker as ConfigFile['chunker'] }]));
    expect(e.message.startsWith('chunker: ')).toBe(true);
    expect(e.message).toContain(reason);
    expect(e.hint).toBe('restore the chunker section written by `cpv init`');
  });

  it('rejects a remote without a url, with a hint', () => {
    const e = configError(() => mergeConfig(ROOT, [{ remotes: { backup: { region: 'eu' } as unknown as { url: string } } }]));
    expect(e.message).toBe('remote "backup" has no url');
    expect(e.hint).toBe('set it with `cpv remote add backup URL`');
    configError(() => mergeConfig(ROOT, [{ remotes: { backup: { url: '' } } }]));
  });

  it('rejects an invalid remote name', () => {
    expect(configError(() => mergeConfig(ROOT, [{ remotes: { 'bad name': { url: '/x' } } }])).message).toBe('remote name "bad name" is not valid');
  });

  it.each([[1024 * 1024 - 1], [2 * 1024 * 1024 * 1024], [1.5 * 1024 * 1024 + 0.5]])('rejects pack_size %d', (n) => {
    expect(configError(() => mergeConfig(ROOT, [{ core: { pack_size: n } }])).message).toContain('core.pack_size must be between 1 MiB and 1 GiB');
  });

  it('accepts pack_size at the 1 MiB minimum', () => {
    expect(mergeConfig(ROOT, [{ core: { pack_size: 1024 * 1024 } }]).packSize).toBe(1024 * 1024);
  });

  it('rejects bad core.jobs and core.link values, naming the setting', () => {
    expect(configError(() => mergeConfig(ROOT, [{ core: { jobs: 0 } }])).message).toContain('core.jobs');
    expect(configError(() => mergeConfig(ROOT, [{ core: { link: ['teleport'] as unknown as ['copy'] } }])).message).toContain('core.link');
    expect(configError(() => mergeConfig(ROOT, [{ core: { link: [] } }])).message).toContain('core.link');
  });
});

describe('envOverrides', () => {
  it('reads CPV_REMOTE, CPV_CACHE_DIR, CPV_JOBS and CPV_LINK', () => {
    expect(envOverrides({ CPV_REMOTE: 'backup', CPV_CACHE_DIR: '/mnt/c', CPV_JOBS: '4', CPV_LINK: 'hardlink,copy' })).toEqual({
      remote: 'backup',
      cacheDir: '/mnt/c',
      jobs: 4,
      link: ['hardlink', 'copy'],
    });
  });

  it('ignores unset and empty variables and unrelated ones', () => {
    expect(envOverrides({ CPV_REMOTE: '', CPV_JOBS: undefined, HOME: '/root' })).toEqual({});
  });

  it.each([['0'], ['-1'], ['1.5'], ['abc'], ['257'], ['4x']])('rejects CPV_JOBS=%s', (v) => {
    const e = configError(() => envOverrides({ CPV_JOBS: v }));
    expect(e.message).toBe(`CPV_JOBS: jobs must be an integer from 1 to 256, got ${JSON.stringify(v)}`);
  });

  it.each([['teleport'], ['copy,teleport'], ['copy,'], [',']])('rejects CPV_LINK=%s', (v) => {
    expect(configError(() => envOverrides({ CPV_LINK: v })).message).toBe('CPV_LINK: link must be a non-empty list of reflink, hardlink, symlink, copy');
  });

  it('overrides files when merged', () => {
    const merged = mergeConfig(ROOT, [{ core: { remote: 'origin', jobs: 2, link: ['reflink', 'copy'] } }], envOverrides({ CPV_REMOTE: 'backup', CPV_JOBS: '3', CPV_LINK: 'copy' }));
    expect(merged.remote).toBe('backup');
    expect(merged.jobs).toBe(3);
    expect(merged.link).toEqual(['copy']);
  });
});

describe('parseJobs / parseLinkList / isValidRemoteName', () => {
  it('accepts the bounds', () => {
    expect(parseJobs(1, 'x')).toBe(1);
    expect(parseJobs('256', 'x')).toBe(256);
  });

  it('rejects a link value that is not a list', () => {
    configError(() => parseLinkList('copy', 'core.link'));
  });

  it.each(['origin', 'a', 'my-remote.2', 'A_b', 'x'.repeat(64)])('accepts remote name %s', (n) => {
    expect(isValidRemoteName(n)).toBe(true);
  });

  it.each(['', '-x', '.x', 'a/b', 'a b', 'x'.repeat(65), 'é'])('rejects remote name %j', (n) => {
    expect(isValidRemoteName(n)).toBe(false);
  });
});

describe('readConfigFile / writeConfigFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cpv-config-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('returns {} for an absent or empty file', async () => {
    expect(await readConfigFile(path.join(dir, 'nope'))).toEqual({});
    await writeFile(path.join(dir, 'empty'), '');
    expect(await readConfigFile(path.join(dir, 'empty'))).toEqual({});
  });

  it('names the file on invalid YAML', async () => {
    const file = path.join(dir, 'config');
    await writeFile(file, 'version: 1\ncore: [\n');
    const err = await readConfigFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message.startsWith(`${file}: invalid YAML: `)).toBe(true);
    expect((err as ConfigError).hint).toBe(`fix ${file} by hand or restore it with git`);
  });

  it('names the file on duplicate keys and on aliases', async () => {
    const file = path.join(dir, 'config');
    await writeFile(file, 'version: 1\nversion: 1\n');
    await expect(readConfigFile(file)).rejects.toThrow(`${file}: invalid YAML`);
    await writeFile(file, 'remotes:\n  a: &r { url: /x }\n  b: *r\n');
    const err = await readConfigFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(file);
  });

  it('rejects a file that is not a mapping, and an unknown version', async () => {
    const file = path.join(dir, 'config');
    await writeFile(file, '- a\n');
    await expect(readConfigFile(file)).rejects.toThrow(`${file}: expected a YAML mapping`);
    await writeFile(file, 'version: 2\n');
    const err = await readConfigFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe(`${file}: unsupported config version 2`);
  });

  it('writes keys in a stable order with the version first, readable again', async () => {
    const file = path.join(dir, 'config');
    const chunker = { algorithm: 'fastcdc-v1', gear: 'cpv-gear-v1', min: 16384, avg: 65536, max: 262144 } as const;
    await writeConfigFile(file, { remotes: { origin: { url: '/mnt/r' } }, cache: { dir: '.cpv/cache' }, core: { remote: 'origin' }, chunker });
    expect(await readFile(file, 'utf8')).toBe(
      'version: 1\n' +
        'chunker:\n  algorithm: fastcdc-v1\n  gear: cpv-gear-v1\n  min: 16384\n  avg: 65536\n  max: 262144\n' +
        'core:\n  remote: origin\n' +
        'cache:\n  dir: .cpv/cache\n' +
        'remotes:\n  origin:\n    url: /mnt/r\n',
    );
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    expect(await readConfigFile(file)).toEqual({ version: 1, chunker, core: { remote: 'origin' }, cache: { dir: '.cpv/cache' }, remotes: { origin: { url: '/mnt/r' } } });
  });

  it('drops empty sections', async () => {
    const file = path.join(dir, 'config');
    await writeConfigFile(file, { core: {}, remotes: {} });
    expect(await readFile(file, 'utf8')).toBe('version: 1\n');
  });

  it('configPaths names .cpv/config and .cpv/config.local', () => {
    expect(configPaths('/r')).toEqual({ committed: '/r/.cpv/config', local: '/r/.cpv/config.local' });
  });
});

describe('readConfigFile type checks', () => {
  it.each([
    ['cache:\n  dir: 5\n', 'cache.dir must be a directory path'],
    ['core:\n  jobs: many\n', 'core.jobs must be an integer from 1 to 256'],
    ['core:\n  jobs: 0\n', 'core.jobs must be an integer from 1 to 256'],
    ['core:\n  link: []\n', 'core.link must be a non-empty list of link modes'],
    ['core:\n  link: [teleport]\n', 'core.link must be a list of reflink, hardlink, symlink, copy; "teleport" is not one'],
    ['core:\n  pack_size: 100\n', 'core.pack_size must be a number of bytes from 1 MiB'],
    ['remotes:\n  bad name:\n    url: /x\n', 'remotes."bad name" must be named with letters'],
    ['chunker:\n  min: 1\n', 'chunker: min must be at least 64, got 1'],
    ['chunker:\n  algorithm: rabin\n', 'chunker: unknown chunker algorithm "rabin"'],
    ['core:\n  link: copy\n', 'core.link must be a list of link modes'],
    ['core:\n  colour: blue\n', 'core.colour must be a known setting'],
    ['remotes:\n  origin: /x\n', 'remotes.origin must be a mapping with a url'],
    ['remotes:\n  origin:\n    url: [1]\n', 'remotes.origin.url must be a string, number or boolean'],
    ['mystery: 1\n', 'mystery must be one of the known sections'],
    ['chunker: fast\n', 'chunker must be a mapping'],
  ])('%j names the file and key', async (yaml, message) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'cpv-cfgshape-'));
    try {
      const file = path.join(dir, 'config');
      await writeFile(file, yaml);
      const err = await readConfigFile(file).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message.startsWith(`${file}: ${message}`)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
