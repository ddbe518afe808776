import { open, readdir, stat, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CpvError, ConflictError, NotFoundError, RemoteError, UsageError } from '../errors.js';
import { errnoCode, writeAtomic } from '../util/fs-atomic.js';
import type { Backend, LoadOptions, ObjectInfo, OpOptions, SaveOptions } from './backend.js';
import { checkCount, validateKey, validateListPrefix } from './validate-key.js';

/** Temp files of in-flight saves, under the root; never listed, never a valid key. */
const TMP_DIR = '.tmp';
/** Most bytes asked of one read(2); a single read is capped near 2 GiB. */
const MAX_READ = 1 << 30;
/** Stats run in parallel per directory while listing, at most this many at a time. */
const LIST_STAT_BATCH = 64;

/**
 * A Backend over a local (or network-mounted) directory: key `a/b/c` is the file
 * `<root>/a/b/c`.
 *
 * Saves write `<root>/.tmp/<random>`, fsync it, make it read-only (0444), rename it
 * onto the key's path and fsync the directory, so a crash leaves at most a stray file
 * under `.tmp/`, which `list` never shows. `ifNoneMatch` is enforced with `link(2)`,
 * which is atomic even across processes on one filesystem.
 *
 * Keys follow {@link validateKey}; in addition the first component `.tmp` is reserved.
 * A key cannot name both an object and a directory of other objects (`a` and `a/b`):
 * the second save throws RemoteError. Unexpected fs errors (EACCES, ENOSPC, EIO…)
 * become RemoteError with the key, the location and the fs error as `cause`.
 * Aborts throw the signal's reason; errors thrown by a save's data source propagate
 * unchanged.
 */
export class DirectoryBackend implements Backend {
  /** The absolute path of the root directory. */
  readonly location: string;
  #closed = false;

  /**
   * `root` must be an absolute path (use {@link directoryFromUrl} to resolve a URL or
   * a relative path); it need not exist yet — the first save creates it. Throws
   * UsageError for a relative path. Does no IO.
   */
  constructor(root: string) {
    if (!path.isAbsolute(root)) {
      throw new UsageError(`directory backend root must be an absolute path: ${root}`, { data: { root } });
    }
    this.location = path.resolve(root);
  }

