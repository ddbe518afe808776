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
  const fail = (reason: string): never => {
    throw new FormatError(`${what}: ${reason}`, {
      hint: 'this directory listing was not written by cpv (damaged or forged): restore the pointer from git, or have whoever has the directory `cpv add` and `cpv push` it again',
    });
  };
  if (!text.startsWith(HEADER)) fail('not a cpv tree (expected header "cpv-tree 1")');
  if (!text.endsWith('\n')) fail('tree text must end with a newline');
  const lines = text.slice(HEADER.length, -1);
  const entries: TreeEntry[] = [];
  // Only the empty tree has no lines; "cpv-tree 1\n\n" is not canonical.
  if (text.length > HEADER.length) {
    let n = 1;
    for (const line of lines.split('\n')) {
      n++;
      // `s`: a path may hold U+2028/U+2029, which `.` alone does not match.
      const m = /^(644|755) (0|[1-9][0-9]*) ([0-9a-f]{64}) (.+)$/s.exec(line);
      if (!m) fail(`line ${n} is not "<mode> <size> <oid> <path>": ${JSON.stringify(line.slice(0, 200))}`);
      const size = Number(m![2]);
      if (!Number.isSafeInteger(size)) fail(`line ${n}: size out of range`);
      entries.push({ mode: m![1] === '755' ? 0o755 : 0o644, size, oid: toFileOid(m![3]!), path: m![4]! });
    }
  }
  // Entry i is on line i + 2 (after the header).
  validateEntries(entries, what, fail, (i) => `line ${i + 2}: `);
  for (let i = 1; i < entries.length; i++) {
    if (byteCompare(entries[i - 1]!.path, entries[i]!.path) >= 0) fail(`line ${i + 2}: entries are not in canonical order at ${JSON.stringify(entries[i]!.path)}`);
  }
  return entries;
}

function validateEntries(
  sorted: readonly TreeEntry[],
  what: string,
  fail: (reason: string) => never = (reason) => {
    throw new FormatError(`${what}: ${reason}`);
  },
  at: (i: number) => string = () => '',
): void {
  const seen = new Map<string, number>();
  const dirs = new Set<string>();
  sorted.forEach((e, i) => {
    const problem = relPathProblem(e.path);
    if (problem) fail(`${at(i)}bad entry ${JSON.stringify(e.path)}: ${problem}`);
    if (seen.has(e.path)) fail(`${at(i)}duplicate entry ${JSON.stringify(e.path)}`);
    seen.set(e.path, i);
    if (e.mode !== 0o644 && e.mode !== 0o755) fail(`${at(i)}bad mode for ${JSON.stringify(e.path)}`);
    if (!e.oid.startsWith('b3:') || !isHexOid(e.oid.slice(3))) fail(`${at(i)}bad oid for ${JSON.stringify(e.path)}`);
    if (!Number.isSafeInteger(e.size) || e.size < 0) fail(`${at(i)}bad size for ${JSON.stringify(e.path)}`);
    const parts = e.path.split('/');
    for (let j = 1; j < parts.length; j++) dirs.add(parts.slice(0, j).join('/'));
  });
  for (const d of dirs) {
    if (seen.has(d)) fail(`${at(seen.get(d)!)}${JSON.stringify(d)} is both a file and a directory`);
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
