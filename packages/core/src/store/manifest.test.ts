import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { DEFAULT_CHUNKER } from '../chunk/fastcdc.js';
import { parseLocalManifest, parseRemoteManifest, parseRemoteTreeIndex, serializeObject, type LocalManifest, type RemoteManifest, type RemoteTreeIndex } from './manifest.js';

const hex = (c: string): string => c.repeat(64);
const OID = 'b3:' + hex('f');
const chunker = { ...DEFAULT_CHUNKER };

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

const local = (over: Record<string, unknown> = {}): string =>
  JSON.stringify({ format: 'cpv-manifest', version: 1, oid: OID, size: 30, chunker, chunks: [[hex('1'), 10], [hex('2'), 20]], ...over });

const remote = (over: Record<string, unknown> = {}): string =>
  JSON.stringify({
    format: 'cpv-manifest',
    version: 1,
    oid: OID,
    size: 30,
    chunker,
    packs: [hex('a'), hex('b')],
    chunks: [[hex('1'), 10, 0, 8], [hex('2'), 20, 1, 8]],
    ...over,
  });

const TREE = `cpv-tree 1\n644 5 ${hex('1')} a\n644 100000 ${hex('2')} b\n`;
const treeIndex = (over: Record<string, unknown> = {}): string =>
  JSON.stringify({ format: 'cpv-tree-index', version: 1, oid: OID, tree: TREE, packs: [hex('a')], entries: [[0, 8], null], ...over });

describe('parseLocalManifest', () => {
  it('parses a manifest and serializes it back to the same JSON', () => {
    const m = parseLocalManifest(local(), 'm', OID);
    const expected: LocalManifest = { format: 'cpv-manifest', version: 1, oid: OID, size: 30, chunker, chunks: [[hex('1'), 10], [hex('2'), 20]] };
    expect(m).toEqual(expected);
    expect(serializeObject(m)).toBe(local() + '\n');
  });

  it('accepts an empty file with no chunks', () => {
    expect(parseLocalManifest(local({ size: 0, chunks: [] }), 'm').chunks).toEqual([]);
  });

  it('accepts a single chunk whose oid is the file oid', () => {
    expect(parseLocalManifest(local({ chunks: [[hex('f'), 30]] }), 'm', OID).chunks).toEqual([[hex('f'), 30]]);
  });

  it.each([
    ['not JSON', '{', 'not valid JSON'],
    ['a JSON array', '[]', 'expected a JSON object'],
    ['JSON null', 'null', 'expected a JSON object'],
    ['another format', local({ format: 'cpv-tree-index' }), 'expected format "cpv-manifest", got "cpv-tree-index"'],
    ['no format', local({ format: undefined }), 'expected format "cpv-manifest", got undefined'],
    ['version 2', local({ version: 2 }), 'unsupported cpv-manifest version 2'],
    ['version "1"', local({ version: '1' }), 'unsupported cpv-manifest version "1"'],
    ['an oid without prefix', local({ oid: hex('f') }), 'bad oid'],
    ['an uppercase oid', local({ oid: 'b3:' + 'F'.repeat(64) }), 'bad oid'],
    ['a negative size', local({ size: -30 }), 'bad size'],
    ['a string size', local({ size: '30' }), 'bad size'],
    ['bad chunker parameters', local({ chunker: { ...chunker, avg: 1000 } }), 'bad chunker parameters (avg must be a power of two, got 1000)'],
    ['an unknown chunker', local({ chunker: { ...chunker, algorithm: 'rabin' } }), 'bad chunker parameters'],
    ['no chunk list', local({ chunks: {} }), 'chunks must be a list'],
    ['lengths that do not sum to size', local({ size: 31 }), 'chunk lengths sum to 30, not the size 31'],
    ['a zero-length chunk', local({ size: 30, chunks: [[hex('1'), 30], [hex('2'), 0]] }), 'each chunk must be ["<oid>", length > 0]'],
    ['a negative chunk length', local({ size: 10, chunks: [[hex('1'), 20], [hex('2'), -10]] }), 'each chunk must be'],
    ['a chunk oid with prefix', local({ chunks: [['b3:' + hex('1'), 10], [hex('2'), 20]] }), 'each chunk must be'],
    ['a short chunk oid', local({ chunks: [[hex('1').slice(1), 10], [hex('2'), 20]] }), 'each chunk must be'],
    ['a chunk with three fields', local({ chunks: [[hex('1'), 10, 0], [hex('2'), 20]] }), 'each chunk must be'],
    ['a single chunk that is not the file', local({ size: 30, chunks: [[hex('1'), 30]] }), 'a single chunk must have the oid of the file'],
    ['a single chunk that is not a list', local({ size: 30, chunks: [hex('f')] }), 'a single chunk must have the oid of the file'],
  ])('rejects %s, naming the object', (_, text, reason) => {
    const e = formatError(() => parseLocalManifest(text, 'cache manifest b3:ffff'));
    expect(e.message.startsWith('cache manifest b3:ffff: ')).toBe(true);
    expect(e.message).toContain(reason);
    expect(e.hint).toContain('delete it');
  });

  it('rejects a manifest stored under another oid', () => {
    const other = 'b3:' + hex('e');
    expect(formatError(() => parseLocalManifest(local(), 'm', other)).message).toBe(`m: describes ${OID}, expected ${other}`);
  });
});

