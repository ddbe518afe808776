// A remote or cache that holds something it should not must never put wrong bytes in
// the cache or the workspace, and must never crash cpv: a damaged record costs an error
// with its exit code, a stray file costs nothing.
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cpvJson, cpvJsonResult, objectPath, readPointerFile, runCpv, type ErrorJson, type FetchJson, type PullJson, useHome } from './support/cpv.js';
import { cloneRepo, commitAll, makeOrigin, pushGit } from './support/git.js';
import { b3sum, randomBytes } from './support/model.js';
import { listFiles, makeTempDir, removeTempDir, snapshotTree } from './support/fsutil.js';

const KiB = 1024;

describe('hostile remote records and stray cache files', () => {
  let root: string;
  let origin: string;
  let remote: string;
  let fOid: string;
  let gOid: string;
  let clones = 0;

  /** A fresh clone of origin: pointers only, empty cache. */
  const freshClone = (): Promise<string> => cloneRepo(origin, join(root, `clone-${++clones}`), `User ${clones}`);
  const workspace = (dir: string) => snapshotTree(dir, { exclude: ['.git', '.cpv'] });
  const cached = (clone: string, oid: string): boolean => existsSync(objectPath(join(clone, '.cpv', 'cache', 'files'), oid));

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('hostile');
    useHome(join(root, 'home'));
    origin = await makeOrigin(join(root, 'origin.git'));
    remote = join(root, 'remote');
    const a = await cloneRepo(origin, join(root, 'a'), 'Alice');
    await cpvJson(a, ['init', '--remote', remote]);
    // Two small files of the same size: each is one chunk, and either one's remote
    // manifest passes the size check for the other.
    await writeFile(join(a, 'f.bin'), randomBytes(101, 10 * KiB));
    await writeFile(join(a, 'g.bin'), randomBytes(102, 10 * KiB));
    await cpvJson(a, ['add', 'f.bin', 'g.bin']);
    fOid = (await readPointerFile(join(a, 'f.bin.cpv'))).oid!;
    gOid = (await readPointerFile(join(a, 'g.bin.cpv'))).oid!;
    await commitAll(a, 'Add f and g');
    await pushGit(a);
    await cpvJson(a, ['push']);
  });
  afterAll(() => removeTempDir(root));

  describe("a one-chunk remote manifest that names another file's chunk", () => {
    let fManifest: string;
    let original: Buffer;

    beforeAll(async () => {
      // f's manifest, rewritten to name g's chunk, pack and offset: every location is
      // real and g's chunk verifies against its own oid, but the bytes are not f's.
      fManifest = objectPath(join(remote, 'manifests'), fOid);
      original = await readFile(fManifest);
      const forged = JSON.parse(await readFile(objectPath(join(remote, 'manifests'), gOid), 'utf8')) as { oid: string; chunks: unknown[][] };
      expect(forged.chunks).toHaveLength(1);
      expect(forged.chunks[0]![0]).toBe(gOid.slice(3));
      forged.oid = fOid;
      await chmod(fManifest, 0o644);
      await writeFile(fManifest, JSON.stringify(forged));
    });
    afterAll(async () => {
      await writeFile(fManifest, original);
      await chmod(fManifest, 0o444);
    });

    it('fetch fails with a format or integrity error (exit 4) and caches nothing under f', async () => {
      const c = await freshClone();
      const r = await cpvJsonResult<ErrorJson>(c, ['fetch', 'f.bin']);
      expect(r.exitCode, r.stderr).toBe(4);
      expect(['FORMAT', 'INTEGRITY']).toContain(r.json.error.code);
      expect(r.stderr).toContain(fOid.slice(0, 12));
      expect(cached(c, fOid)).toBe(false);
      expect(await listFiles(join(c, '.cpv', 'cache', 'files'))).toEqual([]);
    });

    it("still fails once g's chunk is in the cache; pull leaves the workspace alone", async () => {
      const c = await freshClone();
      const g = await cpvJson<FetchJson>(c, ['fetch', 'g.bin']);
      expect(g.files).toBe(1);
      expect(cached(c, gOid)).toBe(true);
      const ws = await workspace(c);
      const r = await cpvJsonResult<ErrorJson>(c, ['pull', 'f.bin']);
      expect(r.exitCode, r.stderr).toBe(4);
      expect(cached(c, fOid)).toBe(false);
      expect(await workspace(c)).toEqual(ws);
      // Whatever is cached hashes to its name.
      for (const rel of await listFiles(join(c, '.cpv', 'cache', 'files'))) expect(await b3sum(join(c, '.cpv', 'cache', 'files', rel))).toBe(rel.replace('/', ''));
    });
  });

  it('stray files in the cache fan-out directories break neither push nor pull', async () => {
    const c = await freshClone();
    await cpvJson<PullJson>(c, ['pull']);
    const cache = join(c, '.cpv', 'cache');
    const remotes = await readdir(join(cache, 'remotes'));
    expect(remotes).toHaveLength(1);
    const known = join(cache, 'remotes', remotes[0]!, 'known');
    expect(existsSync(known)).toBe(true);
    // Finder files, editor leftovers and misplaced files where cpv keeps its fan-outs.
    const strays = [
      join(cache, 'manifests', '.DS_Store'),
      join(cache, 'manifests', 'ab', 'junk'),
      join(cache, 'manifests', 'cd'),
      join(cache, 'trees', '.DS_Store'),
      join(cache, 'files', '.DS_Store'),
      join(known, '.DS_Store'),
      join(known, 'ab', 'junk'),
      join(known, 'cd'),
    ];
    for (const s of strays) {
      await mkdir(join(s, '..'), { recursive: true });
      await writeFile(s, 'not an object\n');
    }

    // push has something new to upload, so it reads what it knows about the remote.
    await writeFile(join(c, 'h.bin'), randomBytes(103, 300 * KiB));
    await cpvJson(c, ['add', 'h.bin']);
    const pushed = await runCpv(c, ['push']);
    expect(pushed.exitCode, pushed.stderr).toBe(0);

    // pull has something to download, so it indexes the chunks already cached.
    await rm(objectPath(join(cache, 'files'), fOid));
    await rm(join(c, 'f.bin'));
    const pulled = await cpvJsonResult<PullJson>(c, ['pull']);
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    expect(pulled.json.fetch.files).toBe(1);
    expect(`b3:${await b3sum(join(c, 'f.bin'))}`).toBe(fOid);

    // And a second client gets h from the remote.
    await commitAll(c, 'Add h');
    await pushGit(c);
    const d = await freshClone();
    await cpvJson(d, ['pull']);
    expect(await b3sum(join(d, 'h.bin'))).toBe(await b3sum(join(c, 'h.bin')));
    for (const s of strays) expect(existsSync(s), s).toBe(true);
  });
});
