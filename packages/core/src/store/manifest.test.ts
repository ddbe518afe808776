import { describe, expect, it } from 'vitest';
import { createRng } from '../testing/seeded.js';
import { FormatError } from '../errors.js';
import { DEFAULT_CHUNKER } from '../chunk/fastcdc.js';
import {
  assembleManifest,
  manifestRoot,
  pageCuts,
  PAGE_MAX_CHUNKS,
  PAGE_MIN_CHUNKS,
  parseLocalManifest,
  parseManifestPage,
  parseRemoteManifest,
  parseRemoteTreeIndex,
  serializeObject,
  splitPages,
  type LocalManifest,
  type ManifestPage,
  type RemoteChunk,
  type RemoteManifest,
  type RemoteTreeIndex,
} from './manifest.js';

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
    ['version 3', remote({ version: 3 }), 'unsupported cpv-manifest version 3'],
    ['version 2 without pages', remote({ version: 2 }), 'pages must be a non-empty list'],
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
    expect(m.version === 1 && m.chunks).toEqual([[hex('f'), 30, 0, 8]]);
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

/** `n` seeded hex oids (64 hex), as a chunker would produce for random content. */
function seededOids(seed: number, n: number): string[] {
  const next = createRng(seed);
  return Array.from({ length: n }, () => Array.from({ length: 8 }, () => next().toString(16).padStart(8, '0')).join(''));
}

/** A located chunk list over `oids`, each chunk `len(i)` bytes in one of `packs`. */
function located(oids: readonly string[], packs: readonly string[], seed: number): RemoteManifest {
  const next = createRng(seed);
  const chunks = oids.map((c, i): RemoteChunk => [c, 1000 + (next() % 5000), i % packs.length, 8 + 6000 * i]);
  return { format: 'cpv-manifest', version: 1, oid: OID, size: chunks.reduce((n, c) => n + c[1], 0), chunker, packs: [...packs], chunks };
}

/** The page texts of a chunk list, as stored. */
const pageTexts = (m: RemoteManifest): string[] => splitPages(m).map((p) => serializeObject(p));

describe('pageCuts', () => {
  it('covers every chunk, each page within the bounds and ending where the oid rule says', () => {
    const oids = seededOids(7, 5000);
    const cuts = pageCuts(oids);
    expect(cuts.reduce((a, b) => a + b, 0)).toBe(oids.length);
    let at = 0;
    for (const [i, n] of cuts.entries()) {
      const last = i === cuts.length - 1;
      if (!last) expect(n).toBeGreaterThanOrEqual(PAGE_MIN_CHUNKS);
      expect(n).toBeLessThanOrEqual(PAGE_MAX_CHUNKS);
      const end = oids[at + n - 1]!;
      if (!last && n < PAGE_MAX_CHUNKS) expect(Number.parseInt(end.slice(0, 8), 16) % 64).toBe(0);
      // No earlier qualifying chunk inside the page (once past the minimum).
      for (let k = PAGE_MIN_CHUNKS - 1; k < n - 1; k++) expect(Number.parseInt(oids[at + k]!.slice(0, 8), 16) % 64).not.toBe(0);
      at += n;
    }
    // Pages average tens of chunks, not the minimum or maximum.
    expect(oids.length / cuts.length).toBeGreaterThan(40);
    expect(oids.length / cuts.length).toBeLessThan(120);
  });

  it('cuts at the maximum when no oid qualifies', () => {
    const flat = Array.from({ length: 600 }, () => '1'.repeat(64));
    expect(pageCuts(flat)).toEqual([256, 256, 88]);
    expect(pageCuts([])).toEqual([]);
  });
});

describe('splitPages', () => {
  const packs = [hex('a'), hex('b'), hex('c')];

  it('gives pages whose chunks are the list, each with its own pack table', () => {
    const m = located(seededOids(11, 3000), packs, 1);
    const pages = splitPages(m);
    const flat = pages.flatMap((p) => p.chunks.map(([c, len, pi, off]) => [c, len, p.packs[pi], off]));
    expect(flat).toEqual(m.chunks.map(([c, len, pi, off]) => [c, len, m.packs[pi], off]));
    for (const p of pages) {
      // First-use order, each pack once, only packs the page uses.
      const used = [...new Set(p.chunks.map(([, , pi]) => p.packs[pi]))];
      expect(p.packs).toEqual(used);
    }
  });

  it('an edit in the middle changes only the pages around it', () => {
    const oids = seededOids(12, 4000);
    const before = pageTexts(located(oids, packs, 2));
    const edited = [...oids];
    const at = 1700 + (createRng(3)() % 600);
    edited[at] = seededOids(99, 1)[0]!;
    const after = pageTexts(located(edited, packs, 2));
    const old = new Set(before);
    const changed = after.filter((t) => !old.has(t));
    expect(changed.length).toBeGreaterThanOrEqual(1);
    expect(changed.length).toBeLessThanOrEqual(3);
    expect(after.length - changed.length).toBeGreaterThan(before.length - 4);
  });

  it('an insertion shifts no page after it: pages carry no file offsets', () => {
    const oids = seededOids(13, 4000);
    const m = located(oids, packs, 4);
    const at = 2000 + (createRng(5)() % 500);
    const extra = seededOids(98, 40);
    const chunks: RemoteChunk[] = [...m.chunks.slice(0, at), ...extra.map((c, i): RemoteChunk => [c, 777 + i, 2, 10_000_000 + 800 * i]), ...m.chunks.slice(at)];
    const inserted: RemoteManifest = { ...m, size: chunks.reduce((n, c) => n + c[1], 0), chunks };
    const before = pageTexts(m);
    const after = pageTexts(inserted);
    const old = new Set(before);
    const changed = after.filter((t) => !old.has(t));
    expect(changed.length).toBeGreaterThanOrEqual(1);
    expect(changed.length).toBeLessThanOrEqual(4);
    expect(after.length - changed.length).toBeGreaterThan(before.length - 4);
  });
});

