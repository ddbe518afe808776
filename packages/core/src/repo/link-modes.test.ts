import { lstat, mkdtemp, readFile, readlink, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LinkMode } from '../config/config.js';
import { seededBytes } from '../testing/seeded.js';
import { add } from './add.js';
import { checkout } from './checkout.js';
import { init } from './init.js';
import { openRepo, type Repo } from './repo.js';
import { status } from './status.js';

let dir: string;
beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-links-')));
  await init({ dir, noScm: true });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Track a small and a large file, delete both, check them out with `link` preferences. */
async function roundTrip(link: LinkMode[]): Promise<{ repo: Repo; small: string; big: string; mode: LinkMode | undefined }> {
  const small = seededBytes(1, 5000);
  const big = seededBytes(2, 3 * 1024 * 1024);
  await writeFile(path.join(dir, 'small.bin'), small);
  await writeFile(path.join(dir, 'big.bin'), big);
  const base = await openRepo({ cwd: dir });
  const added = await add(base, { cwd: dir, paths: ['small.bin', 'big.bin'] });
  await rm(path.join(dir, 'small.bin'));
  await rm(path.join(dir, 'big.bin'));
  const repo = await openRepo({ cwd: dir, overrides: { link } });
  const r = await checkout(repo, { cwd: dir, targets: [] });
  expect(Buffer.compare(await readFile(path.join(dir, 'small.bin')), small)).toBe(0);
  expect(Buffer.compare(await readFile(path.join(dir, 'big.bin')), big)).toBe(0);
  const [s, b] = added.items;
  return { repo, small: s!.oid, big: b!.oid, mode: r.linkMode };
}

describe('checkout link modes', () => {
  it('hardlink shares the cache object (same inode, read-only)', async () => {
    const { repo, small, big, mode } = await roundTrip(['hardlink', 'copy']);
    expect(mode).toBe('hardlink');
    for (const [name, oid] of [['small.bin', small], ['big.bin', big]] as const) {
      const ws = await stat(path.join(dir, name));
      expect(ws.ino).toBe((await stat(repo.cache.filePath(oid))).ino);
      expect(ws.mode & 0o777).toBe(0o444);
    }
    expect((await status(repo, { cwd: dir, targets: [] })).map((i) => i.workspace)).toEqual(['unchanged', 'unchanged']);
  });

  it('symlink points into the cache, and status follows it', async () => {
    const { repo, big, mode } = await roundTrip(['symlink']);
    expect(mode).toBe('symlink');
    expect((await lstat(path.join(dir, 'big.bin'))).isSymbolicLink()).toBe(true);
    expect(await readlink(path.join(dir, 'big.bin'))).toBe(repo.cache.filePath(big));
    expect((await status(repo, { cwd: dir, targets: [] })).map((i) => i.workspace)).toEqual(['unchanged', 'unchanged']);
  });

  it('copy makes private, writable files', async () => {
    const { repo, big, mode } = await roundTrip(['copy']);
    expect(mode).toBe('copy');
    const ws = await stat(path.join(dir, 'big.bin'));
    expect(ws.ino).not.toBe((await stat(repo.cache.filePath(big))).ino);
    expect(ws.mode & 0o777).toBe(0o644);
  });

  it('reflink falls back to the next mode where the filesystem cannot clone', async () => {
    const { mode } = await roundTrip(['reflink', 'copy']);
    // On a filesystem with reflinks (btrfs, xfs) the clone succeeds; elsewhere copy.
    expect(['reflink', 'copy']).toContain(mode);
  });
});
