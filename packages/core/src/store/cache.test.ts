import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FormatError, IntegrityError, NotFoundError } from '../errors.js';
import { validateChunkerParams } from '../chunk/fastcdc.js';
import { blake3Hex } from '../hash/blake3.js';
import { seededBytes } from '../testing/seeded.js';
import { serializeTree } from './tree.js';
import { parseLocalManifest } from './manifest.js';
import { Cache } from './cache.js';
import { missingFiles } from './missing-files.js';

const SMALL = validateChunkerParams({ algorithm: 'fastcdc-v1', gear: 'cpv-gear-v1', min: 1024, avg: 4096, max: 16384 });

let dir: string;
let cache: Cache;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cpv-cache-'));
  cache = new Cache(path.join(dir, 'cache'));
  await cache.init();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function source(name: string, bytes: Uint8Array): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, bytes);
  return p;
}

/** Every file under `root`, relative, sorted. */
async function files(root: string): Promise<string[]> {
  try {
    return (await readdir(root, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Run `fn` with the effective uid of `nobody` when the tests run as root. */
async function asUnprivileged<T>(fn: () => Promise<T>): Promise<T> {
  if (process.geteuid?.() !== 0 || !process.seteuid) return fn();
  process.seteuid(65534);
  try {
    return await fn();
  } finally {
    process.seteuid(0);
  }
}

/** Overwrite one byte of a read-only file. */
async function flipByte(file: string, at: number): Promise<void> {
  await chmod(file, 0o644);
  const b = await readFile(file);
  b[at] = b[at]! ^ 0xff;
  await writeFile(file, b);
  await chmod(file, 0o444);
}

describe('Cache.init', () => {
  it('writes the version file read-only and creates tmp/', async () => {
    expect(await readFile(path.join(cache.dir, 'version'), 'utf8')).toBe('cpv-cache 1\n');
    expect((await stat(path.join(cache.dir, 'version'))).mode & 0o777).toBe(0o444);
    expect((await stat(cache.tmpDir)).isDirectory()).toBe(true);
  });

  it('is idempotent', async () => {
    await cache.init();
    await new Cache(cache.dir).init();
    expect(await files(cache.dir)).toEqual(['version']);
  });

  it('rejects a foreign cache version, naming the file', async () => {
    const other = path.join(dir, 'other');
    await mkdir(other);
    await writeFile(path.join(other, 'version'), 'cpv-cache 2\n');
    const err = await new Cache(other).init().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).message).toBe(`${path.join(other, 'version')}: unsupported cache version "cpv-cache 2"`);
  });

  it('rejects a version file without its newline', async () => {
    const other = path.join(dir, 'other');
    await mkdir(other);
    await writeFile(path.join(other, 'version'), 'cpv-cache 1');
    await expect(new Cache(other).init()).rejects.toBeInstanceOf(FormatError);
  });
});

describe('Cache.ingestFile', () => {
  it('stores a single-chunk file read-only under its oid, without a manifest', async () => {
    const bytes = seededBytes(1, 800);
    const r = await cache.ingestFile(await source('small', bytes), SMALL);
    const hex = await blake3Hex(bytes);
    expect(r.oid).toBe(`b3:${hex}`);
    expect(r.size).toBe(800);
    expect(r.chunks).toEqual([[hex, 800]]);
    expect(r.existed).toBe(false);
    const obj = cache.filePath(r.oid);
    expect(obj).toBe(path.join(cache.dir, 'files', hex.slice(0, 2), hex.slice(2)));
    expect((await stat(obj)).mode & 0o777).toBe(0o444);
    expect(await blake3Hex(await readFile(obj))).toBe(hex);
    expect(await cache.readManifest(r.oid)).toBeUndefined();
    expect(await cache.chunksOf(r.oid, 800)).toEqual([[hex, 800]]);
    expect(await files(cache.dir)).toEqual([path.join('files', hex.slice(0, 2), hex.slice(2)), 'version']);
  });

  it('stores a multi-chunk file with a manifest whose chunks are the file', async () => {
    const bytes = seededBytes(2, 200_000);
    const r = await cache.ingestFile(await source('big', bytes), SMALL);
    expect(r.oid).toBe(`b3:${await blake3Hex(bytes)}`);
    expect(r.chunks.length).toBeGreaterThan(10);
    const m = await cache.readManifest(r.oid);
    expect(m).toEqual({ format: 'cpv-manifest', version: 1, oid: r.oid, size: 200_000, chunker: SMALL, chunks: r.chunks });
    // The manifest on disk is the documented JSON, and its chunks hash right.
    const text = await readFile(cache.manifestPath(r.oid), 'utf8');
    expect(parseLocalManifest(text, 'm', r.oid)).toEqual(m);
    let at = 0;
    for (const [c, len] of m!.chunks) {
      expect(len).toBeGreaterThanOrEqual(1);
      expect(len).toBeLessThanOrEqual(16384);
      expect(await blake3Hex(bytes.subarray(at, at + len))).toBe(c);
      at += len;
    }
    expect(at).toBe(200_000);
    expect(await cache.chunksOf(r.oid, 200_000)).toEqual(r.chunks);
  });

  it('is idempotent: the second ingest reports existed and writes nothing new', async () => {
    const src = await source('big', seededBytes(3, 100_000));
    const first = await cache.ingestFile(src, SMALL);
    const before = await files(cache.dir);
    const mtime = (await stat(cache.filePath(first.oid))).mtimeMs;
    const second = await cache.ingestFile(src, SMALL);
    expect(second.existed).toBe(true);
    expect(second.oid).toBe(first.oid);
    expect(second.chunks).toEqual(first.chunks);
    expect(await files(cache.dir)).toEqual(before);
    expect((await stat(cache.filePath(first.oid))).mtimeMs).toBe(mtime);
  });

  it('stores the same object, manifest and result whether or not the size is passed', async () => {
    for (const [seed, n] of [[13, 900], [14, 120_000]] as const) {
      const bytes = seededBytes(seed, n);
      const other = new Cache(path.join(dir, `other-${seed}`));
      await other.init();
      const src = await source(`s${seed}`, bytes);
      const plain = await cache.ingestFile(src, SMALL);
      const sized = await other.ingestFile(src, SMALL, { size: n });
      expect(sized).toEqual(plain);
      expect((await readFile(other.filePath(sized.oid))).equals(bytes)).toBe(true);
      expect((await stat(other.filePath(sized.oid))).mode & 0o777).toBe(0o444);
      expect(await other.readManifest(sized.oid)).toEqual(await cache.readManifest(plain.oid));
      expect((await other.ingestFile(src, SMALL, { size: n })).existed).toBe(true);
      expect(await readdir(other.tmpDir)).toEqual([]);
    }
  });

  it('leaves nothing in tmp/ after ingesting', async () => {
    await cache.ingestFile(await source('a', seededBytes(4, 50_000)), SMALL);
    await cache.ingestFile(await source('b', seededBytes(5, 10)), SMALL);
    await cache.ingestFile(await source('a2', seededBytes(4, 50_000)), SMALL);
    expect(await readdir(cache.tmpDir)).toEqual([]);
  });

  it('stores an empty file with no chunks', async () => {
    const r = await cache.ingestFile(await source('empty', new Uint8Array(0)), SMALL);
    expect(r.oid).toBe(`b3:${await blake3Hex(new Uint8Array(0))}`);
    expect(r.chunks).toEqual([]);
    expect((await stat(cache.filePath(r.oid))).size).toBe(0);
    expect(await cache.chunksOf(r.oid, 0)).toEqual([]);
  });

  it('ingests a read-only source, also without root privileges', async () => {
    // Root ignores file modes; run as an ordinary user to see what users see.
    const work = path.join(dir, 'unprivileged');
    await chmod(dir, 0o755);
    await mkdir(work, { mode: 0o777 });
    await chmod(work, 0o777);
    const src = path.join(work, 'ro');
    await writeFile(src, seededBytes(6, 5000));
    await chmod(src, 0o444);
    const unprivileged = new Cache(path.join(work, 'cache'));
    const r = await asUnprivileged(async () => {
      await unprivileged.init();
      return unprivileged.ingestFile(src, SMALL);
    });
    expect(r.existed).toBe(false);
    expect(await unprivileged.verifyFile(r.oid)).toBe(true);
    expect((await stat(unprivileged.filePath(r.oid))).mode & 0o777).toBe(0o444);
  });

  it('leaves nothing behind when the source is missing', async () => {
    const err = await cache.ingestFile(path.join(dir, 'nope'), SMALL).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(await readdir(cache.tmpDir)).toEqual([]);
  });
});

describe('Cache objects', () => {
  it('chunksOf throws NotFoundError for an object that is not cached', async () => {
    const oid = 'b3:' + 'c'.repeat(64);
    await expect(cache.chunksOf(oid, 5)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('readManifest throws FormatError for a damaged manifest', async () => {
    const r = await cache.ingestFile(await source('big', seededBytes(7, 60_000)), SMALL);
    await chmod(cache.manifestPath(r.oid), 0o644);
    await writeFile(cache.manifestPath(r.oid), '{"format":"cpv-manifest"');
    await expect(cache.readManifest(r.oid)).rejects.toBeInstanceOf(FormatError);
  });

  it('writeTree stores the canonical text under its hash, and readTree returns the entries', async () => {
    const a = await cache.ingestFile(await source('a', seededBytes(8, 100)), SMALL);
    const entries = [
      { path: 'z.bin', oid: a.oid, size: 100, mode: 0o644 },
      { path: 'sub/x', oid: a.oid, size: 100, mode: 0o755 },
    ];
    const { oid, text } = await cache.writeTree(entries);
    expect(text).toBe(serializeTree(entries));
    expect(oid).toBe(`b3:${await blake3Hex(Buffer.from(text))}`);
    expect(await readFile(cache.treePath(oid), 'utf8')).toBe(text);
    expect(await cache.hasTree(oid)).toBe(true);
    expect(await cache.readTree(oid)).toEqual([entries[1], entries[0]]);
    // Idempotent.
    expect((await cache.writeTree([...entries].reverse())).oid).toBe(oid);
  });

  it('readTree throws IntegrityError for a corrupted tree, naming its path', async () => {
    const { oid } = await cache.writeTree([{ path: 'a', oid: 'b3:' + 'd'.repeat(64), size: 1, mode: 0o644 }]);
    await flipByte(cache.treePath(oid), 20);
    const err = await cache.readTree(oid).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).code).toBe('INTEGRITY');
    expect((err as IntegrityError).message).toContain(cache.treePath(oid));
    expect((err as IntegrityError).data).toEqual({ oid });
  });

  it('readTree throws NotFoundError for an absent tree', async () => {
    await expect(cache.readTree('b3:' + 'e'.repeat(64))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('verifyFile is true for an intact object and false after flipping a byte', async () => {
    const r = await cache.ingestFile(await source('big', seededBytes(9, 70_000)), SMALL);
    expect(await cache.verifyFile(r.oid)).toBe(true);
    await flipByte(cache.filePath(r.oid), 35_000);
    expect(await cache.verifyFile(r.oid)).toBe(false);
  });

  it('verifyFile is false for a truncated object and throws NotFoundError for an absent one', async () => {
    const r = await cache.ingestFile(await source('s', seededBytes(10, 3000)), SMALL);
    await chmod(cache.filePath(r.oid), 0o644);
    await writeFile(cache.filePath(r.oid), seededBytes(10, 2999));
    expect(await cache.verifyFile(r.oid)).toBe(false);
    await expect(cache.verifyFile('b3:' + 'f'.repeat(64))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('commitFile keeps an existing object and discards the temp file', async () => {
    const bytes = seededBytes(11, 500);
    const r = await cache.ingestFile(await source('s', bytes), SMALL);
    const tmp = cache.tmpPath('test');
    await writeFile(tmp, bytes);
    expect(await cache.commitFile(tmp, r.oid)).toBe(true);
    expect(await readdir(cache.tmpDir)).toEqual([]);
  });

  it('ensureEmptyFile writes the empty object once', async () => {
    const oid = `b3:${await blake3Hex(new Uint8Array(0))}`;
    await cache.ensureEmptyFile(oid);
    await cache.ensureEmptyFile(oid);
    expect((await stat(cache.filePath(oid))).size).toBe(0);
    expect(await cache.verifyFile(oid)).toBe(true);
    expect(await readdir(cache.tmpDir)).toEqual([]);
  });

  it('fileSize reports the object size, or undefined', async () => {
    const r = await cache.ingestFile(await source('s', seededBytes(12, 1234)), SMALL);
    expect(await cache.fileSize(r.oid)).toBe(1234);
    expect(await cache.fileSize('b3:' + '0'.repeat(64))).toBeUndefined();
  });
});

describe('Cache.putVerified and missingFiles', () => {
  it('stores a small object once, replaces a truncated one, and reports presence like hasFile', async () => {
    const objs = await Promise.all([1, 2, 3, 4, 5, 6].map(async (seed) => {
      const bytes = seededBytes(seed, 100 * seed);
      return { bytes, oid: `b3:${await blake3Hex(bytes)}` };
    }));
    const [a, b] = objs;
    expect(await cache.putVerified(a!.oid, a!.bytes)).toBe(true);
    expect(await cache.putVerified(a!.oid, a!.bytes)).toBe(false);
    expect((await stat(cache.filePath(a!.oid))).mode & 0o777).toBe(0o444);
    // The remains of a write cut short by a crash: wrong size under the final name.
    await mkdir(path.dirname(cache.filePath(b!.oid)), { recursive: true });
    await writeFile(cache.filePath(b!.oid), b!.bytes.subarray(0, 10));
    expect(await cache.putVerified(b!.oid, b!.bytes)).toBe(true);
    expect((await readFile(cache.filePath(b!.oid))).equals(b!.bytes)).toBe(true);
    expect(await readdir(cache.tmpDir)).toEqual([]);
    await cache.sync();

    // Many oids in one fan-out directory are answered by listing it, a few by stats.
    const fake = (i: number) => `b3:ab${String(i).padStart(62, '0')}`;
    const present = fake(1);
    await mkdir(path.dirname(cache.filePath(present)), { recursive: true });
    await writeFile(cache.filePath(present), 'x');
    const asked = [a!.oid, b!.oid, objs[2]!.oid, present, fake(2), fake(3), fake(4), fake(5)];
    const missing = missingFiles(cache, asked);
    for (const oid of asked) expect(missing.has(oid)).toBe(!(await cache.hasFile(oid)));
    expect(missing.size).toBe(5);
  });
});
