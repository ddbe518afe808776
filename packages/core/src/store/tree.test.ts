import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { parseTree, relPathProblem, serializeTree, sortEntries, type TreeEntry } from './tree.js';

const hex = (c: string): string => c.repeat(64);
const oid = (c: string): string => 'b3:' + hex(c);
const entry = (path: string, over: Partial<TreeEntry> = {}): TreeEntry => ({ path, oid: oid('a'), size: 1, mode: 0o644, ...over });

function formatError(fn: () => unknown): FormatError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).code).toBe('FORMAT');
    return err as FormatError;
  }
  throw new Error('expected a FormatError');
}

describe('serializeTree', () => {
  it('writes the canonical text: header, one sorted line per file, trailing newline', () => {
    const entries: TreeEntry[] = [
      { path: 'b.txt', oid: oid('1'), size: 12, mode: 0o644 },
      { path: 'a/x.bin', oid: oid('2'), size: 0, mode: 0o755 },
      { path: 'a-b', oid: oid('3'), size: 1073741824, mode: 0o644 },
    ];
    expect(serializeTree(entries)).toBe(
      'cpv-tree 1\n' +
        `644 1073741824 ${hex('3')} a-b\n` +
        `755 0 ${hex('2')} a/x.bin\n` +
        `644 12 ${hex('1')} b.txt\n`,
    );
  });

  it('writes an empty tree as the header alone', () => {
    expect(serializeTree([])).toBe('cpv-tree 1\n');
  });

  it('does not depend on input order', () => {
    const entries = ['z', 'a/b', 'a-b', 'é', 'B', 'a'.repeat(3)].map((p, i) => entry(p, { size: i }));
    const once = serializeTree(entries);
    expect(serializeTree([...entries].reverse())).toBe(once);
  });

  it('orders paths by UTF-8 bytes, not by UTF-16 code units or locale', () => {
    const paths = ['é', 'a', 'B', '\u{1F600}', '\uFF5E', 'a/b', 'a-b', 'a.b', 'Z', '_'];
    const sorted = sortEntries(paths.map((p) => entry(p))).map((e) => e.path);
    // "B" 0x42 < "Z" 0x5a < "_" 0x5f < "a" 0x61 …; "a-b" 0x2d < "a.b" 0x2e < "a/b" 0x2f;
    // U+FF5E (EF BD 9E) < U+1F600 (F0 9F 98 80), although UTF-16 puts the surrogate pair first.
    expect(sorted).toEqual(['B', 'Z', '_', 'a', 'a-b', 'a.b', 'a/b', 'é', '\uFF5E', '\u{1F600}']);
    // "a" and "a/b" clash (file and directory), so serialize a compatible subset.
    const text = serializeTree(['é', 'B', '\u{1F600}', '\uFF5E', 'a/b', 'a-b', 'a.b'].map((p) => entry(p)));
    expect(text.split('\n').slice(1, -1).map((l) => l.split(' ')[3])).toEqual(['B', 'a-b', 'a.b', 'a/b', 'é', '\uFF5E', '\u{1F600}']);
  });

  it('keeps spaces inside paths', () => {
    const text = serializeTree([entry('my file.txt'), entry('dir with space/x y')]);
    expect(parseTree(text, 't').map((e) => e.path)).toEqual(['dir with space/x y', 'my file.txt']);
  });

  it.each([
    ['a duplicate', [entry('a'), entry('a')], 'duplicate entry "a"'],
    ['a file that is also a directory', [entry('a'), entry('a/b')], '"a" is both a file and a directory'],
    ['a deep clash', [entry('a/b/c'), entry('a/b')], '"a/b" is both a file and a directory'],
    ['"../x"', [entry('../x')], '".." path component'],
    ['"a/../b"', [entry('a/../b')], '".." path component'],
    ['"./a"', [entry('./a')], '"." path component'],
    ['"/abs"', [entry('/abs')], 'absolute path'],
    ['"a//b"', [entry('a//b')], 'empty path component'],
    ['a trailing slash', [entry('a/')], 'empty path component'],
    ['an empty path', [entry('')], 'empty path'],
    ['a backslash', [entry('a\\b')], 'backslash in path'],
    ['a newline', [entry('a\nb')], 'control character in path'],
    ['a tab', [entry('a\tb')], 'control character in path'],
    ['DEL', [entry('a\u007fb')], 'control character in path'],
    ['a replacement character', [entry('a\uFFFDb')], 'path is not valid UTF-8'],
    ['mode 777', [entry('a', { mode: 0o777 })], 'bad mode for "a"'],
    ['mode 600', [entry('a', { mode: 0o600 })], 'bad mode for "a"'],
    ['a negative size', [entry('a', { size: -1 })], 'bad size for "a"'],
    ['a fractional size', [entry('a', { size: 1.5 })], 'bad size for "a"'],
    ['an unsafe size', [entry('a', { size: 2 ** 53 })], 'bad size for "a"'],
    ['an uppercase oid', [entry('a', { oid: 'b3:' + 'A'.repeat(64) })], 'bad oid for "a"'],
    ['an oid without prefix', [entry('a', { oid: hex('a') })], 'bad oid for "a"'],
  ])('rejects %s', (_, entries, reason) => {
    const e = formatError(() => serializeTree(entries));
    expect(e.message).toContain(reason);
    expect(e.message.startsWith('tree: ')).toBe(true);
  });
});

