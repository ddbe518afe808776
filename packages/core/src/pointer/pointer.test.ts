import { describe, expect, it, vi } from 'vitest';
import { PointerParseError } from '../errors.js';
import { decodePointer, isValidArtifactName, MAX_POINTER_BYTES, parsePointer, serializePointer, trackedNameOf, type Pointer } from './pointer.js';

const OID = 'b3:' + '5c1f'.repeat(16);
const FILE = 'models/model.safetensors.cpv';

/** A valid file pointer for `models/model.safetensors.cpv`, one key per line. */
function text(over: Record<string, string | null> = {}, extra = ''): string {
  const keys: Record<string, string | null> = {
    version: '1',
    kind: 'model',
    path: 'model.safetensors',
    type: 'file',
    oid: OID,
    size: '1073741824',
    ...over,
  };
  return (
    Object.entries(keys)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k}: ${v}\n`)
      .join('') + extra
  );
}

/** The PointerParseError thrown by parsePointer, or a failed expectation. */
function parseError(src: string, file = FILE): PointerParseError {
  try {
    parsePointer(src, file);
  } catch (err) {
    expect(err).toBeInstanceOf(PointerParseError);
    return err as PointerParseError;
  }
  throw new Error('parsePointer accepted the pointer');
}

describe('serializePointer / parsePointer', () => {
  const sample: Pointer = {
    version: 1,
    kind: 'model',
    name: 'vision/resnet50',
    path: 'model.safetensors',
    type: 'file',
    oid: OID,
    size: 1073741824,
    meta: { framework: 'pytorch', epochs: 90, lr: 0.1, pretrained: true, release: '2.0' },
  };

  it('writes keys in the documented order and meta keys sorted', () => {
    // Insertion order of the object must not matter.
    const shuffled = { meta: { release: '2.0', pretrained: true, lr: 0.1, framework: 'pytorch', epochs: 90 }, size: sample.size, oid: OID, type: 'file', path: sample.path, name: sample.name, kind: 'model', version: 1 } as Pointer;
    const expected =
      'version: 1\n' +
      'kind: model\n' +
      'name: vision/resnet50\n' +
      'path: model.safetensors\n' +
      'type: file\n' +
      `oid: ${OID}\n` +
      'size: 1073741824\n' +
      'meta:\n' +
      '  epochs: 90\n' +
      '  framework: pytorch\n' +
      '  lr: 0.1\n' +
      '  pretrained: true\n' +
      '  release: "2.0"\n';
    expect(serializePointer(sample)).toBe(expected);
    expect(serializePointer(shuffled)).toBe(expected);
  });

  it('round-trips, keeping string meta values that look like numbers as strings', () => {
    const back = parsePointer(serializePointer(sample), FILE);
    expect(back).toEqual(sample);
    expect(typeof back.meta!.release).toBe('string');
    expect(serializePointer(back)).toBe(serializePointer(sample));
  });

  it('round-trips a directory pointer with files and no optional keys', () => {
    const dir: Pointer = { version: 1, kind: 'data', path: 'train', type: 'dir', oid: OID, size: 0, files: 0 };
    const s = serializePointer(dir);
    expect(s).toBe(`version: 1\nkind: data\npath: train\ntype: dir\noid: ${OID}\nsize: 0\nfiles: 0\n`);
    expect(parsePointer(s, 'data/train.cpv')).toEqual(dir);
  });

  it('omits an empty meta', () => {
    expect(serializePointer({ ...sample, name: undefined, meta: {} })).not.toContain('meta');
  });

  it('checks path against an explicit pointer name and names `file` in errors', () => {
    expect(parsePointer(text(), 'HEAD:model.safetensors.cpv', 'model.safetensors.cpv').path).toBe('model.safetensors');
    const e = parseError(text({ path: 'x.bin' }), 'HEAD:model.safetensors.cpv');
    expect(e.message.startsWith('HEAD:model.safetensors.cpv:3: ')).toBe(true);
  });

  it('accepts a pointer whose file name has no directory part', () => {
    expect(parsePointer(text(), 'model.safetensors.cpv').path).toBe('model.safetensors');
  });

  it('accepts a pointer of exactly the size limit', () => {
    const base = text();
    const padded = base + '#'.repeat(MAX_POINTER_BYTES - Buffer.byteLength(base) - 1) + '\n';
    expect(Buffer.byteLength(padded)).toBe(MAX_POINTER_BYTES);
    expect(parsePointer(padded, FILE).size).toBe(1073741824);
  });
});

describe('parsePointer rejects', () => {
  it('invalid YAML, naming the file and line', () => {
    const e = parseError(text({}, 'meta: [\n'));
    expect(e.code).toBe('POINTER_PARSE');
    expect(e.file).toBe(FILE);
    expect(e.line).toBe(8);
    expect(e.message).toMatch(/^models\/model\.safetensors\.cpv:8: invalid YAML: /);
  });

  it('tab indentation', () => {
    const e = parseError(text({}, 'meta:\n\ta: 1\n'));
    expect(e.line).toBe(8);
    expect(e.message).toContain('invalid YAML');
  });

  it('a second YAML document', () => {
    expect(parseError(text({}, '---\nversion: 1\n')).message).toContain('invalid YAML');
  });

  it.each([
    ['a sequence', '- version: 1\n'],
    ['a scalar', 'hello\n'],
    ['an empty file', ''],
    ['only a comment', '# nothing\n'],
  ])('a document that is %s', (_, src) => {
    const e = parseError(src);
    expect(e.line).toBe(1);
    expect(e.message).toBe(`${FILE}:1: expected a YAML mapping with keys version, kind, path, type, oid, size`);
  });

  it('an unknown key, naming its line', () => {
    const e = parseError(text({}, 'sha256: abc\n'));
    expect(e.line).toBe(7);
    expect(e.message).toBe(`${FILE}:7: unknown key "sha256" (expected one of version, kind, name, path, type, oid, size, files, meta, params, metrics)`);
  });

  it('a key that is not a string', () => {
    const e = parseError(text({}, '1: x\n'));
    expect(e.line).toBe(7);
    expect(e.message).toContain('keys must be plain strings');
  });

  it('a key that is a collection, without a warning on stderr', () => {
    const warn = vi.spyOn(process, 'emitWarning');
    try {
      const e = parseError(text({}, '? [a, b]\n: 1\n'));
      expect(e.line).toBe(7);
      expect(e.message).toContain('keys must be plain strings');
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('an unsafe integer size, quoted as written (not as rounded)', () => {
    expect(parseError(text({ size: '9007199254740993' })).message).toContain('got "9007199254740993"');
  });

  it.each(['version', 'kind', 'path', 'type', 'oid', 'size'])('a missing %s', (key) => {
    const e = parseError(text({ [key]: null }));
    expect(e.message).toBe(`${FILE}: missing required key "${key}"`);
    expect(e.line).toBeUndefined();
  });

  it('version 2, naming the line', () => {
    const e = parseError(text({ version: '2' }));
    expect(e.line).toBe(1);
    expect(e.message).toContain('unsupported pointer version 2');
  });

  it.each([['"1"'], ['0'], ['1.5'], ['null']])('version %s', (v) => {
    expect(parseError(text({ version: v })).message).toContain('unsupported pointer version');
  });

  it('an unknown kind', () => {
    const e = parseError(text({ kind: 'weights' }));
    expect(e.line).toBe(2);
    expect(e.message).toBe(`${FILE}:2: kind must be one of model, data, other, got "weights"`);
  });

  it('a path that is not the pointer file name minus .cpv', () => {
    const e = parseError(text({ path: 'other.safetensors' }));
    expect(e.line).toBe(3);
    expect(e.message).toBe(`${FILE}:3: path "other.safetensors" does not match the pointer's own name; expected "model.safetensors"`);
  });

  it.each([
    ['a directory part', 'sub/model.safetensors', FILE],
    ['traversal', '../model.safetensors', FILE],
    ['an absolute path', '/etc/passwd', FILE],
    ['a backslash', '"..\\\\model.safetensors"', FILE],
    ['"..", even when the file name yields it', '..', 'models/...cpv'],
    ['".", even when the file name yields it', '.', 'models/..cpv'],
    ['a NUL byte', '"model.safetensors\\0"', FILE],
  ])('a path with %s', (_, path, file) => {
    const e = parseError(text({ path }), file);
    expect(e.line).toBe(3);
    expect(e.message).toContain('must be a plain file name next to the pointer');
  });

  it.each([['""'], ['42'], ['[a]']])('a path that is not a non-empty string: %s', (path) => {
    expect(parseError(text({ path })).message).toContain('path must be a non-empty string');
  });

  it('an unknown type', () => {
    const e = parseError(text({ type: 'symlink' }));
    expect(e.line).toBe(4);
    expect(e.message).toContain('type must be "file" or "dir", got "symlink"');
  });

  it.each([
    ['too short', 'b3:' + 'a'.repeat(63)],
    ['too long', 'b3:' + 'a'.repeat(65)],
    ['uppercase', 'b3:' + 'A'.repeat(64)],
    ['without prefix', 'a'.repeat(64)],
    ['with another prefix', 'sha256:' + 'a'.repeat(64)],
    ['non-hex', 'b3:' + 'g'.repeat(64)],
    ['a number', '12345'],
  ])('an oid %s', (_, oid) => {
    const e = parseError(text({ oid }));
    expect(e.line).toBe(5);
    expect(e.message).toContain('oid must be "b3:" followed by 64 lowercase hex digits');
  });

  it.each([
    ['negative', '-1'],
    ['a float', '1.5'],
    ['a string', '"10"'],
    ['an unsafe integer', '9007199254740993'],
    ['infinite', '.inf'],
    ['null', 'null'],
    ['hexadecimal', '0x10'],
    ['in exponent notation', '1e3'],
    ['signed', '+5'],
    ['zero-padded', '010'],
  ])('a size that is %s', (_, size) => {
    const e = parseError(text({ size }));
    expect(e.line).toBe(6);
    expect(e.message).toContain('size must be a non-negative integer');
  });

  it('files on a file pointer', () => {
    const e = parseError(text({}, 'files: 3\n'));
    expect(e.line).toBe(7);
    expect(e.message).toContain('"files" is only allowed on a directory pointer');
  });

  it('a directory pointer without files', () => {
    const e = parseError(text({ path: 'train', type: 'dir' }), 'data/train.cpv');
    expect(e.message).toBe('data/train.cpv: missing required key "files" for a directory pointer');
  });

  it('a directory pointer with a bad files count', () => {
    expect(parseError(text({ path: 'train', type: 'dir' }, 'files: -2\n'), 'data/train.cpv').message).toContain('files must be a non-negative integer');
  });

  it.each([
    ['a nested mapping', 'meta:\n  a:\n    b: 1\n', 'meta.a must be a string, number or boolean'],
    ['a list value', 'meta:\n  a: [1, 2]\n', 'meta.a must be a string, number or boolean'],
    ['a null value', 'meta:\n  a: null\n', 'meta.a must be a string, number or boolean'],
    ['an infinite number', 'meta:\n  a: .inf\n', 'meta.a must be a string, number or boolean'],
    ['a list', 'meta: [1, 2]\n', 'meta must be a mapping'],
    ['a scalar', 'meta: hello\n', 'meta must be a mapping'],
    ['an empty value', 'meta:\n', 'meta must be a mapping'],
    ['a key starting with a digit', 'meta:\n  1abc: x\n', 'meta key "1abc" must match'],
    ['a key with a space', 'meta:\n  "a b": x\n', 'meta key "a b" must match'],
    ['a merge key', 'meta:\n  <<: {a: 1}\n', 'meta key "<<" must match'],
  ])('meta with %s', (_, extra, reason) => {
    const e = parseError(text({}, extra));
    expect(e.line).toBe(7);
    expect(e.message).toContain(reason);
  });

  it('an invalid name', () => {
    const e = parseError(text({}, 'name: "../x"\n'));
    expect(e.line).toBe(7);
    expect(e.message).toContain('name must be letters, digits');
  });

  it('a pointer over 64 KiB, before parsing it', () => {
    const base = text();
    const big = base + '#'.repeat(MAX_POINTER_BYTES - Buffer.byteLength(base)) + '\n';
    expect(Buffer.byteLength(big)).toBe(MAX_POINTER_BYTES + 1);
    const e = parseError(big);
    expect(e.line).toBeUndefined();
    expect(e.message).toContain(`pointer is larger than ${MAX_POINTER_BYTES} bytes`);
  });

  it('counts the size limit in UTF-8 bytes, not characters', () => {
    const base = text();
    // 'é' is 2 bytes: fewer characters than the limit, more bytes.
    const big = base + '#' + 'é'.repeat((MAX_POINTER_BYTES - Buffer.byteLength(base)) / 2 + 1) + '\n';
    expect(big.length).toBeLessThan(MAX_POINTER_BYTES);
    expect(parseError(big).message).toContain('larger than');
  });

  it('a YAML alias, naming its line', () => {
    const e = parseError(text({}, 'meta:\n  a: &x hello\n  b: *x\n'));
    expect(e.code).toBe('POINTER_PARSE');
    expect(e.line).toBe(9);
    expect(e.message).toContain('alias');
  });

  it('an alias in a top-level value', () => {
    const e = parseError(text({ kind: '&k model' }, 'name: *k\n'));
    expect(e.line).toBe(7);
    expect(e.message).toContain('alias');
  });

  it('a billion-laughs alias bomb, quickly', () => {
    const levels = ['  a0: &a0 lol'];
    for (let i = 1; i < 10; i++) levels.push(`  a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const bomb = text({}, 'meta:\n' + levels.join('\n') + '\n');
    const started = Date.now();
    const e = parseError(bomb);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(e.message).toContain('alias');
  });

  it('duplicate keys, naming the line of the second', () => {
    const e = parseError(text({}, 'size: 12\n'));
    expect(e.line).toBe(7);
    expect(e.message).toContain('invalid YAML');
    expect(e.message.toLowerCase()).toContain('unique');
  });

  it('duplicate meta keys', () => {
    expect(parseError(text({}, 'meta:\n  a: 1\n  a: 2\n')).message).toContain('invalid YAML');
  });

  it('with a hint to restore the pointer from git', () => {
    expect(parseError(text({ version: '2' })).hint).toBe(`fix or restore the pointer (e.g. \`git checkout -- ${FILE}\`), then run the command again`);
    expect(parseError(text({ version: '2' })).exitCode).toBe(5);
  });
});