  async save(key: string, data: Uint8Array | AsyncIterable<Uint8Array>, opts: SaveOptions = {}): Promise<void> {
    const file = this.#file(key);
    // Errors thrown by the caller's data source are the caller's, not the remote's: let
    // them through unchanged rather than reporting them as a remote failure.
    let sourceFailed = false;
    const source =
      data instanceof Uint8Array
        ? data
        : (async function* () {
            try {
              yield* data;
            } catch (err) {
              sourceFailed = true;
              throw err;
            }
          })();
    let result: 'written' | 'exists';
    try {
      result = await writeAtomic(file, source, {
        tmpDir: path.join(this.location, TMP_DIR),
        mode: 0o444,
        exclusive: opts.ifNoneMatch === true,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      if (sourceFailed) throw err;
      throw this.#mapError('save', key, err);
    }
    if (result === 'exists') {
      throw new ConflictError(`object ${key} already exists in ${this.location}`, {
        data: { key, location: this.location },
      });
    }
  }

  async load(key: string, opts: LoadOptions = {}): Promise<Uint8Array> {
    const file = this.#file(key);
    const offset = opts.offset ?? 0;
    checkCount('offset', offset);
    if (opts.length !== undefined) checkCount('length', opts.length);
    opts.signal?.throwIfAborted();
    try {
      const fh = await open(file, 'r');
      try {
        const info = await fh.stat();
        // Opening a directory for reading succeeds on Linux; it is still not an object.
        if (!info.isFile()) throw this.#notFound(key);
        const available = Math.max(0, info.size - offset);
        const want = Math.min(available, opts.length ?? available);
        const out = opts.into && opts.into.length >= want ? opts.into.subarray(0, want) : new Uint8Array(want);
        let got = 0;
        while (got < want) {
          opts.signal?.throwIfAborted();
          const { bytesRead } = await fh.read(out, got, Math.min(want - got, MAX_READ), offset + got);
          // Objects are never modified in place, but the file could be shorter than its
          // stat said on a misbehaving filesystem: return what exists.
          if (bytesRead === 0) return out.subarray(0, got);
          got += bytesRead;
        }
        return out;
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw this.#mapError('load', key, err);
    }
  }

  async stat(key: string, opts: OpOptions = {}): Promise<ObjectInfo> {
    const file = this.#file(key);
    opts.signal?.throwIfAborted();
    let info: Stats;
    try {
      info = await stat(file);
    } catch (err) {
      throw this.#mapError('stat', key, err);
    }
    if (!info.isFile()) throw this.#notFound(key);
    return { key, size: info.size, mtimeMs: info.mtimeMs };
  }

  async exists(key: string, opts: OpOptions = {}): Promise<boolean> {
    try {
      await this.stat(key, opts);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  async *list(prefix: string, opts: OpOptions = {}): AsyncIterable<ObjectInfo> {
    this.#checkOpen();
    const { dir, name } = validateListPrefix(prefix);
    // Temp files are not objects; `.tmp` itself is skipped at the root below.
    if (isReserved(dir.split('/', 1)[0] ?? '')) return;
    const startDir = dir === '' ? this.location : path.join(this.location, ...dir.split('/'));
    const entries = await this.#readdir(startDir, prefix, opts);
    const keyPrefix = dir === '' ? '' : `${dir}/`;
    const matching = entries.filter(
      (e) => e.name.startsWith(name) && !(dir === '' && e.name === TMP_DIR),
    );
    yield* this.#walk(startDir, keyPrefix, matching, prefix, opts);
  }

  async remove(key: string, opts: OpOptions = {}): Promise<void> {
    const file = this.#file(key);
    opts.signal?.throwIfAborted();
    try {
      await unlink(file);
    } catch (err) {
      const code = errnoCode(err);
      // Absent, or a directory (Linux unlink says EISDIR): either way no object has
      // this key, which is what remove promises.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return;
      throw this.#mapError('remove', key, err);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Objects under `dir` (whose key prefix is `keyPrefix`) among `entries`, recursively. */
  async *#walk(
    dir: string,
    keyPrefix: string,
    entries: readonly { name: string; isDirectory(): boolean }[],
    prefix: string,
    opts: OpOptions,
  ): AsyncGenerator<ObjectInfo> {
    const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const files = sorted.filter((e) => !e.isDirectory());
    for (let i = 0; i < files.length; i += LIST_STAT_BATCH) {
      opts.signal?.throwIfAborted();
      const batch = files.slice(i, i + LIST_STAT_BATCH);
      const infos = await Promise.all(batch.map((e) => this.#statListed(path.join(dir, e.name), keyPrefix + e.name, prefix)));
      for (const info of infos) if (info) yield info;
    }
    for (const sub of sorted.filter((e) => e.isDirectory())) {
      opts.signal?.throwIfAborted();
      const subDir = path.join(dir, sub.name);
      yield* this.#walk(subDir, `${keyPrefix}${sub.name}/`, await this.#readdir(subDir, prefix, opts), prefix, opts);
    }
  }

  /** Info of a listed file, or undefined if it vanished or is not a regular file. */
  async #statListed(file: string, key: string, prefix: string): Promise<ObjectInfo | undefined> {
    try {
      const info = await stat(file);
      return info.isFile() ? { key, size: info.size, mtimeMs: info.mtimeMs } : undefined;
    } catch (err) {
      // Removed between readdir and stat (a concurrent remove or gc): not listed.
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw this.#mapError('list', prefix, err);
    }
  }

  /** Entries of `dir`; none if it does not exist (an absent prefix lists nothing). */
  async #readdir(dir: string, prefix: string, opts: OpOptions) {
    opts.signal?.throwIfAborted();
    try {
      return await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw this.#mapError('list', prefix, err);
    }
  }

  /** The absolute path of `key`; throws UsageError for a bad key or a closed backend. */
  #file(key: string): string {
    this.#checkOpen();
    validateKey(key);
    if (isReserved(key.split('/', 1)[0] ?? '')) {
      throw new UsageError(`invalid backend key ${JSON.stringify(key)}: "${TMP_DIR}" is reserved for temp files`, {
        data: { key },
      });
    }
    return path.join(this.location, ...key.split('/'));
  }

  #checkOpen(): void {
    if (this.#closed) throw new UsageError(`directory backend ${this.location} is closed`, { data: { location: this.location } });
  }

  #notFound(key: string): NotFoundError {
    return new NotFoundError(`object ${key} not found in ${this.location}`, { data: { key, location: this.location } });
  }

  /**
   * Turn a Node system error (one with an errno `code` and a `syscall`) into
   * NotFoundError or RemoteError. Everything else — CpvErrors, an abort's reason,
   * programming errors — passes through unchanged.
   */
  #mapError(op: string, key: string, err: unknown): unknown {
    const code = errnoCode(err);
    if (code === undefined || err instanceof CpvError || typeof (err as { syscall?: unknown }).syscall !== 'string') return err;
    if ((op === 'load' || op === 'stat') && (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR')) {
      return this.#notFound(key);
    }
    const reason = err instanceof Error ? err.message : String(err);
    const hint = HINTS[code]?.(this.location);
    return new RemoteError(`cannot ${op} ${key} in ${this.location}: ${reason}`, {
      cause: err,
      data: { key, location: this.location, errno: code },
      ...(hint === undefined ? {} : { hint }),
    });
  }
}

const HINTS: Record<string, (location: string) => string> = {
  EACCES: (l) => `check that you can read and write ${l}`,
  EPERM: (l) => `check that you can read and write ${l}`,
  EROFS: (l) => `${l} is on a read-only filesystem`,
  ENOSPC: (l) => `free some space on the filesystem of ${l}`,
  EDQUOT: (l) => `your disk quota on the filesystem of ${l} is exhausted`,
};

function isReserved(firstComponent: string): boolean {
  return firstComponent === TMP_DIR;
}


/**
 * The absolute directory a directory-remote URL names: a `file://` URL (decoded, e.g.
 * `%20` → space), an absolute path, or a path relative to `base` (an absolute path,
 * typically the repository root — core never consults the process's working
 * directory). Throws UsageError for an empty string, another scheme (`s3://`…), a
 * `file://` URL with a remote host, or a relative `base`. Pure; does no IO.
 */
export function directoryFromUrl(url: string, base: string): string {
  if (url === '') throw new UsageError('empty remote URL', { data: { url } });
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(url)) {
    if (!url.toLowerCase().startsWith('file://')) {
      throw new UsageError(`not a directory URL: ${url}`, {
        hint: 'use a file:// URL or a plain path for a directory remote',
        data: { url },
      });
    }
    try {
      return path.resolve(fileURLToPath(url));
    } catch (err) {
      throw new UsageError(`invalid file URL ${url}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
        data: { url },
      });
    }
  }
  if (path.isAbsolute(url)) return path.resolve(url);
  if (!path.isAbsolute(base)) {
    throw new UsageError(`cannot resolve ${url} against a relative base directory ${base}`, { data: { url, base } });
  }
  return path.resolve(base, url);
}
