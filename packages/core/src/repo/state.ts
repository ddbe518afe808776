import { mkdir, readFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeAtomic } from '../util/fs-atomic.js';
import { isFileOid } from '../util/oid.js';

type Entry = [size: number, mtimeMs: number, ino: number, oid: string];

/**
 * The workspace stat cache (`.cpv/tmp/state.json`): path → (size, mtime, inode, oid),
 * so unchanged files are never re-read. Purely an optimisation: a lost or damaged
 * state file only costs rehashing. Entries are trusted only when size, mtime and
 * inode all match.
 */
export class StatCache {
  private entries = new Map<string, Entry>();
  private dirty = false;
  private readonly file: string;

  private constructor(file: string) {
    this.file = file;
  }

  /** Load the state of the repo at `root` (empty if absent or unreadable). */
  static async load(root: string): Promise<StatCache> {
    const sc = new StatCache(join(root, '.cpv', 'tmp', 'state.json'));
    try {
      const o = JSON.parse(await readFile(sc.file, 'utf8')) as { version?: number; files?: Record<string, Entry> };
      if (o.version === 1 && o.files && typeof o.files === 'object') {
        // Keep only well-formed entries: a damaged one must cost a rehash, nothing more.
        // A plain loop: tens of thousands of entries load on every status.
        for (const [path, e] of Object.entries(o.files)) {
          if (Array.isArray(e) && e.length === 4 && typeof e[0] === 'number' && typeof e[1] === 'number' && typeof e[2] === 'number' && typeof e[3] === 'string' && isFileOid(e[3])) {
            sc.entries.set(path, e);
          }
        }
      }
    } catch {
      // Absent or damaged: start empty; the cost is rehashing.
    }
    return sc;
  }

  /** The recorded oid of `path` if its stat still matches. */
  lookup(path: string, st: Stats): string | undefined {
    const e = this.entries.get(path);
    if (!e) return undefined;
    return e[0] === st.size && e[1] === st.mtimeMs && e[2] === st.ino ? e[3] : undefined;
  }

  /**
   * Remember that `path` with stat `st` has `oid`. On filesystems with whole-second
   * mtimes a file modified in the last 2 s is not recorded: a later write in the same
   * second would keep its stat.
   */
  record(path: string, st: Stats, oid: string): void {
    if (st.mtimeMs % 1000 === 0 && Date.now() - st.mtimeMs < 2000) {
      this.forget(path);
      return;
    }
    const e = this.entries.get(path);
    if (e && e[0] === st.size && e[1] === st.mtimeMs && e[2] === st.ino && e[3] === oid) return;
    this.entries.set(path, [st.size, st.mtimeMs, st.ino, oid]);
    this.dirty = true;
  }

  forget(path: string): void {
    if (this.entries.delete(path)) this.dirty = true;
  }

  /** Persist if anything changed (atomic write). */
  async save(): Promise<void> {
    if (!this.dirty) return;
    await mkdir(dirname(this.file), { recursive: true });
    const body = JSON.stringify({ version: 1, files: Object.fromEntries(this.entries) });
    await writeAtomic(this.file, Buffer.from(body), { mode: 0o644 });
    this.dirty = false;
  }
}
