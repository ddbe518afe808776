import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryBackend } from '../backend/directory.js';
import { ConfigError, FormatError, IntegrityError, NotFoundError } from '../errors.js';
import { DEFAULT_CHUNKER } from '../chunk/fastcdc.js';
import { mergeConfig } from '../config/config.js';
import { blake3Hex } from '../hash/blake3.js';
import { Cache } from '../store/cache.js';
import { INLINE_MANIFEST_MAX_CHUNKS, parseRemoteManifest, type RemoteChunk, type RemoteManifest, type RemoteTreeIndex } from '../store/manifest.js';
import { createRng } from '../testing/seeded.js';
import { serializeTree } from '../store/tree.js';
import { openBackend, Remote, remoteIdOf, remoteKeys } from './remote.js';
import { parseRemoteOption } from './options.js';

const hex = (c: string): string => c.repeat(64);
const FILE = 'b3:' + hex('f');

let root: string;
let cache: Cache;
let remoteDir: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'cpv-remote-'));
  cache = new Cache(path.join(root, 'cache'));
  await cache.init();
  remoteDir = path.join(root, 'remote');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe('remote keys and ids', () => {
  it('lays out packs, manifests and trees with a 2-hex fan-out', () => {
    expect(remoteKeys.pack(hex('a'))).toBe(`packs/aa/${'a'.repeat(62)}`);
    expect(remoteKeys.manifest(FILE)).toBe(`manifests/ff/${'f'.repeat(62)}`);
    expect(remoteKeys.tree(FILE)).toBe(`trees/ff/${'f'.repeat(62)}`);
    expect(remoteKeys.page(hex('c'))).toBe(`pages/cc/${'c'.repeat(62)}`);
  });

  it('derives the remote id from the first 16 hex of BLAKE3(url)', async () => {
    expect(await remoteIdOf('/mnt/r')).toBe((await blake3Hex(Buffer.from('/mnt/r'))).slice(0, 16));
    expect(await remoteIdOf('/mnt/r')).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('Remote.open / openBackend', () => {
  it('opens the default remote, resolving a relative path against the root', async () => {
    const config = mergeConfig(root, [{ core: { remote: 'origin' }, remotes: { origin: { url: 'remote' } } }]);
    const remote = await Remote.open(config, root, cache);
    expect(remote.name).toBe('origin');
    expect(remote.backend.location).toBe(remoteDir);
    expect(remote.id).toBe(await remoteIdOf(remoteDir));
  });

  it('throws ConfigError when no remote is given and none is the default', async () => {
    const err = await rejection(Remote.open(mergeConfig(root, []), root, cache));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe('no remote given and no default remote is set');
  });

  it('throws ConfigError for an unknown remote, listing the configured ones', async () => {
    const config = mergeConfig(root, [{ remotes: { a: { url: '/a' }, b: { url: '/b' } } }]);
    const err = await rejection(Remote.open(config, root, cache, 'c'));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe('unknown remote "c"');
    expect((err as ConfigError).hint).toBe('configured remotes: a, b');
  });

  it('rejects an unsupported URL scheme with ConfigError', async () => {
    const err = await rejection(openBackend('gcs', { url: 'gs://bucket/prefix' }, root));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe('remote "gcs": unsupported URL scheme "gs://"');
  });

  it('takes an S3 request timeout in whole seconds, for S3 remotes only', () => {
    expect(parseRemoteOption('s3://b/p', 'timeout', '5')).toBe(5);
    for (const bad of ['0', '2.5', 'soon']) expect(() => parseRemoteOption('s3://b/p', 'timeout', bad)).toThrow(ConfigError);
    expect(() => parseRemoteOption('/mnt/remote', 'timeout', '5')).toThrow('option "timeout" does not apply to directory remotes');
  });

  it('accepts a file:// URL', async () => {
    const b = await openBackend('f', { url: `file://${remoteDir}` }, root);
    expect(b.location).toBe(remoteDir);
  });
});

describe('Remote', () => {
  let remote: Remote;
  let backend: DirectoryBackend;
  beforeEach(async () => {
    backend = new DirectoryBackend(remoteDir);
    remote = await Remote.fromBackend('origin', backend, cache);
  });

  const manifest = (over: Partial<RemoteManifest> = {}): RemoteManifest => ({
    format: 'cpv-manifest',
    version: 1,
    oid: FILE,
    size: 30,
    chunker: { ...DEFAULT_CHUNKER },
    packs: [hex('a'), hex('b')],
    chunks: [
      [hex('1'), 10, 0, 8],
      [hex('2'), 20, 1, 100],
    ],
    ...over,
  });

  it('writes the marker once', async () => {
    await remote.ensureMarker();
    await remote.ensureMarker();
    expect(Buffer.from(await backend.load('cpv-remote.json')).toString()).toBe('{"format":"cpv-remote","version":1}\n');
  });

  it('does not turn a manifest it merely read into knowledge', async () => {
    await backend.save(remoteKeys.manifest(FILE), Buffer.from(JSON.stringify(manifest())));
    expect(await remote.hasManifest(FILE)).toBe(true);
    expect(await remote.loadManifest(FILE)).toEqual(manifest());
    expect((await remote.knownChunks()).size).toBe(0);
  });

  it('gives a chunk known in several places the same location whatever the record order', async () => {
    const spots = [
      { pack: hex('d'), offset: 8, length: 5 },
      { pack: hex('c'), offset: 900, length: 5 },
      { pack: hex('c'), offset: 100, length: 5 },
    ];
    const next = createRng(31);
    // Records whose names (their hashes) sort in varying order against each other.
    for (const [i, loc] of spots.entries()) await remote.rememberLocations([[hex('3'), loc], [(next() >>> 0).toString(16).padStart(64, String(i))!, loc]]);
    expect((await remote.knownChunks()).get(hex('3'))).toEqual({ pack: hex('c'), offset: 100, length: 5 });
  });

  it('knows the locations it was told were proven, across records', async () => {
    await remote.rememberLocations([[hex('3'), { pack: hex('c'), offset: 8, length: 5 }]]);
    await remote.rememberLocations([
      [hex('4'), { pack: hex('d'), offset: 8, length: 7 }],
      [hex('5'), { pack: hex('d'), offset: 15, length: 9 }],
    ]);
    await remote.rememberLocations([]);
    expect(Object.fromEntries(await remote.knownChunks())).toEqual({
      [hex('3')]: { pack: hex('c'), offset: 8, length: 5 },
      [hex('4')]: { pack: hex('d'), offset: 8, length: 7 },
      [hex('5')]: { pack: hex('d'), offset: 15, length: 9 },
    });
  });

  it('forgets every record that points into a vanished pack', async () => {
    await remote.rememberLocations([[hex('3'), { pack: hex('c'), offset: 8, length: 5 }]]);
    await remote.rememberLocations([
      [hex('4'), { pack: hex('d'), offset: 8, length: 7 }],
      [hex('5'), { pack: hex('c'), offset: 15, length: 9 }],
    ]);
    await remote.rememberLocations([[hex('6'), { pack: hex('e'), offset: 8, length: 1 }]]);
    await remote.forgetPacks(new Set([hex('c')]));
    expect([...(await remote.knownChunks()).keys()]).toEqual([hex('6')]);
  });

  it('ignores damaged knowledge: it is a hint', async () => {
    await remote.rememberLocations([[hex('3'), { pack: hex('c'), offset: 8, length: 5 }]]);
    const dir = path.join(cache.knownDir(remote.id), 'ee');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'e'.repeat(62)), '{"format":"cpv-locations"');
    await writeFile(path.join(dir, 'f'.repeat(62)), JSON.stringify({ format: 'cpv-locations', version: 1, chunks: [['zz', hex('c'), 0, 1]] }));
    expect((await remote.knownChunks()).size).toBe(1);
  });

  it('keeps knowledge per remote', async () => {
    await remote.rememberLocations([[hex('3'), { pack: hex('c'), offset: 8, length: 5 }]]);
    const other = await Remote.fromBackend('backup', new DirectoryBackend(path.join(root, 'other')), cache);
    expect((await other.knownChunks()).size).toBe(0);
    expect((await remote.knownChunks()).size).toBe(1);
  });

  it('loadManifest throws NotFoundError naming the remote, and FormatError for a malformed one', async () => {
    const err = await rejection(remote.loadManifest(FILE));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toBe(`file b3:ffffffffffff is not on remote "origin" (${remoteDir})`);
    await backend.save(remoteKeys.manifest(FILE), Buffer.from(JSON.stringify(manifest({ size: 31 }))));
    const bad = await rejection(remote.loadManifest(FILE));
    expect(bad).toBeInstanceOf(FormatError);
    expect((bad as FormatError).message).toBe('remote manifest b3:ffffffffffff on origin: chunk lengths sum to 30, not the size 31');
    expect((await remote.knownChunks()).size).toBe(0);
  });

  it('loadManifest rejects a manifest stored under the wrong oid', async () => {
    const other = 'b3:' + hex('e');
    await backend.save(remoteKeys.manifest(other), Buffer.from(JSON.stringify(manifest())));
    await expect(remote.loadManifest(other)).rejects.toBeInstanceOf(FormatError);
  });

  it('loadTree checks the hash and the number of locations', async () => {
    const tree = serializeTree([{ path: 'a', oid: 'b3:' + hex('4'), size: 7, mode: 0o644 }]);
    const oid = 'b3:' + (await blake3Hex(Buffer.from(tree)));
    const index: RemoteTreeIndex = { format: 'cpv-tree-index', version: 1, oid, tree, packs: [hex('d')], entries: [[0, 8]] };
    await backend.save(remoteKeys.tree(oid), Buffer.from(JSON.stringify(index)));
    expect((await remote.loadTree(oid)).entries).toEqual([{ path: 'a', oid: 'b3:' + hex('4'), size: 7, mode: 0o644 }]);

    await backend.save(remoteKeys.tree(oid), Buffer.from(JSON.stringify({ ...index, entries: [[0, 8], null] })));
    const err = await rejection(remote.loadTree(oid));
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).message).toContain('2 locations for 1 entries');

    await backend.save(remoteKeys.tree(oid), Buffer.from(JSON.stringify({ ...index, tree: tree.replace(' 7 ', ' 8 ') })));
    await expect(remote.loadTree(oid)).rejects.toBeInstanceOf(IntegrityError);
  });

  describe('paged (version 2) manifests', () => {
    /** A located chunk list of `n` seeded chunks over two packs. */
    const big = (n: number, seed = 41): RemoteManifest => {
      const next = createRng(seed);
      const chunks = Array.from({ length: n }, (_, i): RemoteChunk => [
        Array.from({ length: 8 }, () => next().toString(16).padStart(8, '0')).join(''),
        100 + (next() % 900),
        i % 2,
        8 + 1000 * i,
      ]);
      return { format: 'cpv-manifest', version: 1, oid: FILE, size: chunks.reduce((t, c) => t + c[1], 0), chunker: { ...DEFAULT_CHUNKER }, packs: [hex('a'), hex('b')], chunks };
    };
    const keysUnder = async (prefix: string): Promise<string[]> => {
      const out: string[] = [];
      for await (const o of backend.list(prefix)) out.push(o.key);
      return out.sort();
    };
    const located = (m: RemoteManifest): Array<[string, number, string, number]> => m.chunks.map(([c, l, p, o]) => [c, l, m.packs[p]!, o]);

    it('stays inline (version 1, no pages) up to the threshold', async () => {
      const m = big(INLINE_MANIFEST_MAX_CHUNKS);
      const n = await remote.saveManifest(m);
      expect(await keysUnder('pages/')).toEqual([]);
      const text = Buffer.from(await backend.load(remoteKeys.manifest(FILE))).toString();
      expect(n).toBe(text.length);
      expect(parseRemoteManifest(text, 'm', FILE).version).toBe(1);
      expect(located(await remote.loadManifest(FILE))).toEqual(located(m));
    });

    it('writes pages named by their hash, then the root, and reads the same chunk list back', async () => {
      const m = big(1500);
      const n = await remote.saveManifest(m);
      const pageKeys = await keysUnder('pages/');
      expect(pageKeys.length).toBeGreaterThan(5);
      let total = Buffer.from(await backend.load(remoteKeys.manifest(FILE))).length;
      for (const k of pageKeys) {
        const bytes = await backend.load(k);
        expect(k).toBe(remoteKeys.page(await blake3Hex(bytes)));
        total += bytes.length;
      }
      expect(n).toBe(total);
      const loaded = await remote.loadManifest(FILE);
      expect(loaded.version).toBe(2);
      expect(loaded.size).toBe(m.size);
      expect(located(loaded)).toEqual(located(m));
      expect([...loaded.pages!].sort()).toEqual(pageKeys.map((k) => k.slice(6).replace('/', '')));
      // Saving again writes only the root: every page is there.
      const again = await remote.saveManifest(m);
      expect(again).toBe(Buffer.from(await backend.load(remoteKeys.manifest(FILE))).length);
    });

    it('names a missing page and the file with IntegrityError', async () => {
      await remote.saveManifest(big(1500));
      const pages = await keysUnder('pages/');
      const gone = pages[createRng(5)() % pages.length]!;
      await backend.remove(gone);
      const err = await rejection(remote.loadManifest(FILE));
      expect(err).toBeInstanceOf(IntegrityError);
      const page = gone.slice(6).replace('/', '');
      expect((err as IntegrityError).message).toBe(`remote manifest b3:ffffffffffff on origin names page ${page.slice(0, 12)} (${gone}), which is not on the remote`);
      expect((err as IntegrityError).data).toMatchObject({ oid: FILE, page, missing: gone, remote: 'origin' });
      expect((err as IntegrityError).hint).toContain('cpv fsck -r origin');
    });

    it('names a corrupt page and the file with IntegrityError', async () => {
      await remote.saveManifest(big(1500));
      const pages = await keysUnder('pages/');
      const bad = pages[createRng(6)() % pages.length]!;
      const text = Buffer.from(await backend.load(bad)).toString();
      // Still a valid page, but not the bytes its name promises (another offset).
      await rm(path.join(remoteDir, bad), { force: true });
      await backend.save(bad, Buffer.from(text.replace(/,(\d+)\]/, (_m, o: string) => `,${Number(o) + 1}]`)));
      const err = await rejection(remote.loadManifest(FILE));
      expect(err).toBeInstanceOf(IntegrityError);
      expect((err as IntegrityError).message).toMatch(/^remote manifest b3:ffffffffffff on origin: manifest page [0-9a-f]{12} \(pages\/.*\) is corrupt: its content does not hash to its name$/);
      expect((err as IntegrityError).message).toContain(bad);
    });

    it('rejects a malformed page with FormatError naming it and the file', async () => {
      // A page stored under its own hash (so it passes the hash check) that is not a valid page.
      const body = Buffer.from(JSON.stringify({ format: 'cpv-manifest-page', version: 1, packs: [hex('a')], chunks: [[hex('1'), 10, 3, 8]] }) + '\n');
      const page = await blake3Hex(body);
      await backend.save(remoteKeys.page(page), body);
      const root = { format: 'cpv-manifest', version: 2, oid: FILE, size: 10, chunker: { ...DEFAULT_CHUNKER }, pages: [[page, 1, 10]] };
      await backend.save(remoteKeys.manifest(FILE), Buffer.from(JSON.stringify(root)));
      const err = await rejection(remote.loadManifest(FILE));
      expect(err).toBeInstanceOf(FormatError);
      expect((err as FormatError).message).toBe(`remote manifest b3:ffffffffffff on origin: manifest page ${page.slice(0, 12)}: each chunk must be ["<oid>", length > 0, pack index, offset]`);
    });

    it('shares page reads across manifests through a memo', async () => {
      await remote.saveManifest(big(1500));
      let loads = 0;
      const counting = await Remote.fromBackend('origin', Object.assign(Object.create(backend) as DirectoryBackend, {
        load: (key: string, o?: object) => {
          if (key.startsWith('pages/')) loads++;
          return backend.load(key, o);
        },
      }), cache);
      const pages = new Map();
      await counting.loadManifest(FILE, undefined, { pages });
      const first = loads;
      expect(first).toBe((await keysUnder('pages/')).length);
      await counting.loadManifest(FILE, undefined, { pages });
      expect(loads).toBe(first);
    });
  });
});