describe('version 2 manifests: root, pages and assembly', () => {
  const packs = [hex('a'), hex('b')];
  const paged = (m: RemoteManifest): { pages: ManifestPage[]; oids: string[]; rootText: string } => {
    const pages = splitPages(m);
    const oids = pages.map((_, i) => i.toString(16).padStart(64, '0'));
    const rootText = serializeObject(manifestRoot(m, pages.map((page, i) => ({ oid: oids[i]!, page }))));
    return { pages, oids, rootText };
  };

  it('round-trips: parse the root and the pages, assemble the same chunk list', () => {
    const m = located(seededOids(21, 900), packs, 6);
    const { pages, oids, rootText } = paged(m);
    const root = parseRemoteManifest(rootText, 'm', OID);
    if (root.version !== 2) throw new Error('expected a version 2 root');
    expect(root.pages.map(([p]) => p)).toEqual(oids);
    const parsed = pages.map((p, i) => parseManifestPage(serializeObject(p), `page ${i}`));
    expect(parsed).toEqual(pages);
    const flat = assembleManifest(root, parsed, 'm');
    expect(flat).toMatchObject({ version: 2, oid: OID, size: m.size, chunker, pages: oids });
    expect(flat.chunks.map(([c, len, pi, off]) => [c, len, flat.packs[pi], off])).toEqual(m.chunks.map(([c, len, pi, off]) => [c, len, m.packs[pi], off]));
  });

  it.each([
    ['no pages', { pages: [] }, 'pages must be a non-empty list'],
    ['a page without counts', { pages: [[hex('1')]] }, 'each page must be'],
    ['a page oid with prefix', { pages: [['b3:' + hex('1'), 1, 30]] }, 'each page must be'],
    ['an empty page', { pages: [[hex('1'), 0, 30]] }, 'each page must be'],
    ['fewer bytes than chunks', { pages: [[hex('1'), 40, 30]] }, 'each page must be'],
    ['byte counts that do not sum to size', { pages: [[hex('1'), 2, 29]] }, 'page byte counts sum to 29, not the size 30'],
  ])('rejects a root with %s', (_, over, reason) => {
    const text = JSON.stringify({ format: 'cpv-manifest', version: 2, oid: OID, size: 30, chunker, ...over });
    expect(formatError(() => parseRemoteManifest(text, 'remote manifest b3:ffff on origin')).message).toContain(reason);
  });

  const page = (over: Record<string, unknown> = {}): string =>
    JSON.stringify({ format: 'cpv-manifest-page', version: 1, packs: [hex('a')], chunks: [[hex('1'), 10, 0, 8], [hex('2'), 20, 0, 18]], ...over });

  it.each([
    ['not JSON', '{"format"', 'not valid JSON'],
    ['a manifest', remote(), 'expected format "cpv-manifest-page", got "cpv-manifest"'],
    ['version 2', page({ version: 2 }), 'unsupported cpv-manifest-page version 2'],
    ['bad packs', page({ packs: ['../x'] }), 'packs must be a list of pack oids'],
    ['no chunks', page({ chunks: [] }), 'chunks must be a non-empty list'],
    ['a pack index out of range', page({ chunks: [[hex('1'), 10, 1, 8]] }), 'each chunk must be ["<oid>", length > 0, pack index, offset]'],
    ['a negative offset', page({ chunks: [[hex('1'), 10, 0, -1]] }), 'each chunk must be'],
  ])('rejects a page that is %s', (_, text, reason) => {
    const e = formatError(() => parseManifestPage(text, 'manifest page 0123'));
    expect(e.message.startsWith('manifest page 0123: ')).toBe(true);
    expect(e.message).toContain(reason);
  });

  it('assembly rejects pages that do not hold what the root says, or a lone chunk that is not the file', () => {
    const m = located(seededOids(22, 700), packs, 7);
    const { pages, rootText } = paged(m);
    const root = parseRemoteManifest(rootText, 'm', OID);
    if (root.version !== 2) throw new Error('expected a version 2 root');
    const shortened = pages.map((p, i) => (i === 1 ? { ...p, chunks: p.chunks.slice(1) } : p));
    expect(formatError(() => assembleManifest(root, shortened, 'remote manifest x')).message).toMatch(/^remote manifest x: page [0-9a-f]{12} holds \d+ chunks/);
    expect(formatError(() => assembleManifest(root, pages.slice(1), 'remote manifest x')).message).toContain(`${pages.length - 1} pages for the ${pages.length} it lists`);
    const one: ManifestPage = { format: 'cpv-manifest-page', version: 1, packs: [hex('a')], chunks: [[hex('1'), 30, 0, 8]] };
    const lone = parseRemoteManifest(JSON.stringify({ format: 'cpv-manifest', version: 2, oid: OID, size: 30, chunker, pages: [[hex('9'), 1, 30]] }), 'm');
    if (lone.version !== 2) throw new Error('expected a version 2 root');
    expect(formatError(() => assembleManifest(lone, [one], 'm')).message).toContain('a single chunk must have the oid of the file');
  });
});
