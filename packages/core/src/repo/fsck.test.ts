import { chmod, mkdir, mkdtemp, open, readFile, realpath, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeConfigFile } from '../config/config.js';
import { remoteKeys } from '../remote/remote.js';
import { seededBytes } from '../testing/seeded.js';
import { fanout, oidHex } from '../util/oid.js';
import { add } from './add.js';
import { fsck, type FsckProblem } from './fsck.js';
import { init } from './init.js';
import { openRepo, type Repo } from './repo.js';
import { push } from './sync.js';

let base: string;
let dir: string;
let remoteDir: string;
let repo: Repo;
let model: string;
let tree: string;
let small: string;
let big: string;

const MODEL = seededBytes(1, 60_000);

beforeEach(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-fsck-')));
  dir = path.join(base, 'work');
  remoteDir = path.join(base, 'remote');
  await mkdir(path.join(dir, 'data'), { recursive: true });
  await init({ dir, remote: remoteDir, noScm: true });
  await writeConfigFile(path.join(dir, '.cpv', 'config.local'), { chunker: { min: 1024, avg: 4096, max: 16384 } });
  repo = await openRepo({ cwd: dir });
  await writeFile(path.join(dir, 'model.bin'), MODEL);
  await writeFile(path.join(dir, 'data', 'small.txt'), seededBytes(2, 300));
  await writeFile(path.join(dir, 'data', 'big.bin'), seededBytes(3, 40_000));
  model = (await add(repo, { cwd: dir, paths: ['model.bin'] })).items[0]!.oid;
  tree = (await add(repo, { cwd: dir, paths: ['data'] })).items[0]!.oid;
  const entries = await repo.cache.readTree(tree);
  small = entries.find((e) => e.path === 'small.txt')!.oid;
  big = entries.find((e) => e.path === 'big.bin')!.oid;
  await push(repo, { cwd: dir, targets: [] });
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

/** Cache key of an object as fsck reports it. */
const cacheKey = (sub: string, oid: string): string => `${sub}/${fanout(oidHex(oid))}`;

async function flip(file: string, offset: number): Promise<void> {
  await chmod(file, 0o644);
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

function summary(problems: readonly FsckProblem[]): Array<[string, string, string]> {
  return problems.map((p) => [p.where, p.kind, p.key]).sort() as Array<[string, string, string]>;
}

describe('fsck: cache', () => {
  it('a clean cache and remote pass, with or without reading data', async () => {
    const r = await fsck(repo, { remote: 'origin', readData: true });
    expect(r.ok).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.cache).toMatchObject({ files: 3, manifests: 2, trees: 1 });
    expect(r.cache.bytesHashed).toBe(60_000 + 300 + 40_000);
    expect(r.remote).toMatchObject({ name: 'origin', manifests: 2, trees: 1 });
    expect(r.remote!.packs).toBeGreaterThan(0);
    expect(r.remote!.bytesHashed).toBeGreaterThan(100_000);
    expect((await fsck(repo, {})).ok).toBe(true);
  });

  it('finds a truncated object by its size, and a flipped byte only by reading data', async () => {
    await chmod(repo.cache.filePath(model), 0o644);
    await truncate(repo.cache.filePath(model), 50_000);
    await flip(repo.cache.filePath(small), 10);
    const quick = await fsck(repo, {});
    expect(quick.ok).toBe(false);
    expect(quick.problems).toEqual([
      { where: 'cache', kind: 'file', key: cacheKey('files', model), oid: model, reason: 'it has 50000 bytes, 60000 expected (truncated or overwritten)' },
    ]);
    const deep = await fsck(repo, { readData: true });
    expect(summary(deep.problems)).toEqual([
      ['cache', 'file', cacheKey('files', model)],
      ['cache', 'file', cacheKey('files', small)],
    ].sort());
    expect(deep.problems.find((p) => p.oid === small)!.reason).toBe('its content does not hash to its oid');
    expect(deep.problems.find((p) => p.oid === model)!.reason).toMatch(/does not hash to its oid; it has 50000 bytes/);
  });

  it('finds a corrupt tree, and a manifest whose chunk list does not match its intact file', async () => {
    await flip(repo.cache.treePath(tree), 20);
    const m = (await repo.cache.readManifest(big))!;
    const wrong = { ...m, chunks: m.chunks.map(([o, n], i): [string, number] => [i === 1 ? '0'.repeat(64) : o, n]) };
    await chmod(repo.cache.manifestPath(big), 0o644);
    await writeFile(repo.cache.manifestPath(big), JSON.stringify(wrong) + '\n');
    const r = await fsck(repo, { readData: true });
    expect(summary(r.problems)).toEqual([
      ['cache', 'manifest', cacheKey('manifests', big)],
      ['cache', 'tree', cacheKey('trees', tree)],
    ]);
    expect(r.problems.find((p) => p.kind === 'manifest')!.reason).toMatch(/chunk 1 of its list does not match the file/);
    expect(r.problems.find((p) => p.kind === 'tree')!.reason).toMatch(/does not hash to its name/);
  });
});

describe('fsck: remote', () => {
  it('finds a missing pack and a missing nested manifest, naming the record and what it lacks', async () => {
    const mm = JSON.parse(await readFile(path.join(remoteDir, remoteKeys.manifest(model)), 'utf8')) as { packs: string[] };
    const pack = remoteKeys.pack(mm.packs[0]!);
    await rm(path.join(remoteDir, pack));
    await rm(path.join(remoteDir, remoteKeys.manifest(big)));
    const r = await fsck(repo, { remote: 'origin' });
    expect(r.ok).toBe(false);
    const missingPack = r.problems.filter((p) => p.missing === pack);
    // Every record naming that pack is reported (one push: the model, the tree and big.bin share it).
    expect(missingPack.map((p) => p.key)).toContain(remoteKeys.manifest(model));
    expect(missingPack[0]).toMatchObject({ where: 'remote', reason: expect.stringMatching(/names pack [0-9a-f]{12}, which is not on the remote/) });
    expect(r.problems).toContainEqual({
      where: 'remote',
      kind: 'tree',
      key: remoteKeys.tree(tree),
      oid: tree,
      reason: expect.stringMatching(/lists big\.bin, whose manifest b3:[0-9a-f]{12} is not on the remote/),
      missing: remoteKeys.manifest(big),
    });
    // The cache itself is fine.
    expect(r.problems.every((p) => p.where === 'remote')).toBe(true);
  });

  it('with --read-data finds a corrupt pack and a manifest pointing at bytes that are no chunk', async () => {
    const mm = JSON.parse(await readFile(path.join(remoteDir, remoteKeys.manifest(model)), 'utf8')) as { packs: string[]; chunks: Array<[string, number, number, number]> };
    const packFile = path.join(remoteDir, remoteKeys.pack(mm.packs[0]!));
    expect((await fsck(repo, { remote: 'origin' })).ok).toBe(true);
    await flip(packFile, mm.chunks[2]![3] + 5);
    const quick = await fsck(repo, { remote: 'origin' });
    expect(quick.ok).toBe(true); // sizes and names still agree
    const deep = await fsck(repo, { remote: 'origin', readData: true });
    expect(deep.problems).toEqual([{ where: 'remote', kind: 'pack', key: remoteKeys.pack(mm.packs[0]!), oid: mm.packs[0], reason: 'its content does not hash to its name (corrupt)' }]);
    await flip(packFile, mm.chunks[2]![3] + 5);
    // Shift one chunk's offset in the manifest: a range inside the pack, but not a chunk.
    const bent = { ...mm, chunks: mm.chunks.map((c, i): [string, number, number, number] => (i === 3 ? [c[0], c[1], c[2], c[3] + 1] : c)) };
    const mfile = path.join(remoteDir, remoteKeys.manifest(model));
    await chmod(mfile, 0o644);
    await writeFile(mfile, JSON.stringify(bent) + '\n');
    const r = await fsck(repo, { remote: 'origin', readData: true });
    expect(summary(r.problems)).toEqual([['remote', 'manifest', remoteKeys.manifest(model)]]);
    expect(r.problems[0]!.reason).toMatch(/^chunk [0-9a-f]{12} at [0-9a-f]{12}\+\d+ \(\d+ bytes\) is not in that pack$/);
  });
});

describe('fsck: remote, paged manifests', () => {
  /** A model over 256 chunks (a version 2 manifest), pushed; its page keys. */
  async function pagedModel(): Promise<{ oid: string; pages: string[] }> {
    await writeFile(path.join(dir, 'paged.bin'), seededBytes(40, 1_500_000));
    const oid = (await add(repo, { cwd: dir, paths: ['paged.bin'] })).items[0]!.oid;
    await push(repo, { cwd: dir, targets: [] });
    const root = JSON.parse(await readFile(path.join(remoteDir, remoteKeys.manifest(oid)), 'utf8')) as { version: number; pages: Array<[string, number, number]> };
    expect(root.version).toBe(2);
    return { oid, pages: root.pages.map(([p]) => remoteKeys.page(p)) };
  }

  it('counts pages and finds nothing wrong with a sound remote, with and without --read-data', async () => {
    const { pages } = await pagedModel();
    const r = await fsck(repo, { remote: 'origin' });
    expect(r.problems).toEqual([]);
    expect(r.remote!.pages).toBe(new Set(pages).size);
    expect(r.remote!.manifests).toBe(3);
    expect((await fsck(repo, { remote: 'origin', readData: true })).problems).toEqual([]);
  });

  it('finds a missing page, naming the manifest and the page', async () => {
    const { oid, pages } = await pagedModel();
    const gone = pages[seededBytes(41, 1)[0]! % pages.length]!;
    await rm(path.join(remoteDir, gone));
    const r = await fsck(repo, { remote: 'origin' });
    expect(r.problems).toEqual([
      { where: 'remote', kind: 'manifest', key: remoteKeys.manifest(oid), oid, reason: expect.stringMatching(/^names page [0-9a-f]{12}, which is not on the remote$/), missing: gone },
    ]);
  });

  it('finds a corrupt page, a malformed page, and a page naming a missing pack', async () => {
    const { oid, pages } = await pagedModel();
    const [a, c] = [pages[0]!, pages[2]!];
    await flip(path.join(remoteDir, a), 30);
    // Valid JSON under its own name, but not a page (a stray object in pages/).
    const text = '{"format":"cpv-manifest-page","version":1,"packs":[],"chunks":[]}\n';
    const { blake3Hex } = await import('../hash/blake3.js');
    const strayKey = remoteKeys.page(await blake3Hex(Buffer.from(text)));
    await mkdir(path.dirname(path.join(remoteDir, strayKey)), { recursive: true });
    await writeFile(path.join(remoteDir, strayKey), text);
    // c's packs go (below): c must name them.
    const cPage = JSON.parse(await readFile(path.join(remoteDir, c), 'utf8')) as { packs: string[] };
    const r = await fsck(repo, { remote: 'origin' });
    const byKey = new Map(r.problems.map((p) => [p.key, p]));
    expect(byKey.get(a)).toMatchObject({ where: 'remote', kind: 'page', oid: a.slice(6).replace('/', ''), reason: 'its content does not hash to its name (corrupt)' });
    expect(byKey.get(strayKey)).toMatchObject({ kind: 'page', reason: expect.stringMatching(/^malformed: .*packs|chunks/) });
    expect(byKey.get(remoteKeys.manifest(oid))).toMatchObject({ kind: 'manifest', reason: `names page ${a.slice(6).replace('/', '').slice(0, 12)}, which is damaged` });
    expect(r.problems).toHaveLength(3);

    await flip(path.join(remoteDir, a), 30);
    for (const p of cPage.packs) await rm(path.join(remoteDir, remoteKeys.pack(p)), { force: true });
    const r2 = await fsck(repo, { remote: 'origin' });
    expect(r2.problems).toContainEqual(
      expect.objectContaining({ kind: 'page', key: c, missing: remoteKeys.pack(cPage.packs[0]!), reason: expect.stringMatching(/^names pack [0-9a-f]{12}, which is not on the remote$/) }),
    );
  });
});

describe('fsck --repair', () => {
  it('re-fetches bad cache files and trees from the remote and rebuilds a bad manifest', async () => {
    await flip(repo.cache.filePath(model), 100);
    await flip(repo.cache.filePath(small), 0);
    await flip(repo.cache.treePath(tree), 30);
    await chmod(repo.cache.manifestPath(big), 0o644);
    await writeFile(repo.cache.manifestPath(big), '{"format":"cpv-manifest"}');
    const r = await fsck(repo, { readData: true, repair: true });
    expect(r.problems).toHaveLength(4);
    for (const p of r.problems) expect(p, JSON.stringify(p)).toMatchObject({ repaired: true });
    expect(r.problems.find((p) => p.kind === 'manifest')!.repair).toBe('rebuilt from the cached file');
    expect(r.problems.find((p) => p.oid === small)!.repair).toBe('fetched from remote origin');
    expect(r.ok).toBe(true);
    expect(await readFile(repo.cache.filePath(model))).toEqual(Buffer.from(MODEL));
    expect(await repo.cache.verifyFile(small)).toBe(true);
    expect((await repo.cache.readTree(tree)).map((e) => e.oid).sort()).toEqual([big, small].sort());
    expect((await repo.cache.readManifest(big))!.chunks.length).toBeGreaterThan(1);
    const again = await fsck(repo, { readData: true, remote: 'origin' });
    expect(again.problems).toEqual([]);
    expect(again.ok).toBe(true);
  });

  it('keeps a bad object it cannot replace and reports why', async () => {
    await rm(path.join(remoteDir, remoteKeys.manifest(model)));
    await flip(repo.cache.filePath(model), 100);
    const before = await readFile(repo.cache.filePath(model));
    const r = await fsck(repo, { readData: true, repair: true });
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      expect.objectContaining({ key: cacheKey('files', model), repaired: false, repair: 'remote origin has no copy' }),
    ]);
    expect(await readFile(repo.cache.filePath(model))).toEqual(before);
  });
});