describe('decodePointer', () => {
  it('returns the text of valid UTF-8, non-ASCII included', () => {
    expect(decodePointer(Buffer.from(text({}, 'meta:\n  note: café\n')), FILE)).toBe(text({}, 'meta:\n  note: café\n'));
  });

  it('rejects bytes that are not UTF-8, naming the file and the line', () => {
    const bytes = Buffer.concat([Buffer.from(text() + 'meta:\n  note: caf'), Buffer.from([0xe9, 0x0a])]);
    try {
      decodePointer(bytes, FILE);
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(PointerParseError);
      expect((err as PointerParseError).message).toBe(`${FILE}:8: not valid UTF-8 text`);
      expect((err as PointerParseError).line).toBe(8);
    }
  });
});

describe('trackedNameOf', () => {
  it('strips .cpv from pointer file names only', () => {
    expect(trackedNameOf('model.bin.cpv')).toBe('model.bin');
    expect(trackedNameOf('model.bin')).toBeUndefined();
    expect(trackedNameOf('.cpv')).toBeUndefined();
    expect(trackedNameOf('a.cpv.txt')).toBeUndefined();
  });
});

describe('isValidArtifactName', () => {
  it.each(['resnet50', 'team/resnet50', 'a', 'A-b_c.d', '_private', '-dash', 'v1.2.3', 'x'.repeat(200)])('accepts %s', (name) => {
    expect(isValidArtifactName(name)).toBe(true);
  });

  it.each([
    '',
    '.hidden',
    'team/.hidden',
    'a/b/c',
    '/abs',
    'team/',
    '../x',
    'a b',
    'é',
    'a\\b',
    'a:b',
    'x'.repeat(201),
  ])('rejects %j', (name) => {
    expect(isValidArtifactName(name)).toBe(false);
  });
});
