import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Backend, LoadOptions, ObjectInfo, OpOptions, SaveOptions } from '../backend/backend.js';
import { DirectoryBackend } from '../backend/directory.js';
import { IntegrityError, NotFoundError, RemoteError } from '../errors.js';
import { validateChunkerParams } from '../chunk/fastcdc.js';
import { blake3Hex } from '../hash/blake3.js';
import { Remote, remoteKeys } from '../remote/remote.js';
import { Cache } from '../store/cache.js';
import { parseRemoteManifest, parseRemoteTreeIndex } from '../store/manifest.js';
import { readPackIndex } from '../store/pack.js';
import type { TreeEntry } from '../store/tree.js';
import { seededBytes } from '../testing/seeded.js';
import { fetchObjects } from './fetch.js';
import { push, type PushOptions } from './push.js';
import type { TransferItem } from './types.js';

const SMALL = validateChunkerParams({ algorithm: 'fastcdc-v1', gear: 'cpv-gear-v1', min: 1024, avg: 4096, max: 16384 });
const MiB = 1024 * 1024;
const PUSH: PushOptions = { chunker: SMALL, packSize: MiB, jobs: 4 };
const FETCH = { jobs: 4 };

/**
 * A backend that passes everything through to `inner`, failing saves whose key `fails`
 * selects and letting `onLoad` delay or alter what loads return.
 */
class FlakyBackend implements Backend {
  readonly saved: string[] = [];
  loads = 0;
  loading = 0;
  constructor(
    private readonly inner: Backend,
    private readonly fails: (key: string) => boolean = () => false,
    private readonly onLoad?: (key: string, bytes: Uint8Array, n: number) => Promise<Uint8Array>,
  ) {}
  get location(): string {
    return this.inner.location;
  }
  async save(key: string, data: Uint8Array | AsyncIterable<Uint8Array>, opts?: SaveOptions): Promise<void> {
    if (this.fails(key)) throw new RemoteError(`simulated failure saving ${key}`);
    await this.inner.save(key, data, opts);
    this.saved.push(key);
  }
  async load(key: string, opts?: LoadOptions): Promise<Uint8Array> {
    const n = this.loads++;
    this.loading++;
    try {
      const bytes = await this.inner.load(key, opts);
      return this.onLoad ? await this.onLoad(key, bytes, n) : bytes;
    } finally {
      this.loading--;
    }
  }
  stat(key: string, opts?: OpOptions): Promise<ObjectInfo> {
    return this.inner.stat(key, opts);
  }
  exists(key: string, opts?: OpOptions): Promise<boolean> {
    return this.inner.exists(key, opts);
  }
  list(prefix: string, opts?: OpOptions): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, opts);
  }
  remove(key: string, opts?: OpOptions): Promise<void> {
    return this.inner.remove(key, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

let root: string;
let remoteDir: string;
let backend: DirectoryBackend;
/** The pushing side. */
let cache1: Cache;
let remote1: Remote;
/** A second, empty client of the same remote. */
let cache2: Cache;
let remote2: Remote;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'cpv-transfer-'));
  remoteDir = path.join(root, 'remote');
  backend = new DirectoryBackend(remoteDir);
  cache1 = new Cache(path.join(root, 'cache1'));
  cache2 = new Cache(path.join(root, 'cache2'));
  await cache1.init();
  await cache2.init();
  remote1 = await Remote.fromBackend('origin', backend, cache1);
  remote2 = await Remote.fromBackend('origin', new DirectoryBackend(remoteDir), cache2);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function ingest(cache: Cache, name: string, bytes: Uint8Array): Promise<{ oid: string; size: number; chunks: number }> {
  const src = path.join(root, 'src', name);
  await mkdir(path.dirname(src), { recursive: true });
  await writeFile(src, bytes);
  const r = await cache.ingestFile(src, SMALL);
  return { oid: r.oid, size: r.size, chunks: r.chunks.length };
}

/** A ~1 MiB model file (hundreds of chunks). */
const MODEL = seededBytes(1, MiB + 12_345);

/** A ~3 MiB model: over 256 chunks, so its remote manifest is paged (version 2). */
const BIG = seededBytes(5, 3 * MiB + 777);

/** The model with a few KiB changed in the middle. */
function modelV2(): Uint8Array {
  const v2 = Uint8Array.from(MODEL);
  v2.set(seededBytes(99, 3000), 500_000);
  return v2;
}

