import { FormatError, NotFoundError } from '../errors.js';
import { isHexOid, toFileOid, oidHex } from '../util/oid.js';

/** One regular file of a tracked directory. */
export interface TreeEntry {
  /** Relative path with `/` separators (validated by validateRelPath). */
  path: string;
  /** File oid (`b3:` + hex). */
  oid: string;
  size: number;
  /** 0o644 or 0o755. */
  mode: number;
}

const HEADER = 'cpv-tree 1\n';

/**
 * Check a relative path inside a tracked directory. Returns undefined if valid,
 * otherwise the reason. Rejects absolute paths, empty / `.` / `..` components,
 * backslashes and control characters.
 */
export function relPathProblem(path: string): string | undefined {
  if (path.length === 0) return 'empty path';
  if (path.startsWith('/')) return 'absolute path';
  if (path.includes('\\')) return 'backslash in path';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'control character in path';
  if (path.includes('\uFFFD')) return 'path is not valid UTF-8';
  for (const part of path.split('/')) {
    if (part === '') return 'empty path component';
    if (part === '.' || part === '..') return `"${part}" path component`;
  }
  return undefined;
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Sort entries into canonical order (UTF-8 byte order of path). Returns a new array. */
export function sortEntries(entries: readonly TreeEntry[]): TreeEntry[] {
  return [...entries].sort((a, b) => byteCompare(a.path, b.path));
}

/**
 * Canonical text of a tree (see docs/format.md). Validates every entry and throws
 * FormatError on a bad path, duplicate, file/directory clash, bad mode or oid.
 */
export function serializeTree(entries: readonly TreeEntry[]): string {
  const sorted = sortEntries(entries);
  validateEntries(sorted, 'tree');
  let out = HEADER;
  for (const e of sorted) out += `${e.mode === 0o755 ? '755' : '644'} ${e.size} ${oidHex(e.oid)} ${e.path}\n`;
  return out;
}

/**
 * Parse canonical tree text. Pure; `what` names the object in errors. Throws
 * FormatError for anything that is not exactly canonical (so equal trees always have
 * equal bytes and a parsed tree re-serializes to the same oid).
 */
export function parseTree(text: string, what: string): TreeEntry[] {
  if (!text.startsWith(HEADER)) throw new FormatError(`${what}: not a cpv tree (expected header "cpv-tree 1")`);
  if (!text.endsWith('\n')) throw new FormatError(`${what}: tree text must end with a newline`);
  const lines = text.slice(HEADER.length, -1);
  const entries: TreeEntry[] = [];
  // Only the empty tree has no lines; "cpv-tree 1\n\n" is not canonical.
  if (text.length > HEADER.length) {
    let n = 1;
    for (const line of lines.split('\n')) {
      n++;
      // `s`: a path may hold U+2028/U+2029, which `.` alone does not match.
      const m = /^(644|755) (0|[1-9][0-9]*) ([0-9a-f]{64}) (.+)$/s.exec(line);
      if (!m) throw new FormatError(`${what}: line ${n} is not "<mode> <size> <oid> <path>": ${JSON.stringify(line.slice(0, 200))}`);
      const size = Number(m[2]);
      if (!Number.isSafeInteger(size)) throw new FormatError(`${what}: line ${n}: size out of range`);
      entries.push({ mode: m[1] === '755' ? 0o755 : 0o644, size, oid: toFileOid(m[3]!), path: m[4]! });
    }
  }
  validateEntries(entries, what);
  for (let i = 1; i < entries.length; i++) {
    if (byteCompare(entries[i - 1]!.path, entries[i]!.path) >= 0) {
      throw new FormatError(`${what}: entries are not in canonical order at ${JSON.stringify(entries[i]!.path)}`);
    }
  }
  return entries;
}

function validateEntries(sorted: readonly TreeEntry[], what: string): void {
  const seen = new Set<string>();
  const dirs = new Set<string>();
  for (const e of sorted) {
    const problem = relPathProblem(e.path);
    if (problem) throw new FormatError(`${what}: bad entry ${JSON.stringify(e.path)}: ${problem}`);
    if (seen.has(e.path)) throw new FormatError(`${what}: duplicate entry ${JSON.stringify(e.path)}`);
    seen.add(e.path);
    if (e.mode !== 0o644 && e.mode !== 0o755) throw new FormatError(`${what}: bad mode for ${JSON.stringify(e.path)}`);
    if (!e.oid.startsWith('b3:') || !isHexOid(e.oid.slice(3))) throw new FormatError(`${what}: bad oid for ${JSON.stringify(e.path)}`);
    if (!Number.isSafeInteger(e.size) || e.size < 0) throw new FormatError(`${what}: bad size for ${JSON.stringify(e.path)}`);
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of dirs) {
    if (seen.has(d)) throw new FormatError(`${what}: ${JSON.stringify(d)} is both a file and a directory`);
  }
}

/**
 * The entries of a tree that a selection of inner paths names: an entry is selected
 * when its path equals one of `only` or lies under it (`sub` selects `sub/a` and
 * `sub/b/c`). All entries when `only` is undefined. Throws NotFoundError naming the
 * first inner path that matches no entry, with `dir` (the tracked path) in the message.
 */
export function selectEntries(entries: readonly TreeEntry[], only: ReadonlySet<string> | undefined, dir: string): Set<string> {
  if (!only) return new Set(entries.map((e) => e.path));
  const out = new Set<string>();
  for (const o of only) {
    let matched = false;
    for (const e of entries) {
      if (e.path === o || e.path.startsWith(o + '/')) {
        out.add(e.path);
        matched = true;
      }
    }
    if (!matched) throw new NotFoundError(`${dir}/${o} is not in the tracked version of ${dir}`, { hint: `list its files with \`cpv status ${dir}\` or check the path` });
  }
  return out;
}