describe('parseRemoteManifest', () => {
  it('parses a manifest and serializes it back to the same JSON', () => {
    const m = parseRemoteManifest(remote(), 'm', OID);
    const expected: RemoteManifest = {
      format: 'cpv-manifest',
      version: 1,
      oid: OID,
      size: 30,
      chunker,
      packs: [hex('a'), hex('b')],
      chunks: [[hex('1'), 10, 0, 8], [hex('2'), 20, 1, 8]],
    };
    expect(m).toEqual(expected);
    expect(serializeObject(m)).toBe(remote() + '\n');
  });

  it.each([
    ['a local manifest', local(), 'packs must be a list of pack oids'],
    ['a tree index', treeIndex(), 'expected format "cpv-manifest", got "cpv-tree-index"'],
    ['version 2', remote({ version: 2 }), 'unsupported cpv-manifest version 2'],
    ['a pack oid with prefix', remote({ packs: ['b3:' + hex('a'), hex('b')] }), 'packs must be a list of pack oids'],
    ['an uppercase pack oid', remote({ packs: [hex('A'), hex('b')] }), 'packs must be a list of pack oids'],
    ['a pack index out of range', remote({ chunks: [[hex('1'), 10, 0, 8], [hex('2'), 20, 2, 8]] }), 'each chunk must be ["<oid>", length > 0, pack index, offset]'],
    ['a negative pack index', remote({ chunks: [[hex('1'), 10, -1, 8], [hex('2'), 20, 1, 8]] }), 'each chunk must be'],
    ['a negative offset', remote({ chunks: [[hex('1'), 10, 0, -8], [hex('2'), 20, 1, 8]] }), 'each chunk must be'],
    ['a fractional offset', remote({ chunks: [[hex('1'), 10, 0, 8.5], [hex('2'), 20, 1, 8]] }), 'each chunk must be'],
    ['a zero-length chunk', remote({ size: 20, chunks: [[hex('1'), 0, 0, 8], [hex('2'), 20, 1, 8]] }), 'each chunk must be'],
    ['a bad chunk oid', remote({ chunks: [['zz', 10, 0, 8], [hex('2'), 20, 1, 8]] }), 'each chunk must be'],
    ['a chunk with two fields', remote({ chunks: [[hex('1'), 10], [hex('2'), 20, 1, 8]] }), 'each chunk must be'],
    ['lengths that do not sum to size', remote({ size: 29 }), 'chunk lengths sum to 30, not the size 29'],
    ['a bad oid', remote({ oid: 'b3:xyz' }), 'bad oid'],
    ['no chunker', remote({ chunker: undefined }), 'bad chunker parameters'],
    // A one-chunk file is its chunk: naming another chunk would put other bytes under this oid.
    ['a single chunk that is not the file', remote({ packs: [hex('a')], chunks: [[hex('1'), 30, 0, 8]] }), 'a single chunk must have the oid of the file'],
    ['a single chunk with the file oid prefixed', remote({ packs: [hex('a')], chunks: [[OID, 30, 0, 8]] }), 'a single chunk must have the oid of the file'],
  ])('rejects %s', (_, text, reason) => {
    const e = formatError(() => parseRemoteManifest(text, 'remote manifest b3:ffff on origin'));
    expect(e.message.startsWith('remote manifest b3:ffff on origin: ')).toBe(true);
    expect(e.message).toContain(reason);
  });

  it('rejects a manifest stored under another oid', () => {
    const other = 'b3:' + hex('e');
    expect(formatError(() => parseRemoteManifest(remote(), 'm', other)).message).toBe(`m: describes ${OID}, expected ${other}`);
  });

  it('accepts a single chunk whose oid is the file oid', () => {
    const m = parseRemoteManifest(remote({ packs: [hex('a')], chunks: [[hex('f'), 30, 0, 8]] }), 'm', OID);
    expect(m.chunks).toEqual([[hex('f'), 30, 0, 8]]);
  });
});

describe('parseRemoteTreeIndex', () => {
  it('parses a tree index and serializes it back to the same JSON', () => {
    const t = parseRemoteTreeIndex(treeIndex(), 't', OID);
    const expected: RemoteTreeIndex = { format: 'cpv-tree-index', version: 1, oid: OID, tree: TREE, packs: [hex('a')], entries: [[0, 8], null] };
    expect(t).toEqual(expected);
    expect(serializeObject(t)).toBe(treeIndex() + '\n');
  });

  it.each([
    ['a manifest', remote(), 'expected format "cpv-tree-index", got "cpv-manifest"'],
    ['version 2', treeIndex({ version: 2 }), 'unsupported cpv-tree-index version 2'],
    ['a bad oid', treeIndex({ oid: hex('f') }), 'bad oid'],
    ['no tree text', treeIndex({ tree: ['a'] }), 'tree must be the canonical tree text'],
    ['bad packs', treeIndex({ packs: 'x' }), 'packs must be a list of pack oids'],
    ['no entries', treeIndex({ entries: {} }), 'entries must be a list'],
    ['a pack index out of range', treeIndex({ entries: [[1, 8], null] }), 'each entry must be [pack index, offset] or null'],
    ['a negative offset', treeIndex({ entries: [[0, -1], null] }), 'each entry must be'],
    ['an entry with three fields', treeIndex({ entries: [[0, 8, 5], null] }), 'each entry must be'],
    ['an entry that is a number', treeIndex({ entries: [0, null] }), 'each entry must be'],
  ])('rejects %s', (_, text, reason) => {
    const e = formatError(() => parseRemoteTreeIndex(text, 'remote tree b3:ffff on origin'));
    expect(e.message.startsWith('remote tree b3:ffff on origin: ')).toBe(true);
    expect(e.message).toContain(reason);
  });

  it('rejects an index stored under another oid', () => {
    const other = 'b3:' + hex('e');
    expect(formatError(() => parseRemoteTreeIndex(treeIndex(), 't', other)).message).toBe(`t: describes ${OID}, expected ${other}`);
  });
});