/** A directory: small single-chunk files, a multi-chunk file, an empty file. */
async function dataDir(cache: Cache): Promise<{ item: TransferItem; entries: TreeEntry[] }> {
  const files: Array<[string, Uint8Array, number]> = [
    ['a.txt', seededBytes(2, 100), 0o644],
    ['big.bin', seededBytes(3, 200_000), 0o644],
    ['empty', new Uint8Array(0), 0o644],
    ['sub/c.bin', seededBytes(4, 500), 0o755],
  ];
  const entries: TreeEntry[] = [];
  for (const [p, bytes, mode] of files) {
    const r = await ingest(cache, `data/${p}`, bytes);
    entries.push({ path: p, oid: r.oid, size: r.size, mode });
  }
  const { oid } = await cache.writeTree(entries);
  return { item: { oid, type: 'dir', size: entries.reduce((n, e) => n + e.size, 0), path: 'data' }, entries };
}

async function modelItem(cache: Cache, bytes = MODEL): Promise<TransferItem> {
  const r = await ingest(cache, 'model.bin', bytes);
  return { oid: r.oid, type: 'file', size: r.size, path: 'model.bin' };
}

async function keys(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of backend.list(prefix)) out.push(o.key);
  return out.sort();
}

async function packBytes(): Promise<number> {
  let n = 0;
  for await (const o of backend.list('packs/')) n += o.size;
  return n;
}

async function sameObject(oid: string): Promise<void> {
  const a = await readFile(cache1.filePath(oid));
  const b = await readFile(cache2.filePath(oid));
  expect(b.equals(a)).toBe(true);
  expect(await cache2.verifyFile(oid)).toBe(true);
}

