import { describe, expect, it } from 'vitest';
import { FormatError, UsageError } from '../errors.js';
import { formatVersionMessage, hasVersionBlock, parseVersionBlock, VERSION_BEGIN, VERSION_END, type VersionBlock } from './version-block.js';

const OID_A = 'b3:' + 'a'.repeat(64);
const OID_B = 'b3:' + '0123456789abcdef'.repeat(4);

const block: VersionBlock = {
  version: 1,
  artifacts: [
    { name: 'resnet50', kind: 'model', path: 'models/model.safetensors', type: 'file', oid: OID_A, size: 1234 },
    { name: 'data/train', kind: 'data', path: 'data/train', type: 'dir', oid: OID_B, size: 99, files: 3 },
  ],
  meta: { epochs: 10, framework: 'pytorch', final: true },
};

/** A message with the block's YAML replaced by `yaml`. */
function withYaml(yaml: string, message = 'msg'): string {
  return `${message}\n\n${VERSION_BEGIN}\n${yaml}${VERSION_END}\n`;
}

const artifactYaml = (extra = '', over: Record<string, string> = {}): string => {
  const f = { name: 'm', kind: 'model', path: 'model.bin', type: 'file', oid: OID_A, size: '10', ...over };
  return `  - name: ${f.name}\n    kind: ${f.kind}\n    path: ${f.path}\n    type: ${f.type}\n    oid: ${f.oid}\n    size: ${f.size}\n${extra}`;
};

function parseError(text: string, tag = 'v1'): FormatError {
  try {
    parseVersionBlock(text, tag);
  } catch (err) {
    expect(err).toBeInstanceOf(FormatError);
    return err as FormatError;
  }
  throw new Error('expected a FormatError');
}

describe('formatVersionMessage / parseVersionBlock', () => {
  it('round-trips, sorting artifacts by path and meta keys', () => {
    const text = formatVersionMessage('Trained on March data\n\nLonger body.', block);
    expect(text).toMatch(/^Trained on March data\n\nLonger body\.\n\n-----BEGIN CPV VERSION-----\nversion: 1\nartifacts:\n {2}- name: data\/train\n/);
    expect(text.endsWith(`${VERSION_END}\n`)).toBe(true);
    expect(text.indexOf('epochs')).toBeLessThan(text.indexOf('final'));
    const parsed = parseVersionBlock(text, 'v1')!;
    expect(parsed.message).toBe('Trained on March data\n\nLonger body.');
    expect(parsed.block.version).toBe(1);
    expect(parsed.block.artifacts.map((a) => a.path)).toEqual(['data/train', 'models/model.safetensors']);
    expect(parsed.block.artifacts[0]).toEqual(block.artifacts[1]);
    expect(parsed.block.artifacts[1]).toEqual(block.artifacts[0]);
    expect(parsed.block.meta).toEqual(block.meta);
  });

  it('keeps names that look like numbers or booleans as strings', () => {
    const b: VersionBlock = { version: 1, artifacts: [{ name: '123', kind: 'other', path: 'true', type: 'file', oid: OID_A, size: 0 }] };
    expect(parseVersionBlock(formatVersionMessage('m', b), 't')!.block).toEqual(b);
  });

  it('returns undefined for a message without a block', () => {
    expect(parseVersionBlock('Release 1.0\n\nNotes.\n', 'v1')).toBeUndefined();
    expect(hasVersionBlock('Release 1.0\n')).toBe(false);
  });

  it('accepts a signature git appends after the block, and trailing blank lines', () => {
    const text = formatVersionMessage('m', block) + '\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n';
    expect(parseVersionBlock(text, 'v1')!.block.artifacts).toHaveLength(2);
    expect(parseVersionBlock(formatVersionMessage('m', block) + '\n\n', 'v1')).toBeDefined();
  });

  it('rejects a message that is empty or contains a marker line', () => {
    expect(() => formatVersionMessage('  \n', block)).toThrow(UsageError);
    expect(() => formatVersionMessage(`hello\n${VERSION_BEGIN}\n`, block)).toThrow(UsageError);
  });
});

