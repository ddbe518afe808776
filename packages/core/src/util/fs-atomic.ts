/**
 * Crash-safe file writes for the local cache and the directory backend.
 *
 * A file is written under a temp name, fsynced, made read-only and renamed (or linked)
 * onto its final name, then its directory is fsynced. At every instant the final name
 * is either absent or names the complete file; an interrupted write leaves at most a
 * stray temp file, never a partial file under a final name (docs/format.md, "Local
 * cache").
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { closeSync, fchmodSync, linkSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/** Options of {@link writeAtomic}. */
export interface WriteAtomicOptions {
  /**
   * Directory for the temp file (created if missing). Default: the final file's
   * directory. It must be on the same filesystem as the final path, or the final
   * rename fails with EXDEV.
   */
  tmpDir?: string;
  /** Permission bits of the final file, applied exactly (umask does not apply). Default 0o444. */
  mode?: number;
  /**
   * Never replace an existing final file: if it exists, or another writer creates it
   * first, return 'exists' and leave it untouched.
   */
  exclusive?: boolean;
  /** Abort the write; the signal's reason is thrown and nothing is left behind. */
  signal?: AbortSignal;
  /**
   * Default true: fsync the file and its directory before returning. False defers
   * durability to the caller, who must make the filesystem durable (see `syncFs`)
   * before publishing anything that references the file. Atomicity (no partial file
   * under the final name while the system runs) holds either way.
   */
  durable?: boolean;
}

/**
 * Write `data` to `finalPath` atomically and durably.
 *
 * Guarantees: when this resolves 'written', `finalPath` holds exactly `data` with
 * permission bits `mode`, and the file and its directory entry have been fsynced.
 * Readers never observe a partial file under `finalPath`. Parent directories of
 * `finalPath` and `tmpDir` are created as needed.
 *
 * Without `exclusive`, an existing file is replaced (rename semantics: concurrent
 * writers leave one of the complete contents). With `exclusive`, an existing file is
 * kept and 'exists' is returned; this is race-free on filesystems with hard links
 * (`link(2)` fails with EEXIST), and falls back to check-then-rename where hard links
 * are not supported.
 *
 * Throws: whatever fails — an fs error, an error thrown by the `data` iterable, or
 * `signal.reason` on abort. On every failure the temp file is removed (best effort)
 * and `finalPath` is unchanged. Idempotent for identical content.
 */