async function cachedFiles(cache: Cache): Promise<string[]> {
  try {
    return (await readdir(path.join(cache.dir, 'files'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe('push and fetch', () => {
  it('moves a multi-chunk file and a directory to an empty cache, byte for byte', async () => {
    const model = await modelItem(cache1);
    const { item: data, entries } = await dataDir(cache1);
    const total = MODEL.length + 100 + 200_000 + 500;

    const pushed = await push(cache1, remote1, [model, data], PUSH);
    expect(pushed).toMatchObject({ upToDate: 0, uploaded: 2, files: 4, bytes: total, dedupBytes: 0 });
    expect(pushed.chunks).toBeGreaterThan(250);
    expect(pushed.packs).toBeGreaterThanOrEqual(2);
    expect(pushed.wireBytes).toBeGreaterThan(total);
    expect(pushed.wireBytes).toBe((await packBytes()) + (await sizeOf('manifests/')) + (await sizeOf('trees/')) + (await sizeOf('pages/')));

    // The documented layout: marker, packs named by their hash, a manifest per
    // multi-chunk file (and per file pushed on its own), one tree index.
    expect(JSON.parse(Buffer.from(await backend.load('cpv-remote.json')).toString())).toEqual({ format: 'cpv-remote', version: 1 });
    const big = entries.find((e) => e.path === 'big.bin')!;
    expect(await keys('manifests/')).toEqual([remoteKeys.manifest(model.oid), remoteKeys.manifest(big.oid)].sort());
    expect(await keys('trees/')).toEqual([remoteKeys.tree(data.oid)]);
    const packKeys = await keys('packs/');
    expect(packKeys).toHaveLength(pushed.packs);
    for (const k of packKeys) {
      const bytes = await backend.load(k);
      expect(k).toBe(remoteKeys.pack(await blake3Hex(bytes)));
      for (const e of readPackIndex(bytes, k)) expect(await blake3Hex(bytes.subarray(e.offset, e.offset + e.length))).toBe(e.oid);
      // A pack closes once it reaches packSize; it exceeds it by less than a chunk.
      expect(bytes.length).toBeLessThan(MiB + SMALL.max + 64 * 1024);
    }
    const index = parseRemoteTreeIndex(Buffer.from(await backend.load(remoteKeys.tree(data.oid))).toString(), 'tree', data.oid);
    // Lines in tree order: a.txt (one chunk), big.bin (manifest), empty (nothing), sub/c.bin (one chunk).
    expect(index.entries.map((e) => (e === null ? null : 'packed'))).toEqual(['packed', null, null, 'packed']);
    const manifest = parseRemoteManifest(Buffer.from(await backend.load(remoteKeys.manifest(model.oid))).toString(), 'm', model.oid);
    expect(manifest.size).toBe(MODEL.length);
    expect(manifest.chunker).toEqual(SMALL);

    const fetched = await fetchObjects(cache2, remote2, [model, data], FETCH);
    expect(fetched).toMatchObject({ upToDate: 0, files: 4, bytes: total, reusedBytes: 0 });
    await sameObject(model.oid);
    for (const e of entries) await sameObject(e.oid);
    expect(await cache2.readTree(data.oid)).toEqual(entries);
    // Fetched multi-chunk files get a local manifest too (a chunk source for later fetches).
    expect(await cache2.readManifest(model.oid)).toEqual(await cache1.readManifest(model.oid));
    expect(await readdir(cache2.tmpDir)).toEqual([]);
  });

  it('uploads nothing the second time, and fetches nothing the second time', async () => {
    const model = await modelItem(cache1);
    const { item: data } = await dataDir(cache1);
    await push(cache1, remote1, [model, data], PUSH);
    const before = await keys('');
    const again = await push(cache1, remote1, [model, data], PUSH);
    expect(again).toEqual({ upToDate: 2, uploaded: 0, files: 0, chunks: 0, bytes: 0, dedupBytes: 0, packs: 0, wireBytes: 0 });
    expect(await keys('')).toEqual(before);

    await fetchObjects(cache2, remote2, [model, data], FETCH);
    const twice = await fetchObjects(cache2, remote2, [model, data], FETCH);
    expect(twice).toEqual({ upToDate: 2, files: 0, bytes: 0, reusedBytes: 0, requests: 0 });
  });

  it('notes the files it downloaded as fresh, once each, and never those it already had', async () => {
    const model = await modelItem(cache1);
    const { item: data, entries } = await dataDir(cache1);
    await push(cache1, remote1, [model, data], PUSH);
    const a = entries.find((e) => e.path === 'a.txt')!;
    // cache2 already holds a.txt from elsewhere: not fresh.
    await ingest(cache2, 'a.txt', seededBytes(2, 100));
    await fetchObjects(cache2, remote2, [model, data], FETCH);
    expect(cache2.takeFresh(a.oid)).toBe(false);
    const downloaded = [model.oid, ...entries.filter((e) => e.size > 0 && e.oid !== a.oid).map((e) => e.oid)];
    for (const oid of downloaded) expect(cache2.takeFresh(oid)).toBe(true);
    for (const oid of downloaded) expect(cache2.takeFresh(oid)).toBe(false);
  });

  it('reassembles files byte for byte with response buffers reused from request to request', async () => {
    // Small requests and no hold budget: many responses pass through each reused
    // buffer, and runs written ahead of the hash are read back from the temp file.
    const files = [seededBytes(31, 700_000), seededBytes(32, 300_000), seededBytes(33, 5000)];
    const items: TransferItem[] = [];
    for (const [i, bytes] of files.entries()) {
      const r = await ingest(cache1, `f${i}.bin`, bytes);
      items.push({ oid: r.oid, type: 'file', size: r.size, path: `f${i}.bin` });
    }
    await push(cache1, remote1, items, { ...PUSH, packSize: 256 * 1024 });
    for (const holdBudget of [0, 64 * 1024]) {
      const cache = new Cache(path.join(root, `cache-${holdBudget}`));
      await cache.init();
      // Earlier requests answer later: runs arrive ahead of the file hash and are held.
      const late = new FlakyBackend(new DirectoryBackend(remoteDir), undefined, async (_key, bytes, n) => {
        await sleep(n % 3 === 0 ? 30 : 1);
        return bytes;
      });
      const remote = await Remote.fromBackend('origin', late, cache);
      const r = await fetchObjects(cache, remote, items, { jobs: 3, maxRequest: 40 * 1024, coalesceGap: 0, holdBudget });
      expect(r.requests).toBeGreaterThan(20);
      for (const [i, item] of items.entries()) expect(Buffer.compare(await readFile(cache.filePath(item.oid)), files[i]!)).toBe(0);
    }
  });

  it('after a small edit, pushes only the changed chunks and fetch reuses the old version', async () => {
    const v1 = await modelItem(cache1);
    await push(cache1, remote1, [v1], PUSH);
    await fetchObjects(cache2, remote2, [v1], FETCH);

    const v2bytes = modelV2();
    const v2 = await modelItem(cache1, v2bytes);
    expect(v2.oid).not.toBe(v1.oid);
    const packsBefore = await packBytes();
    const pushed = await push(cache1, remote1, [v2], PUSH);
    expect(pushed.uploaded).toBe(1);
    expect(pushed.chunks).toBeGreaterThanOrEqual(1);
    expect(pushed.chunks).toBeLessThanOrEqual(6);
    expect(pushed.bytes).toBeLessThan(64 * 1024);
    expect(pushed.bytes + pushed.dedupBytes).toBe(v2bytes.length);
    expect(pushed.packs).toBe(1);
    expect((await packBytes()) - packsBefore).toBeLessThan(70 * 1024);

    const fetched = await fetchObjects(cache2, remote2, [v2], FETCH);
    expect(fetched.files).toBe(1);
    expect(fetched.bytes).toBe(pushed.bytes);
    expect(fetched.reusedBytes).toBe(pushed.dedupBytes);
    await sameObject(v2.oid);
  });

  it('reuses chunks of a version the fetching cache added itself', async () => {
    const v1 = await modelItem(cache1);
    const v2 = await modelItem(cache1, modelV2());
    await push(cache1, remote1, [v1, v2], PUSH);
    await ingest(cache2, 'mine.bin', MODEL);
    const fetched = await fetchObjects(cache2, remote2, [v2], FETCH);
    expect(fetched.reusedBytes).toBeGreaterThan(MODEL.length - 64 * 1024);
    expect(fetched.bytes).toBeLessThan(64 * 1024);
    await sameObject(v2.oid);
  });

  it('writes all packs, then pages, then all manifests, then all trees', async () => {
    const recording = new FlakyBackend(new DirectoryBackend(remoteDir));
    const remote = await Remote.fromBackend('origin', recording, cache1);
    const { item: data } = await dataDir(cache1);
    await push(cache1, remote, [await modelItem(cache1), await modelItem(cache1, BIG), data], PUSH);
    const kinds = recording.saved.filter((k) => k !== 'cpv-remote.json').map((k) => k.split('/')[0]);
    const firstPage = kinds.indexOf('pages');
    const firstManifest = kinds.indexOf('manifests');
    const firstTree = kinds.indexOf('trees');
    expect(firstPage).toBeGreaterThan(0);
    expect(kinds.lastIndexOf('packs')).toBeLessThan(firstPage);
    expect(kinds.lastIndexOf('packs')).toBeLessThan(firstManifest);
    // BIG's root comes after all of its pages (the only paged file here).
    expect(kinds.lastIndexOf('pages')).toBeLessThan(recording.saved.indexOf(remoteKeys.manifest((await modelItem(cache1, BIG)).oid)));
    expect(kinds.lastIndexOf('manifests')).toBeLessThan(firstTree);
    expect(kinds.filter((k) => k === 'trees')).toHaveLength(1);
  });

  it('an interrupted push publishes no manifest or tree, and a rerun completes it', async () => {
    const model = await modelItem(cache1);
    const { item: data, entries } = await dataDir(cache1);
    const flaky = await Remote.fromBackend('origin', new FlakyBackend(new DirectoryBackend(remoteDir), (k) => k.startsWith('manifests/')), cache1);
    const err = await rejection(push(cache1, flaky, [model, data], PUSH));
    expect(err).toBeInstanceOf(RemoteError);
    expect(await keys('manifests/')).toEqual([]);
    expect(await keys('trees/')).toEqual([]);
    const packs = await keys('packs/');
    expect(packs.length).toBeGreaterThan(0);
    // Nothing is published, so a reader sees the items as absent.
    expect(await remote2.hasManifest(model.oid)).toBe(false);
    await expect(fetchObjects(cache2, remote2, [model], FETCH)).rejects.toBeInstanceOf(NotFoundError);

    const rerun = await push(cache1, remote1, [model, data], PUSH);
    expect(rerun.uploaded).toBe(2);
    // The packs uploaded before the failure are reused, not uploaded again.
    expect(rerun.bytes).toBe(0);
    expect(rerun.packs).toBe(0);
    expect(await keys('packs/')).toEqual(packs);
    expect(await keys('trees/')).toEqual([remoteKeys.tree(data.oid)]);

    await fetchObjects(cache2, remote2, [model, data], FETCH);
    await sameObject(model.oid);
    for (const e of entries) await sameObject(e.oid);
  });

  it('recovers when a pack it remembers uploading has vanished: uploads again, never publishes a dangling manifest', async () => {
    const model = await modelItem(cache1);
    const flaky = await Remote.fromBackend('origin', new FlakyBackend(new DirectoryBackend(remoteDir), (k) => k.startsWith('manifests/')), cache1);
    await rejection(push(cache1, flaky, [model], PUSH));
    const packs = await keys('packs/');
    expect(packs.length).toBe(2);
    await backend.remove(packs[0]!);

    const r = await push(cache1, remote1, [model], PUSH);
    expect(r.uploaded).toBe(1);
    expect(r.bytes).toBeGreaterThan(0);
    expect(r.bytes).toBeLessThan(MODEL.length);
    // Every pack the published manifest names exists.
    const m = await remote2.loadManifest(model.oid);
    for (const p of m.packs) expect(await backend.exists(remoteKeys.pack(p))).toBe(true);
    await fetchObjects(cache2, remote2, [model], FETCH);
    await sameObject(model.oid);
  });

  it('recovers when the remote was wiped after a complete push', async () => {
    const model = await modelItem(cache1);
    const { item: data, entries } = await dataDir(cache1);
    await push(cache1, remote1, [model, data], PUSH);
    await rm(remoteDir, { recursive: true, force: true });

    const r = await push(cache1, remote1, [model, data], PUSH);
    expect(r).toMatchObject({ upToDate: 0, uploaded: 2, dedupBytes: 0, bytes: MODEL.length + 100 + 200_000 + 500 });
    await fetchObjects(cache2, remote2, [model, data], FETCH);
    await sameObject(model.oid);
    for (const e of entries) await sameObject(e.oid);
  });

  it('fetch rejects a corrupted pack with IntegrityError and stores nothing for the file', async () => {
    const model = await modelItem(cache1);
    await push(cache1, remote1, [model], PUSH);
    for (const k of await keys('packs/')) {
      const file = path.join(remoteDir, k);
      await chmod(file, 0o644);
      const b = await readFile(file);
      b[100] = b[100]! ^ 0x01; // inside the first chunk
      await writeFile(file, b);
    }
    const err = await rejection(fetchObjects(cache2, remote2, [model], FETCH));
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).code).toBe('INTEGRITY');
    expect((err as IntegrityError).message).toContain('is corrupt');
    expect((err as IntegrityError).data.path).toBe('model.bin');
    expect(await cache2.hasFile(model.oid)).toBe(false);
    expect(await cachedFiles(cache2)).toEqual([]);
    expect(await cache2.readManifest(model.oid)).toBeUndefined();
  });

  it('a failed fetch stops: nothing lands in the cache after it rejects and no temp file stays', async () => {
    const items: TransferItem[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await ingest(cache1, `f${i}`, seededBytes(20 + i, 300_000));
      items.push({ oid: r.oid, type: 'file', size: r.size, path: `f${i}` });
    }
    await push(cache1, remote1, items, PUSH);
    // The first pack response is damaged in transit and arrives at once; the others are slow.
    let packLoads = 0;
    const wire = new FlakyBackend(new DirectoryBackend(remoteDir), undefined, async (key, bytes) => {
      if (!key.startsWith('packs/')) return bytes;
      if (packLoads++ === 0) {
        const bad = Uint8Array.from(bytes);
        bad[0] = bad[0]! ^ 0xff;
        return bad;
      }
      await sleep(50);
      return bytes;
    });
    const remote = await Remote.fromBackend('origin', wire, cache2);
    const err = await rejection(fetchObjects(cache2, remote, items, { jobs: 4, maxRequest: 64 * 1024 }));
    expect(err).toBeInstanceOf(IntegrityError);
    const atRejection = await cachedFiles(cache2);
    // Give any work still running behind the rejection time to show itself.
    for (let quiet = 0, waited = 0; quiet < 4 && waited < 60; waited++) {
      await sleep(50);
      quiet = wire.loading === 0 ? quiet + 1 : 0;
    }
    expect(await cachedFiles(cache2)).toEqual(atRejection);
    expect(await readdir(cache2.tmpDir)).toEqual([]);
  });

  for (const holdBudget of [undefined, 0]) {
    it(`assembles a file from responses that arrive out of order (hold budget ${holdBudget ?? 'default'})`, async () => {
      const model = await modelItem(cache1);
      await push(cache1, remote1, [model], PUSH);
      // Later requests answer first, so the file hash has to wait for earlier runs: kept
      // in memory, or (budget 0) read back from the temp file.
      const wire = new FlakyBackend(new DirectoryBackend(remoteDir), undefined, async (key, bytes, n) => {
        if (key.startsWith('packs/')) await sleep(Math.max(0, 60 - n * 4));
        return bytes;
      });
      const remote = await Remote.fromBackend('origin', wire, cache2);
      const r = await fetchObjects(cache2, remote, [model], { jobs: 8, maxRequest: 64 * 1024, holdBudget });
      expect(r.requests).toBeGreaterThan(8);
      await sameObject(model.oid);
      expect(await readdir(cache2.tmpDir)).toEqual([]);
    });
  }

  it('fetch rejects a manifest whose chunks are all genuine but do not make up the file', async () => {
    const model = await modelItem(cache1);
    await push(cache1, remote1, [model], PUSH);
    const file = path.join(remoteDir, remoteKeys.manifest(model.oid));
    const m = JSON.parse(await readFile(file, 'utf8'));
    [m.chunks[1], m.chunks[2]] = [m.chunks[2], m.chunks[1]];
    await chmod(file, 0o644);
    await writeFile(file, JSON.stringify(m) + '\n');
    const err = await rejection(fetchObjects(cache2, remote2, [model], FETCH));
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).message).toContain('does not match its oid');
    expect(await cachedFiles(cache2)).toEqual([]);
    expect(await readdir(cache2.tmpDir)).toEqual([]);
  });

  it('fetch rejects a corrupted single-chunk file of a directory', async () => {
    const { item: data, entries } = await dataDir(cache1);
    await push(cache1, remote1, [data], PUSH);
    const index = parseRemoteTreeIndex(Buffer.from(await backend.load(remoteKeys.tree(data.oid))).toString(), 'tree');
    const [pi, offset] = index.entries[0]!; // a.txt
    const file = path.join(remoteDir, remoteKeys.pack(index.packs[pi]!));
    await chmod(file, 0o644);
    const b = await readFile(file);
    b[offset + 10] = b[offset + 10]! ^ 0xff;
    await writeFile(file, b);
    const err = await rejection(fetchObjects(cache2, remote2, [data], { jobs: 1 }));
    expect(err).toBeInstanceOf(IntegrityError);
    expect(await cache2.hasFile(entries[0]!.oid)).toBe(false);
  });

  it('fetch of an item recorded with size 0 but a non-empty oid throws IntegrityError and caches nothing', async () => {
    const model = await modelItem(cache1);
    await push(cache1, remote1, [model], PUSH);
    const err = await rejection(fetchObjects(cache2, remote2, [{ ...model, size: 0 }], FETCH));
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).message).toBe(`model.bin is recorded with size 0, but ${model.oid.slice(0, 15)} is not the oid of an empty file`);
    expect(await cachedFiles(cache2)).toEqual([]);
    // The real empty file needs nothing from the remote.
    const empty = { oid: `b3:${await blake3Hex(new Uint8Array(0))}`, type: 'file' as const, size: 0, path: 'empty' };
    await fetchObjects(cache2, remote2, [empty], FETCH);
    expect(await cache2.verifyFile(empty.oid)).toBe(true);
  });

  it('fetch of a file whose manifest is missing throws NotFoundError with a hint', async () => {
    const model = await modelItem(cache1);
    await push(cache1, remote1, [model], PUSH);
    await backend.remove(remoteKeys.manifest(model.oid));
    const err = await rejection(fetchObjects(cache2, remote2, [model], FETCH));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toBe(`file ${model.oid.slice(0, 15)} is not on remote "origin" (${remoteDir})`);
    expect((err as NotFoundError).hint).toContain('cpv push');
    expect((err as NotFoundError).data).toEqual({ key: remoteKeys.manifest(model.oid), remote: 'origin' });
    expect(await cachedFiles(cache2)).toEqual([]);
  });

  it('fetch of a directory whose tree is missing throws NotFoundError', async () => {
    const { item: data } = await dataDir(cache1);
    await push(cache1, remote1, [data], PUSH);
    await backend.remove(remoteKeys.tree(data.oid));
    const err = await rejection(fetchObjects(cache2, remote2, [data], FETCH));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toContain(`directory ${data.oid.slice(0, 15)} is not on remote "origin"`);
  });

  it('fetch rejects a tree index whose listing does not hash to its oid', async () => {
    const { item: data } = await dataDir(cache1);
    await push(cache1, remote1, [data], PUSH);
    const key = remoteKeys.tree(data.oid);
    const index = JSON.parse(Buffer.from(await backend.load(key)).toString()) as { tree: string };
    index.tree = index.tree.replace(' a.txt', ' b.txt');
    await backend.save(key, Buffer.from(JSON.stringify(index)));
    await expect(fetchObjects(cache2, remote2, [data], FETCH)).rejects.toBeInstanceOf(IntegrityError);
    expect(await cache2.hasTree(data.oid)).toBe(false);
  });

  it('fetches only the selected files of a directory', async () => {
    const { item: data, entries } = await dataDir(cache1);
    await push(cache1, remote1, [data], PUSH);
    const r = await fetchObjects(cache2, remote2, [{ ...data, only: new Set(['sub/c.bin']) }], FETCH);
    expect(r.files).toBe(1);
    expect(r.bytes).toBe(500);
    const c = entries.find((e) => e.path === 'sub/c.bin')!;
    expect(await cachedFiles(cache2)).toEqual([c.oid.slice(5)]);
    // The rest later, with the tree already cached.
    await fetchObjects(cache2, remote2, [data], FETCH);
    for (const e of entries) await sameObject(e.oid);
  });

  it('push of an item that is not cached throws NotFoundError naming it and uploads nothing', async () => {
    const missing: TransferItem = { oid: 'b3:' + 'ab'.repeat(32), type: 'file', size: 10, path: 'gone.bin' };
    const err = await rejection(push(cache1, remote1, [missing], PUSH));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toContain('gone.bin');
    expect(await keys('')).toEqual([]);
  });

  it('dry-run push and fetch report without writing', async () => {
    const model = await modelItem(cache1);
    const dry = await push(cache1, remote1, [model], { ...PUSH, dryRun: true });
    expect(dry.bytes).toBe(MODEL.length);
    expect(dry.packs).toBe(2);
    expect(await keys('')).toEqual([]);
    await push(cache1, remote1, [model], PUSH);
    const f = await fetchObjects(cache2, remote2, [model], { ...FETCH, dryRun: true });
    expect(f.bytes).toBe(MODEL.length);
    expect(await cachedFiles(cache2)).toEqual([]);
  });
});

