import { mkdir } from 'node:fs/promises';
import { closeSync, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeAtomic } from '../util/fs-atomic.js';
import { isFileOid } from '../util/oid.js';

const VERSION = 2;
const HEX_LEN = 64;
const HEX = /^[0-9a-f]*$/;

/** What the stat cache remembers of a tracked directory. */
export interface DirMemo {
  /** Digest of the directory's entries: mode, size, oid and path of every file. */
  fingerprint: string;
  /** The tree oid those entries make. */
  tree: string;
  /**
   * Digest of the cache's fan-out directories (name, mtime, inode) holding the tree's
   * files, taken when every file was found there; '' when not known.
   */
  cache: string;
}

/**
 * The workspace stat cache (`.cpv/tmp/state.json`, docs/format.md "Workspace state"):
 * path → (size, mtime, inode, oid), so unchanged files are never re-read, and tracked
 * directory → (fingerprint of its entries, tree oid, state of the cache directories
 * holding its files), so an unchanged directory is not compared with its tree nor its
 * files looked up in the cache one by one. Purely an optimisation: a lost, damaged or older
 * state file only costs rehashing. Entries are trusted only when size, mtime and
 * inode all match, and (as git does with its index) only when the file's mtime is
 * older than the state file itself: a file written in the same timestamp tick as the
 * state could change again without changing its stat.
 */
export class StatCache {
  /** path → slot in `stats` (3 numbers per slot) and `oids`. */
  private readonly index = new Map<string, number>();
  private stats: number[] = [];
  /** Hex oid per slot; sliced from `packed` on first use. */
  private readonly oids: (string | undefined)[] = [];
  private packed = '';
  private dirs = new Map<string, [fingerprint: string, tree: string, cache: string]>();
  /** mtime of the state file when loaded: entries at or after it are "racy". */
  private stamp = Infinity;
  private dirty = false;
  private readonly file: string;

  private constructor(file: string) {
    this.file = file;
  }

  /** Load the state of the repo at `root` (empty if absent, unreadable or of another version). */
  static async load(root: string): Promise<StatCache> {
    const sc = new StatCache(join(root, '.cpv', 'tmp', 'state.json'));
    let text: string;
    let stamp: number;
    // Synchronous: every command that loads the state waits for it, and one call
    // beats four thread-pool round trips on a busy machine.
    let fd: number | undefined;
    try {
      fd = openSync(sc.file, 'r');
      stamp = fstatSync(fd).mtimeMs;
      text = readFileSync(fd, 'utf8');
    } catch {
      return sc; // Absent or unreadable: start empty; the cost is rehashing.
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    try {
      sc.adopt(JSON.parse(text));
      sc.stamp = stamp;
    } catch {
      // Damaged or another version: start empty, and replace it on the next save.
      sc.index.clear();
      sc.stats = [];
      sc.oids.length = 0;
      sc.packed = '';
      sc.dirs.clear();
      sc.dirty = true;
    }
    return sc;
  }

  /** Take the columns of a parsed state file; throws unless every one is well formed. */
  private adopt(o: unknown): void {
    const { version, paths, stats, oids, dirs } = (o ?? {}) as Record<string, unknown>;
    if (version !== VERSION) throw new Error('version');
    if (!Array.isArray(paths) || !Array.isArray(stats) || typeof oids !== 'string') throw new Error('shape');
    const n = paths.length;
    if (stats.length !== 3 * n || oids.length !== HEX_LEN * n || !HEX.test(oids)) throw new Error('columns');
    for (const v of stats) if (typeof v !== 'number') throw new Error('stat');
    for (let i = 0; i < n; i++) {
      const p = paths[i] as unknown;
      if (typeof p !== 'string' || this.index.has(p)) throw new Error('path');
      this.index.set(p, i);
    }
    this.stats = stats as number[];
    this.oids.length = n;
    this.packed = oids;
    if (dirs !== undefined) {
      if (typeof dirs !== 'object' || dirs === null) throw new Error('dirs');
      for (const [path, d] of Object.entries(dirs)) {
        if (Array.isArray(d) && d.length === 3 && typeof d[0] === 'string' && typeof d[1] === 'string' && isFileOid(d[1]) && typeof d[2] === 'string') this.dirs.set(path, [d[0], d[1], d[2]]);
      }
    }
  }

  private oidAt(slot: number): string {
    let hex = this.oids[slot];
    if (hex === undefined) {
      hex = this.packed.slice(slot * HEX_LEN, (slot + 1) * HEX_LEN);
      this.oids[slot] = hex;
    }
    return 'b3:' + hex;
  }

  private matches(slot: number, st: Stats): boolean {
    const s = this.stats;
    const at = slot * 3;
    return s[at] === st.size && s[at + 1] === st.mtimeMs && s[at + 2] === st.ino;
  }

  /**
   * The recorded oid of `path` if its stat still matches and it was not modified in
   * the same timestamp tick as the state file was written.
   */
  lookup(path: string, st: Stats): string | undefined {
    const slot = this.index.get(path);
    if (slot === undefined || !this.matches(slot, st) || st.mtimeMs >= this.stamp) return undefined;
    return this.oidAt(slot);
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
    const hex = oid.slice(3);
    let slot = this.index.get(path);
    if (slot !== undefined) {
      // Unchanged and trusted: nothing to write. A racy entry is rewritten so that the
      // next state file, newer than the file, trusts it.
      if (this.matches(slot, st) && this.oidAt(slot) === oid && st.mtimeMs < this.stamp) return;
    } else {
      slot = this.oids.length;
      this.index.set(path, slot);
      this.oids.push(undefined);
    }
    this.stats[slot * 3] = st.size;
    this.stats[slot * 3 + 1] = st.mtimeMs;
    this.stats[slot * 3 + 2] = st.ino;
    this.oids[slot] = hex;
    this.dirty = true;
  }

  forget(path: string): void {
    if (this.index.delete(path)) this.dirty = true;
  }

  /**
   * Whether a file or directory with mtime `mtimeMs` was last changed before the state
   * file was written, in an earlier timestamp tick: only then can an unchanged stat
   * stand for unchanged content.
   */
  settled(mtimeMs: number): boolean {
    return mtimeMs < this.stamp;
  }

  /** What was last recorded for tracked directory `path` (see {@link recordDir}). */
  dir(path: string): DirMemo | undefined {
    const d = this.dirs.get(path);
    return d && { fingerprint: d[0], tree: d[1], cache: d[2] };
  }

  /** Remember what was found for tracked directory `path`. */
  recordDir(path: string, memo: DirMemo): void {
    const d = this.dirs.get(path);
    if (d && d[0] === memo.fingerprint && d[1] === memo.tree && d[2] === memo.cache) return;
    this.dirs.set(path, [memo.fingerprint, memo.tree, memo.cache]);
    this.dirty = true;
  }

  /** Persist if anything changed (atomic write). */
  async save(): Promise<void> {
    if (!this.dirty) return;
    await mkdir(dirname(this.file), { recursive: true });
    const paths: string[] = [];
    const stats: number[] = [];
    let oids = '';
    for (const [path, slot] of this.index) {
      paths.push(path);
      stats.push(this.stats[slot * 3]!, this.stats[slot * 3 + 1]!, this.stats[slot * 3 + 2]!);
      oids += this.oidAt(slot).slice(3);
    }
    const body = JSON.stringify({ version: VERSION, paths, stats, oids, dirs: Object.fromEntries(this.dirs) });
    await writeAtomic(this.file, Buffer.from(body), { mode: 0o644 });
    this.dirty = false;
  }
}