describe('parseVersionBlock is strict', () => {
  it('rejects an unknown version, naming the tag', () => {
    const err = parseError(withYaml(`version: 2\nartifacts:\n${artifactYaml()}`), 'release/7');
    expect(err.message).toContain('version tag "release/7"');
    expect(err.message).toContain('unsupported version 2');
    expect(err.data).toMatchObject({ tag: 'release/7' });
  });

  it('reports the line of the message where the problem is', () => {
    // Line 1 message, 2 blank, 3 BEGIN, 4 version, 5 artifacts, 6.. the artifact; oid is line 10.
    const err = parseError(withYaml(`version: 1\nartifacts:\n${artifactYaml('', { oid: 'b3:XYZ' })}`));
    expect(err.message).toContain('line 10');
    expect(err.message).toContain('artifacts[0].oid');
  });

  it.each([
    ['bad oid', artifactYaml('', { oid: 'b3:' + 'A'.repeat(64) }), 'oid must be'],
    ['sha256 oid', artifactYaml('', { oid: 'sha256:' + 'a'.repeat(64) }), 'oid must be'],
    ['hex size', artifactYaml('', { size: '0x10' }), 'size must be a non-negative integer'],
    ['negative size', artifactYaml('', { size: '-1' }), 'size must be a non-negative integer'],
    ['unknown kind', artifactYaml('', { kind: 'weights' }), 'kind must be one of'],
    ['unknown type', artifactYaml('', { type: 'link' }), 'type must be'],
    ['absolute path', artifactYaml('', { path: '/etc/passwd' }), 'must be a relative path'],
    ['dot-dot path', artifactYaml('', { path: '../outside' }), 'must be a relative path'],
    ['inner dot-dot', artifactYaml('', { path: 'a/../../b' }), 'must be a relative path'],
    ['backslash', artifactYaml('', { path: '"a\\\\b"' }), 'must be a relative path'],
    ['pointer path', artifactYaml('', { path: 'model.bin.cpv' }), 'names a pointer file'],
    ['inside .git', artifactYaml('', { path: '.git/config' }), 'inside .git/'],
    ['unknown key', artifactYaml('    url: http://x\n'), 'unknown key "url"'],
    ['files on a file', artifactYaml('    files: 2\n'), '"files" is only allowed on a directory'],
    ['dir without files', artifactYaml('', { type: 'dir' }), 'missing required key "files"'],
    ['missing oid', '  - name: m\n    kind: model\n    path: a\n    type: file\n    size: 1\n', 'missing required key "oid"'],
  ])('rejects an artifact with %s', (_label, art, reason) => {
    expect(parseError(withYaml(`version: 1\nartifacts:\n${art}`)).message).toContain(reason);
  });

  it('rejects repeated and nested paths', () => {
    expect(parseError(withYaml(`version: 1\nartifacts:\n${artifactYaml()}${artifactYaml()}`)).message).toContain('listed twice');
    const nested = artifactYaml('    files: 1\n', { path: 'data', type: 'dir' }) + artifactYaml('', { path: 'data/x.bin' });
    expect(parseError(withYaml(`version: 1\nartifacts:\n${nested}`)).message).toContain('lies inside "data"');
  });

  it('rejects unknown top-level keys, empty artifact lists, bad meta and aliases', () => {
    expect(parseError(withYaml(`version: 1\nartifacts:\n${artifactYaml()}remote: s3://x\n`)).message).toContain('unknown key "remote"');
    expect(parseError(withYaml('version: 1\nartifacts: []\n')).message).toContain('non-empty list');
    expect(parseError(withYaml(`version: 1\nartifacts:\n${artifactYaml()}meta:\n  nested: { a: 1 }\n`)).message).toContain('meta.nested');
    expect(parseError(withYaml(`version: 1\nartifacts:\n${artifactYaml()}meta:\n  "bad key": 1\n`)).message).toContain('meta key');
    expect(parseError(withYaml(`version: 1\nartifacts:\n  - &a\n    name: m\n  - *a\n`)).message).toContain('aliases');
    expect(parseError(withYaml('version: 1\nversion: 1\n')).message).toContain('invalid YAML');
  });

  it('rejects misplaced or repeated markers and text after the block', () => {
    const good = `version: 1\nartifacts:\n${artifactYaml()}`;
    expect(parseError(`m\n\n${VERSION_BEGIN}\n${good}`).message).toContain('without');
    expect(parseError(`m\n${VERSION_END}\n`).message).toContain('without');
    expect(parseError(`m\n\n${VERSION_BEGIN}\n${good}${VERSION_END}\n${VERSION_BEGIN}\n${good}${VERSION_END}\n`).message).toContain('more than one');
    expect(parseError(`m\n${VERSION_END}\n${VERSION_BEGIN}\n`).message).toContain('comes before');
    expect(parseError(withYaml(good) + 'trailing words\n').message).toContain('unexpected text after');
  });
});