describe('paged manifests', () => {
  /** BIG with `n` bytes changed at a seeded place in its middle third. */
  const edited = (seed: number, n = 200): Uint8Array => {
    const v = Uint8Array.from(BIG);
    const at = MiB + (seededBytes(seed, 4).reduce((a, b) => a * 256 + b, 0) % MiB);
    v.set(seededBytes(seed + 1000, n), at);
    return v;
  };

  /** Keys and sizes of what `recording` saved, by top-level prefix. */
  const savedBy = (recording: FlakyBackend, prefix: string): string[] => recording.saved.filter((k) => k.startsWith(prefix));

  it('a one-chunk edit uploads one pack, only the changed pages and the root', async () => {
    const v1 = await modelItem(cache1, BIG);
    await push(cache1, remote1, [v1], PUSH);
    const pagesBefore = await keys('pages/');
    expect(pagesBefore.length).toBeGreaterThan(4);
    expect((await remote2.loadManifest(v1.oid)).pages).toHaveLength(pagesBefore.length);

    const v2 = await modelItem(cache1, edited(61));
    const recording = new FlakyBackend(new DirectoryBackend(remoteDir));
    const r = await push(cache1, await Remote.fromBackend('origin', recording, cache1), [v2], PUSH);
    expect(r.chunks).toBeLessThanOrEqual(2);
    expect(savedBy(recording, 'packs/')).toHaveLength(1);
    expect(savedBy(recording, 'manifests/')).toEqual([remoteKeys.manifest(v2.oid)]);
    const newPages = savedBy(recording, 'pages/');
    expect(newPages.length).toBeGreaterThanOrEqual(1);
    expect(newPages.length).toBeLessThanOrEqual(2);
    for (const k of newPages) expect(pagesBefore).not.toContain(k);
    expect(recording.saved.filter((k) => !/^(packs|pages|manifests)\//.test(k))).toEqual([]);
    let written = 0;
    for (const k of recording.saved) written += (await backend.stat(k)).size;
    expect(r.wireBytes).toBe(written);
    // Metadata is a small part of a small edit: far below the v1 manifest's size.
    expect(r.wireBytes - r.bytes).toBeLessThan((await sizeOf('pages/')) / 2);

    const fetched = await fetchObjects(cache2, remote2, [v1, v2], FETCH);
    expect(fetched.files).toBe(2);
    await sameObject(v1.oid);
    await sameObject(v2.oid);
  });

  it('another client that fetched the old version writes the same pages for the unchanged parts', async () => {
    const v1 = await modelItem(cache1, BIG);
    await push(cache1, remote1, [v1], PUSH);
    await fetchObjects(cache2, remote2, [v1], FETCH);
    const pagesBefore = await keys('pages/');
    const v2 = await modelItem(cache2, edited(62));
    const recording = new FlakyBackend(new DirectoryBackend(remoteDir));
    const r = await push(cache2, await Remote.fromBackend('origin', recording, cache2), [v2], PUSH);
    expect(r.dedupBytes).toBeGreaterThan(BIG.length - 64 * 1024);
    const newPages = savedBy(recording, 'pages/');
    expect(newPages.length).toBeGreaterThanOrEqual(1);
    expect(newPages.length).toBeLessThanOrEqual(2);
    const m = await remote1.loadManifest(v2.oid);
    expect(m.pages!.filter((p) => pagesBefore.includes(remoteKeys.page(p))).length).toBe(m.pages!.length - newPages.length);
  });

  it('reads version 1 manifests written before paging existed', async () => {
    const model = await modelItem(cache1, BIG);
    const chunks = (await cache1.readManifest(model.oid))!.chunks;
    expect(chunks.length).toBeGreaterThan(256);
    await push(cache1, remote1, [model], PUSH);
    // Rewrite it as a version 1 (inline) manifest, as an older cpv did, and drop the pages.
    const flat = await remote1.loadManifest(model.oid);
    const { pages: _pages, ...rest } = flat;
    await backend.save(remoteKeys.manifest(model.oid), Buffer.from(JSON.stringify({ ...rest, version: 1 }) + '\n'));
    for (const k of await keys('pages/')) await backend.remove(k);
    const stored = parseRemoteManifest(Buffer.from(await backend.load(remoteKeys.manifest(model.oid))).toString(), 'm', model.oid);
    expect(stored.version).toBe(1);
    await fetchObjects(cache2, remote2, [model], FETCH);
    await sameObject(model.oid);
  });

  it('an interrupted push leaves pages but no manifest; the rerun writes only the root', async () => {
    const model = await modelItem(cache1, BIG);
    const flaky = await Remote.fromBackend('origin', new FlakyBackend(new DirectoryBackend(remoteDir), (k) => k.startsWith('manifests/')), cache1);
    await expect(push(cache1, flaky, [model], PUSH)).rejects.toBeInstanceOf(RemoteError);
    const pages = await keys('pages/');
    expect(pages.length).toBeGreaterThan(4);
    expect(await keys('manifests/')).toEqual([]);
    const recording = new FlakyBackend(new DirectoryBackend(remoteDir));
    await push(cache1, await Remote.fromBackend('origin', recording, cache1), [model], PUSH);
    expect(recording.saved).toEqual([remoteKeys.manifest(model.oid)]);
    await fetchObjects(cache2, remote2, [model], FETCH);
    await sameObject(model.oid);
  });

  it('fetch refuses a file whose manifest names a missing page, and caches nothing', async () => {
    const model = await modelItem(cache1, BIG);
    await push(cache1, remote1, [model], PUSH);
    const pages = await keys('pages/');
    await backend.remove(pages[Number(seededBytes(63, 1)[0]) % pages.length]!);
    const err = await rejection(fetchObjects(cache2, remote2, [model], FETCH));
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).message).toContain(`remote manifest ${model.oid.slice(0, 15)} on origin names page`);
    expect(await cachedFiles(cache2)).toEqual([]);
  });
});

async function sizeOf(prefix: string): Promise<number> {
  let n = 0;
  for await (const o of backend.list(prefix)) n += o.size;
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