export async function writeAtomic(
  finalPath: string,
  data: Uint8Array | AsyncIterable<Uint8Array>,
  opts: WriteAtomicOptions = {},
): Promise<'written' | 'exists'> {
  const { signal, exclusive = false, mode = 0o444, durable = true } = opts;
  signal?.throwIfAborted();
  const finalDir = path.dirname(finalPath);
  const tmpDir = opts.tmpDir ?? finalDir;
  if (exclusive && (await pathExists(finalPath))) return 'exists';

  await mkdir(tmpDir, { recursive: true });
  // The random suffix makes collisions between concurrent writers (threads, processes,
  // machines sharing a network filesystem) vanishingly unlikely; 'wx' turns one into an
  // error instead of two writers sharing a file.
  const tmpPath = path.join(tmpDir, `.tmp-${randomBytes(12).toString('hex')}`);
  try {
    const fh = await open(tmpPath, 'wx', 0o600);
    try {
      if (data instanceof Uint8Array) {
        await writeAll(fh, data);
      } else {
        for await (const piece of data) {
          signal?.throwIfAborted();
          await writeAll(fh, piece);
        }
      }
      // chmod before fsync so the mode is made durable together with the bytes.
      await fh.chmod(mode);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    signal?.throwIfAborted();
    await mkdir(finalDir, { recursive: true });

    if (exclusive) {
      const linked = await linkExclusive(tmpPath, finalPath);
      if (linked === 'unsupported') {
        // No hard links here (some FUSE, SMB, exFAT mounts): check, then rename. Another
        // writer may slip in between; for content-addressed objects both are identical.
        if (await pathExists(finalPath)) {
          await removeIfExists(tmpPath);
          return 'exists';
        }
        await rename(tmpPath, finalPath);
      } else {
        await removeIfExists(tmpPath);
        if (linked === 'exists') return 'exists';
      }
    } else {
      await rename(tmpPath, finalPath);
    }
    if (durable) await fsyncDir(finalDir);
    return 'written';
  } catch (err) {
    // The original error is what the caller needs; a temp file that cannot be removed
    // is harmless by design (never listed, swept with the temp directory).
    await removeIfExists(tmpPath).catch(() => undefined);
    throw err;
  }
}

/**
 * {@link writeAtomic} with `exclusive` and `durable: false` for a small object held in
 * memory, in synchronous calls: open the temp file, write, chmod, close, link onto the
 * final name, unlink the temp. For thousands of small objects the thread-pool round
 * trips of the asynchronous version cost more than the IO itself. Missing parent
 * directories of `tmpPath` and `finalPath` are created on the first ENOENT only, so a
 * caller writing many objects pays for no mkdir once the directories exist.
 *
 * Guarantees: 'written' means `finalPath` holds exactly `data` with permission bits
 * `mode`; 'exists' means a file was already there and was left untouched. Readers
 * never see a partial file under `finalPath`. Not durable: the caller must make the
 * filesystem durable (`syncFs`) before publishing anything that references the file.
 * `tmpPath` must be unique to this call and on the same filesystem as `finalPath`.
 * Throws any fs error; on failure the temp file is removed (best effort) and
 * `finalPath` is unchanged. Idempotent for identical content.
 */
export function writeExclusiveSync(finalPath: string, data: Uint8Array, tmpPath: string, mode = 0o444): 'written' | 'exists' {
  let fd: number;
  try {
    fd = openSync(tmpPath, 'wx', 0o600);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    mkdirSync(path.dirname(tmpPath), { recursive: true });
    fd = openSync(tmpPath, 'wx', 0o600);
  }
  try {
    try {
      let done = 0;
      while (done < data.byteLength) done += writeSync(fd, data, done, data.byteLength - done);
      fchmodSync(fd, mode);
    } finally {
      closeSync(fd);
    }
    let outcome: LinkOutcome;
    try {
      outcome = linkExclusiveSync(tmpPath, finalPath);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      mkdirSync(path.dirname(finalPath), { recursive: true });
      outcome = linkExclusiveSync(tmpPath, finalPath);
    }
    if (outcome === 'unsupported') {
      // No hard links: check, then rename (identical content if another writer won).
      if (statSync(finalPath, { throwIfNoEntry: false }) !== undefined) {
        unlinkSync(tmpPath);
        return 'exists';
      }
      renameSync(tmpPath, finalPath);
      return 'written';
    }
    unlinkSync(tmpPath);
    return outcome === 'linked' ? 'written' : 'exists';
  } catch (err) {
    try {
      unlinkSync(tmpPath);
    } catch {
      // Already gone, or harmless: a stray temp file is never listed.
    }
    throw err;
  }
}

type LinkOutcome = 'linked' | 'exists' | 'unsupported';

/** What a failed `link` means for an exclusive link: 'exists', 'unsupported', or rethrown. */
function linkFailure(err: unknown): LinkOutcome {
  const code = errnoCode(err);
  if (code === 'EEXIST') return 'exists';
  if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') return 'unsupported';
  throw err;
}

/** {@link linkExclusive}, synchronously. */
function linkExclusiveSync(tmpPath: string, finalPath: string): LinkOutcome {
  try {
    linkSync(tmpPath, finalPath);
    return 'linked';
  } catch (err) {
    return linkFailure(err);
  }
}

/**
 * Hard-link `tmpPath` to `finalPath`. 'linked' on success, 'exists' if `finalPath`
 * already exists, 'unsupported' if the filesystem has no hard links. Other errors throw.
 */
async function linkExclusive(tmpPath: string, finalPath: string): Promise<LinkOutcome> {
  try {
    await link(tmpPath, finalPath);
    return 'linked';
  } catch (err) {
    return linkFailure(err);
  }
}

/** Write all of `bytes` at the handle's current position (fh.write may write less). */
async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done);
    done += bytesWritten;
  }
}

/**
 * Make everything written to the filesystem holding `dir` durable: one syncfs(2)
 * (through coreutils `sync -f`) instead of an fsync per file, which costs about a
 * millisecond each. Where `sync -f` is unavailable, fsyncs each of `files` and their
 * directories. Idempotent.
 */
export async function syncFs(dir: string, files: Iterable<string>): Promise<void> {
  if (process.platform === 'linux') {
    const ok = await new Promise<boolean>((resolve) => {
      execFile('sync', ['-f', dir], (err) => resolve(err === null));
    });
    if (ok) return;
  }
  const dirs = new Set<string>();
  for (const f of files) {
    const fh = await open(f, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    dirs.add(path.dirname(f));
  }
  for (const d of dirs) await fsyncDir(d);
}

/**
 * Flush a directory's entries (creations, renames, removals) to stable storage.
 *
 * Throws the fs error if `dir` cannot be opened (ENOENT, EACCES…). A filesystem that
 * does not support fsync on directories (EINVAL, ENOTSUP) is accepted silently, as
 * restic does: there is nothing more to make durable there. A no-op on Windows, where
 * directories cannot be opened for fsync. Idempotent.
 */
export async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
  } finally {
    await fh.close();
  }
}

/**
 * Remove the file at `p` (read-only files included). Resolves true if it removed a
 * file, false if there was none (ENOENT, or ENOTDIR: a parent is not a directory).
 * Every other error throws (EACCES, EISDIR…). Idempotent.
 */
export async function removeIfExists(p: string): Promise<boolean> {
  try {
    await unlink(p);
    return true;
  } catch (err) {
    if (isAbsentError(err)) return false;
    throw err;
  }
}

/**
 * Whether something exists at `p` (symlinks are followed: a dangling link is absent).
 * Resolves false only for ENOENT and ENOTDIR; every other error (EACCES, ELOOP,
 * ENAMETOOLONG, EIO…) throws, so "cannot tell" is never reported as "absent".
 */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (err) {
    if (isAbsentError(err)) return false;
    throw err;
  }
}

/** The errno code (`ENOENT`…) of a Node system error, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  const { code } = err as { code: unknown };
  return typeof code === 'string' ? code : undefined;
}

/** ENOENT or ENOTDIR: the path names nothing. */
function isAbsentError(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}
