import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { init } from './init.js';
import { remoteAdd } from './remotes.js';
import { openRepo } from './repo.js';
import { configGet, configSet } from './settings.js';

let dir: string;
beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-settings-')));
  await init({ dir, noScm: true });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const open = () => openRepo({ cwd: dir });

describe('configSet / configGet', () => {
  it('sets, reads back through the merged config, and unsets', async () => {
    await configSet(await open(), 'core.link', 'hardlink, copy');
    expect(configGet(await open(), 'core.link')).toBe('hardlink,copy');
    expect(await readFile(path.join(dir, '.cpv', 'config'), 'utf8')).toContain('link:\n    - hardlink\n    - copy');
    await configSet(await open(), 'core.link', undefined);
    expect(configGet(await open(), 'core.link')).toBe('reflink,copy');
    expect(await readFile(path.join(dir, '.cpv', 'config'), 'utf8')).not.toContain('core:');
  });

  it('writes local settings to config.local, which wins', async () => {
    await configSet(await open(), 'core.jobs', '4');
    await configSet(await open(), 'core.jobs', '16', { local: true });
    expect(configGet(await open(), 'core.jobs')).toBe(16);
    expect(await readFile(path.join(dir, '.cpv', 'config.local'), 'utf8')).toContain('jobs: 16');
  });

  it('resolves a relative cache.dir against the root', async () => {
    await configSet(await open(), 'cache.dir', 'shared-cache');
    expect(configGet(await open(), 'cache.dir')).toBe(path.join(dir, 'shared-cache'));
  });

  it.each([
    ['core.jobs', '0'],
    ['core.jobs', 'many'],
    ['core.link', 'teleport'],
    ['core.pack_size', '12'],
    ['core.remote', 'nope'],
    ['chunker.avg', '1'],
  ])('rejects %s = %s and writes nothing', async (name, value) => {
    const before = await readFile(path.join(dir, '.cpv', 'config'), 'utf8');
    await expect(configSet(await open(), name, value)).rejects.toBeInstanceOf(ConfigError);
    expect(await readFile(path.join(dir, '.cpv', 'config'), 'utf8')).toBe(before);
  });

  it('sets the default remote only to a configured one; dry-run writes nothing', async () => {
    await remoteAdd(await open(), 'origin', path.join(dir, 'remote'));
    await configSet(await open(), 'core.remote', 'origin', { dryRun: true });
    expect(configGet(await open(), 'core.remote')).toBeUndefined();
    await configSet(await open(), 'core.remote', 'origin');
    expect(configGet(await open(), 'core.remote')).toBe('origin');
  });
});