describe('parseTree', () => {
  const sample = serializeTree([entry('b.txt', { oid: oid('1'), size: 12 }), entry('a/x.bin', { oid: oid('2'), size: 0, mode: 0o755 }), entry('é', { oid: oid('3'), size: 7 })]);

  it('round-trips canonical text exactly', () => {
    const entries = parseTree(sample, 'tree x');
    expect(entries).toEqual([
      { path: 'a/x.bin', oid: oid('2'), size: 0, mode: 0o755 },
      { path: 'b.txt', oid: oid('1'), size: 12, mode: 0o644 },
      { path: 'é', oid: oid('3'), size: 7, mode: 0o644 },
    ]);
    expect(serializeTree(entries)).toBe(sample);
  });

  it('round-trips paths with line and paragraph separators (U+2028, U+2029)', () => {
    const entries = [entry('a\u2028b'), entry('c\u2029d')];
    const text = serializeTree(entries);
    expect(parseTree(text, 't')).toEqual(entries);
  });

  it('parses the empty tree', () => {
    expect(parseTree('cpv-tree 1\n', 't')).toEqual([]);
  });

  const line = (p: string, size = '1', mode = '644', h = hex('a')): string => `${mode} ${size} ${h} ${p}\n`;

  it.each([
    ['another version', 'cpv-tree 2\n', 'not a cpv tree (expected header "cpv-tree 1")'],
    ['no header', line('a'), 'not a cpv tree'],
    ['a header without newline', 'cpv-tree 1', 'not a cpv tree'],
    ['a CRLF header', 'cpv-tree 1\r\n', 'not a cpv tree'],
    ['a missing trailing newline', 'cpv-tree 1\n' + line('a').trimEnd(), 'tree text must end with a newline'],
    ['an empty line', 'cpv-tree 1\n' + line('a') + '\n', 'line 3 is not'],
    ['a blank line after the header of an empty tree', 'cpv-tree 1\n\n', 'line 2 is not'],
    ['mode 777', 'cpv-tree 1\n' + line('a', '1', '777'), 'line 2 is not "<mode> <size> <oid> <path>"'],
    ['mode 0644', 'cpv-tree 1\n' + line('a', '1', '0644'), 'line 2 is not'],
    ['a negative size', 'cpv-tree 1\n' + line('a', '-1'), 'line 2 is not'],
    ['a size with a leading zero', 'cpv-tree 1\n' + line('a', '01'), 'line 2 is not'],
    ['a size with a plus sign', 'cpv-tree 1\n' + line('a', '+1'), 'line 2 is not'],
    ['a size too large', 'cpv-tree 1\n' + line('a', '9007199254740993'), 'line 2: size out of range'],
    ['an uppercase oid', 'cpv-tree 1\n' + line('a', '1', '644', 'A'.repeat(64)), 'line 2 is not'],
    ['a short oid', 'cpv-tree 1\n' + line('a', '1', '644', 'a'.repeat(63)), 'line 2 is not'],
    ['an oid with prefix', 'cpv-tree 1\n' + line('a', '1', '644', 'b3:' + hex('a')), 'line 2 is not'],
    ['two spaces', 'cpv-tree 1\n644  1 ' + hex('a') + ' a\n', 'line 2 is not'],
    ['no path', 'cpv-tree 1\n644 1 ' + hex('a') + ' \n', 'line 2 is not'],
    ['a CRLF line', 'cpv-tree 1\n' + line('a').replace('\n', '\r\n'), 'control character in path'],
    ['a duplicate', 'cpv-tree 1\n' + line('a') + line('a'), 'duplicate entry "a"'],
    ['"../x"', 'cpv-tree 1\n' + line('../x'), '".." path component'],
    ['"a/../b"', 'cpv-tree 1\n' + line('a/../b'), '".." path component'],
    ['"/abs"', 'cpv-tree 1\n' + line('/abs'), 'absolute path'],
    ['"a//b"', 'cpv-tree 1\n' + line('a//b'), 'empty path component'],
    ['"./a"', 'cpv-tree 1\n' + line('./a'), '"." path component'],
    ['a backslash', 'cpv-tree 1\n' + line('a\\b'), 'backslash in path'],
    ['a control character', 'cpv-tree 1\n' + line('a\u0001b'), 'control character in path'],
    ['a file-vs-directory clash', 'cpv-tree 1\n' + line('a') + line('a/b'), '"a" is both a file and a directory'],
    ['reversed order', 'cpv-tree 1\n' + line('b') + line('a'), 'entries are not in canonical order at "a"'],
    ['UTF-16 order instead of UTF-8', 'cpv-tree 1\n' + line('\u{1F600}') + line('\uFF5E'), 'not in canonical order'],
    ['locale order', 'cpv-tree 1\n' + line('a') + line('B'), 'not in canonical order at "B"'],
    ['"a/b" before "a-b"', 'cpv-tree 1\n' + line('a/b') + line('a-b'), 'not in canonical order at "a-b"'],
  ])('rejects %s, naming the object', (_, text, reason) => {
    const e = formatError(() => parseTree(text, 'tree b3:1234'));
    expect(e.message.startsWith('tree b3:1234: ')).toBe(true);
    expect(e.message).toContain(reason);
    expect(e.hint).toContain('restore the pointer from git');
  });

  it.each([
    ['a duplicate', line('a') + line('b') + line('b'), 'line 4: duplicate entry "b"'],
    ['a traversal', line('a') + line('b/../../x'), 'line 3: bad entry "b/../../x": ".." path component'],
    ['a file-vs-directory clash', line('a') + line('a/b'), 'line 2: "a" is both a file and a directory'],
    ['an order error', line('b') + line('a'), 'line 3: entries are not in canonical order at "a"'],
  ])('names the line of %s', (_, lines, reason) => {
    expect(formatError(() => parseTree('cpv-tree 1\n' + lines, 't')).message).toBe(`t: ${reason}`);
  });
});

describe('relPathProblem', () => {
  it.each(['a', 'a/b/c', '.hidden', 'a/.b', '...', 'a..b', 'é/ü', 'x y'])('accepts %j', (p) => {
    expect(relPathProblem(p)).toBeUndefined();
  });
});
