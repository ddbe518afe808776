import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { constants as fsConstants, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FormatError, IntegrityError, NotFoundError } from '../errors.js';
import type { ChunkerParams } from '../chunk/fastcdc.js';
import { scanBytes, scanFile, type ScanResult } from '../chunk/scan.js';
import { blake3Hex } from '../hash/blake3.js';
import { hashPath } from '../hash/hash-file.js';
import { fanout, oidHex, shortOid, toFileOid } from '../util/oid.js';
import { fsyncDir, pathExists, syncFs, writeAtomic, writeExclusiveSync } from '../util/fs-atomic.js';
import { parseLocalManifest, serializeObject, type ChunkRef, type LocalManifest } from './manifest.js';
import { parseTree, serializeTree, type TreeEntry } from './tree.js';

const CACHE_VERSION = 'cpv-cache 1\n';
/** Files up to this size are ingested from memory (one read) instead of copy + scan. */
const SMALL_FILE = 1024 * 1024;

/** File-system errors that mean "this file system (or this pair of paths) cannot clone". */
const NO_CLONE = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY']);

/**
 * Clone `src` to `dest` (reflink: shared extents, no data written). Returns false when
 * the file system cannot clone (then `dest` may exist, empty); throws other errors.
 */
async function cloneFile(src: string, dest: string): Promise<boolean> {
  try {
    await copyFile(src, dest, fsConstants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch (err) {
    if (NO_CLONE.has((err as NodeJS.ErrnoException).code ?? '')) return false;
    throw err;
  }
}

/** Result of putting a file into the cache. */
export interface IngestResult extends ScanResult {
  /** True if the object was already cached (nothing new written). */
  existed: boolean;
}

/**
 * The local object cache (docs/format.md, "Local cache"): whole files by oid,
 * manifests, trees, and per-remote knowledge. Objects are written once through
 * `tmp/` + fsync + rename and are read-only. Safe to share between workspaces.
 */
export class Cache {
  readonly dir: string;
  readonly tmpDir: string;
  /** Objects written without fsync, awaiting `sync()`. */
  private unsynced: string[] = [];
  private smallTmpPrefix: string | undefined;
  private smallTmpSeq = 0;
  /** Objects a download just wrote from verified bytes, not yet used by a checkout. */
  private readonly fresh = new Set<string>();

  constructor(dir: string) {
    this.dir = dir;
    this.tmpDir = join(dir, 'tmp');
  }

  /** Create the cache layout if needed. Idempotent. Throws FormatError on a foreign cache version. */
  async init(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true });
    const vfile = join(this.dir, 'version');
    try {
      const v = await readFile(vfile, 'utf8');
      if (v !== CACHE_VERSION) throw new FormatError(`${vfile}: unsupported cache version ${JSON.stringify(v.trim())}`, { hint: 'use a cache directory written by this version of cpv' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await writeAtomic(vfile, Buffer.from(CACHE_VERSION), { mode: 0o444, exclusive: true, tmpDir: this.tmpDir });
    }
  }

  /** Path of the whole-file object for a file oid. */
  filePath(oid: string): string {
    return join(this.dir, 'files', fanout(oidHex(oid)));
  }

  manifestPath(oid: string): string {
    return join(this.dir, 'manifests', fanout(oidHex(oid)));
  }

  treePath(oid: string): string {
    return join(this.dir, 'trees', fanout(oidHex(oid)));
  }

  /** Directory of what is known to be on one remote (dedup knowledge). */
  knownDir(remoteId: string): string {
    return join(this.dir, 'remotes', remoteId, 'known');
  }

  /** A fresh temp path inside the cache (same filesystem as the objects). */
  tmpPath(label = 'obj'): string {
    return join(this.tmpDir, `${label}-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /**
   * Record that the object for `oid` was just put in place by this process from bytes
   * verified against `oid` (a download), so the checkout that follows in the same
   * operation need not read it again. Call only after `commitFile` or `putVerified`
   * reported a new object.
   */
  noteFresh(oid: string): void {
    this.fresh.add(oid);
  }

  /**
   * Whether `oid` was noted fresh (see `noteFresh`) and not yet taken: true once, then
   * false, so any later use of the object rehashes it as usual.
   */
  takeFresh(oid: string): boolean {
    return this.fresh.delete(oid);
  }

  /** Whether the whole-file object is present. Does not verify content. */
  hasFile(oid: string): Promise<boolean> {
    return pathExists(this.filePath(oid));
  }

  /** Whether the tree is present. */
  hasTree(oid: string): Promise<boolean> {
    return pathExists(this.treePath(oid));
  }

  /**
   * Copy `src` into the cache and record its chunk list. Where the file system can
   * clone (reflink), the clone is scanned; elsewhere `src` is read once and every
   * buffer is hashed, chunked and written to the temp object in the same pass. Either
   * way the oid is computed from exactly the bytes stored, and a source whose size or
   * mtime changes during the read is refused (ConflictError). Large objects are fsynced
   * before they are renamed into place. Idempotent. Files up to 1 MiB (`size`) are read
   * into memory once instead, with durability deferred to `sync()`.
   */
  async ingestFile(src: string, params: ChunkerParams, opts: { signal?: AbortSignal; onProgress?: (bytes: number) => void; size?: number } = {}): Promise<IngestResult> {
    if (opts.size !== undefined && opts.size <= SMALL_FILE) {
      // Small files: one read into memory, hash, and write only if new. Durability is
      // batched: the caller runs `sync()` before it publishes pointers.
      const bytes = await readFile(src);
      const scan = await scanBytes(bytes, params);
      opts.onProgress?.(bytes.length);
      const existed = !(await this.putVerified(scan.oid, bytes));
      if (scan.chunks.length > 1) await this.writeManifest({ format: 'cpv-manifest', version: 1, oid: scan.oid, size: scan.size, chunker: params, chunks: scan.chunks });
      return { ...scan, existed };
    }
    await mkdir(this.tmpDir, { recursive: true });
    const tmp = this.tmpPath('add');
    try {
      const scanOpts = { params, signal: opts.signal, onProgress: opts.onProgress };
      let scan: ScanResult;
      if (await cloneFile(src, tmp)) {
        // The clone inherits the source's mode; a read-only source must not make it unsyncable.
        await chmod(tmp, 0o600);
        // The clone cannot change under us, so its scan describes what is stored.
        scan = await scanFile(tmp, scanOpts);
      } else {
        const out = await open(tmp, 'w', 0o600);
        try {
          scan = await scanFile(src, { ...scanOpts, copyTo: out });
        } finally {
          await out.close();
        }
      }
      const existed = await this.commitFile(tmp, scan.oid);
      if (scan.chunks.length > 1) await this.writeManifest({ format: 'cpv-manifest', version: 1, oid: scan.oid, size: scan.size, chunker: params, chunks: scan.chunks });
      return { ...scan, existed };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Store a whole file held in memory that the caller has verified hashes to `oid`.
   * Durability is deferred to `sync()`. Returns false if the object was already there.
   * Synchronous file calls (one stat, then temp write and link for a new object): for
   * thousands of small objects, thread-pool round trips cost more than the IO.
   */
  async putVerified(oid: string, bytes: Uint8Array): Promise<boolean> {
    const dest = this.filePath(oid);
    const have = statSync(dest, { throwIfNoEntry: false });
    if (have !== undefined) {
      if (have.size === bytes.length) return false;
      // A wrong size can only be the remains of a write that a crash cut short before
      // it was made durable: remove it so it is written again.
      rmSync(dest, { force: true });
    }
    const written = writeExclusiveSync(dest, bytes, this.smallTmpPath(), 0o444);
    if (written === 'written') this.unsynced.push(dest);
    return written === 'written';
  }

  /** A unique temp name for a small object: a per-cache random prefix and a counter. */
  private smallTmpPath(): string {
    this.smallTmpPrefix ??= `.tmp-${process.pid}-${randomBytes(6).toString('hex')}-`;
    return join(this.tmpDir, `${this.smallTmpPrefix}${this.smallTmpSeq++}`);
  }

  /**
   * Make every object written with deferred durability durable (one syncfs). Call
   * before writing anything that references them (pointers, remote records).
   */
  async sync(): Promise<void> {
    if (this.unsynced.length === 0) return;
    const files = this.unsynced;
    this.unsynced = [];
    await syncFs(this.dir, files);
  }

  /**
   * Move a verified temp file into place as the object for `oid` (read-only, fsynced).
   * Returns true if the object already existed (the temp file is then discarded).
   * The caller guarantees `tmp` hashes to `oid`.
   */
  async commitFile(tmp: string, oid: string): Promise<boolean> {
    const dest = this.filePath(oid);
    if (await pathExists(dest)) {
      await rm(tmp, { force: true });
      return true;
    }
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(tmp, 0o444);
    await mkdir(dirname(dest), { recursive: true });
    await rename(tmp, dest);
    await fsyncDir(dirname(dest));
    return false;
  }

  /** Store a manifest (idempotent). */
  async writeManifest(m: LocalManifest): Promise<void> {
    await writeAtomic(this.manifestPath(m.oid), Buffer.from(serializeObject(m)), { exclusive: true, tmpDir: this.tmpDir });
  }

  /** The manifest of a cached multi-chunk file, or undefined if it has none. Throws FormatError if damaged. */
  async readManifest(oid: string): Promise<LocalManifest | undefined> {
    let text: string;
    try {
      text = await readFile(this.manifestPath(oid), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return parseLocalManifest(text, `cache manifest ${shortOid(oid)}`, oid);
  }

  /**
   * The chunk list of a cached file: its manifest, or a single chunk when it has none
   * (then chunk oid = file oid). Throws NotFoundError if the file is not cached.
   */
  async chunksOf(oid: string, size: number): Promise<ChunkRef[]> {
    const m = await this.readManifest(oid);
    if (m) return m.chunks;
    if (!(await this.hasFile(oid))) throw new NotFoundError(`${shortOid(oid)} is not in the cache`, { hint: 'run `cpv fetch` or `cpv add` first' });
    return size === 0 ? [] : [[oidHex(oid), size]];
  }

  /** Store a tree; returns its oid. Idempotent. Throws FormatError on invalid entries. */
  async writeTree(entries: readonly TreeEntry[]): Promise<{ oid: string; text: string }> {
    const text = serializeTree(entries);
    const oid = toFileOid(await blake3Hex(Buffer.from(text, 'utf8')));
    await writeAtomic(this.treePath(oid), Buffer.from(text, 'utf8'), { exclusive: true, tmpDir: this.tmpDir });
    return { oid, text };
  }

  /** Store verified canonical tree text under its oid (caller checked the hash). */
  async writeTreeText(oid: string, text: string): Promise<void> {
    await writeAtomic(this.treePath(oid), Buffer.from(text, 'utf8'), { exclusive: true, tmpDir: this.tmpDir });
  }

  /**
   * Read and verify a cached tree. Throws NotFoundError if absent, IntegrityError if
   * its bytes do not hash to `oid`, FormatError if it is not canonical.
   */
  async readTree(oid: string): Promise<TreeEntry[]> {
    const buf = await this.readTreeBytes(oid);
    return parseTree(buf.toString('utf8'), `tree ${shortOid(oid)}`);
  }

  /**
   * A cached tree's bytes, verified but not parsed. Throws NotFoundError if absent,
   * IntegrityError if they do not hash to `oid`.
   */
  async readTreeBytes(oid: string): Promise<Buffer> {
    let buf: Buffer;
    try {
      buf = await readFile(this.treePath(oid));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`tree ${shortOid(oid)} is not in the cache`, { hint: 'run `cpv fetch` to get it from the remote' });
      throw err;
    }
    if (toFileOid(await blake3Hex(buf)) !== oid) {
      throw new IntegrityError(`cache tree ${shortOid(oid)} is corrupt (${this.treePath(oid)})`, { data: { oid } });
    }
    return buf;
  }

  /**
   * Rehash a cached file. Returns true when it matches `oid`; false when the bytes
   * differ. Throws NotFoundError when absent.
   */
  async verifyFile(oid: string): Promise<boolean> {
    try {
      return toFileOid((await hashPath(this.filePath(oid))).hex) === oid;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${shortOid(oid)} is not in the cache`);
      throw err;
    }
  }

  /** Size of a cached object file, or undefined if absent. */
  async fileSize(oid: string): Promise<number | undefined> {
    try {
      return (await stat(this.filePath(oid))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Write an empty file object (the empty file has no chunks). */
  async ensureEmptyFile(oid: string): Promise<void> {
    if (await this.hasFile(oid)) return;
    const tmp = this.tmpPath('empty');
    await writeFile(tmp, new Uint8Array(0));
    await this.commitFile(tmp, oid);
  }
}
