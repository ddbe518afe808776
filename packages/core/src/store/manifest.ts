import { FormatError } from '../errors.js';
import { validateChunkerParams, type ChunkerParams } from '../chunk/fastcdc.js';
import { isFileOid, isHexOid } from '../util/oid.js';

/** A chunk of a file: its oid (hex) and length. */
export type ChunkRef = [oid: string, length: number];

/** The chunk list of a cached file (docs/format.md, "Local manifest"). */
export interface LocalManifest {
  format: 'cpv-manifest';
  version: 1;
  oid: string;
  size: number;
  chunker: ChunkerParams;
  chunks: ChunkRef[];
}

/** A chunk on a remote: oid, length, index into `packs`, offset in that pack. */
export type RemoteChunk = [oid: string, length: number, pack: number, offset: number];

/**
 * Where every chunk of a file lives on one remote (docs/format.md, "Remote manifest"):
 * what readers use, whichever version is stored. Version 1 is stored exactly like this;
 * a version 2 manifest (a root and its pages) is flattened to it, with `pages` added.
 */
export interface RemoteManifest {
  format: 'cpv-manifest';
  version: 1 | 2;
  oid: string;
  size: number;
  chunker: ChunkerParams;
  packs: string[];
  chunks: RemoteChunk[];
  /** Version 2 only: the oids of its pages, in order. */
  pages?: string[];
}

/** A stored version 1 (inline) remote manifest. */
export interface InlineManifest extends RemoteManifest {
  version: 1;
  pages?: undefined;
}

/** A page as a version 2 manifest root lists it: page oid, chunk count, byte count. */
export type PageRef = [oid: string, chunks: number, bytes: number];

/** The stored root of a version 2 (paged) remote manifest (docs/format.md). */
export interface ManifestRoot {
  format: 'cpv-manifest';
  version: 2;
  oid: string;
  size: number;
  chunker: ChunkerParams;
  pages: PageRef[];
}

/**
 * A page of a version 2 remote manifest: a run of the file's chunks with their
 * locations, its own pack table, no file offsets. Named by the BLAKE3 of its bytes.
 */
export interface ManifestPage {
  format: 'cpv-manifest-page';
  version: 1;
  packs: string[];
  chunks: RemoteChunk[];
}

/** Files with more chunks than this get a paged (version 2) remote manifest. */
export const INLINE_MANIFEST_MAX_CHUNKS = 256;
/** A page ends after a chunk whose oid's first 4 bytes are 0 modulo this... */
export const PAGE_CUT_MODULUS = 64;
/** ...once it has at least this many chunks... */
export const PAGE_MIN_CHUNKS = 16;
/** ...and always at this many. */
export const PAGE_MAX_CHUNKS = 256;

/** A directory on a remote: its canonical tree text and where each single-chunk file lives. */
export interface RemoteTreeIndex {
  format: 'cpv-tree-index';
  version: 1;
  oid: string;
  tree: string;
  packs: string[];
  /** Per tree line: [pack index, offset] for a single-chunk file, null for one with a manifest. */
  entries: Array<[pack: number, offset: number] | null>;
}

function fail(what: string, reason: string): never {
  throw new FormatError(`${what}: ${reason}`, {
    hint: what.startsWith('cache')
      ? 'the cached record is damaged: delete it and run the command again (cpv rebuilds it)'
      : 'the remote record is damaged or was written by an incompatible cpv: push the data again from a clone that has it',
  });
}

function parseJson(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    fail(what, `not valid JSON (${(err as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(what, 'expected a JSON object');
  return v as Record<string, unknown>;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function header(o: Record<string, unknown>, what: string, format: string, versions: readonly unknown[] = [1]): void {
  if (o.format !== format) fail(what, `expected format "${format}", got ${JSON.stringify(o.format)}`);
  if (!versions.includes(o.version)) fail(what, `unsupported ${format} version ${JSON.stringify(o.version)}`);
}

function chunkerOf(o: Record<string, unknown>, what: string): ChunkerParams {
  try {
    return validateChunkerParams(o.chunker);
  } catch (err) {
    fail(what, `bad chunker parameters (${(err as Error).message})`);
  }
}

function packsOf(o: Record<string, unknown>, what: string): string[] {
  if (!Array.isArray(o.packs) || !o.packs.every((p) => typeof p === 'string' && isHexOid(p))) fail(what, 'packs must be a list of pack oids');
  return o.packs as string[];
}

/**
 * Parse and validate a local manifest. `expectOid` is the oid it is stored under.
 * Throws FormatError when malformed or when the chunk lengths do not sum to `size`.
 */
export function parseLocalManifest(text: string, what: string, expectOid?: string): LocalManifest {
  const { o, oid, size, chunker } = manifestHead(text, what, expectOid);
  const chunks = chunkList(o, oid, what);
  let total = 0;
  for (const c of chunks) {
    if (!Array.isArray(c) || c.length !== 2 || typeof c[0] !== 'string' || !isHexOid(c[0]) || !isCount(c[1]) || c[1] === 0) fail(what, 'each chunk must be ["<oid>", length > 0]');
    total += c[1];
  }
  if (total !== size) fail(what, `chunk lengths sum to ${total}, not the size ${size}`);
  return { format: 'cpv-manifest', version: 1, oid, size, chunker, chunks: chunks as ChunkRef[] };
}

/** The fields every manifest shares, validated (the chunk list is the caller's). */
function manifestHead(
  text: string,
  what: string,
  expectOid: string | undefined,
  versions: readonly number[] = [1],
): { o: Record<string, unknown>; oid: string; size: number; chunker: ChunkerParams } {
  const o = parseJson(text, what);
  header(o, what, 'cpv-manifest', versions);
  const { oid, size } = o;
  if (typeof oid !== 'string' || !isFileOid(oid)) fail(what, 'bad oid');
  if (expectOid !== undefined && oid !== expectOid) fail(what, `describes ${oid}, expected ${expectOid}`);
  if (!isCount(size)) fail(what, 'bad size');
  return { o, oid, size, chunker: chunkerOf(o, what) };
}

/** The chunk list of a version 1 manifest, checking the one-chunk rule. */
function chunkList(o: Record<string, unknown>, oid: string, what: string): unknown[] {
  if (!Array.isArray(o.chunks)) fail(what, 'chunks must be a list');
  singleChunkRule(o.chunks as unknown[], oid, what);
  return o.chunks as unknown[];
}

/** A one-chunk file's chunk is the whole file: its chunk oid must be the file oid. */
function singleChunkRule(chunks: readonly unknown[], oid: string, what: string): void {
  const first = chunks[0];
  if (chunks.length === 1 && (!Array.isArray(first) || first[0] !== oid.slice(3))) fail(what, 'a single chunk must have the oid of the file');
}

/** Validate located chunks against `packs`; returns their byte total. */
function locatedChunks(chunks: readonly unknown[], packs: readonly string[], what: string): number {
  let total = 0;
  for (const c of chunks) {
    if (
      !Array.isArray(c) || c.length !== 4 || typeof c[0] !== 'string' || !isHexOid(c[0]) ||
      !isCount(c[1]) || c[1] === 0 || !isCount(c[2]) || c[2] >= packs.length || !isCount(c[3])
    ) fail(what, 'each chunk must be ["<oid>", length > 0, pack index, offset]');
    total += c[1];
  }
  return total;
}

/**
 * Parse and validate a stored remote manifest: version 1 (inline: checks pack indexes
 * and that chunk lengths sum to `size`) or a version 2 root (checks that its pages'
 * byte counts sum to `size`; the pages are read and checked by
 * {@link parseManifestPage} and {@link assembleManifest}). Chunk bytes are verified
 * later, when they are read. Throws FormatError naming `what`.
 */
export function parseRemoteManifest(text: string, what: string, expectOid?: string): InlineManifest | ManifestRoot {
  const { o, oid, size, chunker } = manifestHead(text, what, expectOid, [1, 2]);
  if (o.version === 2) {
    if (!Array.isArray(o.pages) || o.pages.length === 0) fail(what, 'pages must be a non-empty list');
    let total = 0;
    for (const p of o.pages as unknown[]) {
      if (!Array.isArray(p) || p.length !== 3 || typeof p[0] !== 'string' || !isHexOid(p[0]) || !isCount(p[1]) || p[1] === 0 || !isCount(p[2]) || p[2] < p[1]) {
        fail(what, 'each page must be ["<page oid>", chunk count > 0, byte count >= chunk count]');
      }
      total += p[2];
    }
    if (total !== size) fail(what, `page byte counts sum to ${total}, not the size ${size}`);
    return { format: 'cpv-manifest', version: 2, oid, size, chunker, pages: o.pages as PageRef[] };
  }
  const chunks = chunkList(o, oid, what);
  const packs = packsOf(o, what);
  const total = locatedChunks(chunks, packs, what);
  if (total !== size) fail(what, `chunk lengths sum to ${total}, not the size ${size}`);
  return { format: 'cpv-manifest', version: 1, oid, size, chunker, packs, chunks: chunks as RemoteChunk[] };
}

/** Parse and validate a page of a version 2 remote manifest. Throws FormatError naming `what`. */
export function parseManifestPage(text: string, what: string): ManifestPage {
  const o = parseJson(text, what);
  header(o, what, 'cpv-manifest-page');
  const packs = packsOf(o, what);
  if (!Array.isArray(o.chunks) || o.chunks.length === 0) fail(what, 'chunks must be a non-empty list');
  locatedChunks(o.chunks as unknown[], packs, what);
  return { format: 'cpv-manifest-page', version: 1, packs, chunks: o.chunks as RemoteChunk[] };
}

/**
 * The flattened manifest of a version 2 root and its pages (in the root's order, each
 * already checked to hash to its oid). Checks that each page holds the chunk and byte
 * counts the root gives it and the one-chunk rule. Pure; throws FormatError naming `what`.
 */
export function assembleManifest(root: ManifestRoot, pages: readonly ManifestPage[], what: string): RemoteManifest {
  if (pages.length !== root.pages.length) fail(what, `${pages.length} pages for the ${root.pages.length} it lists`);
  const table = new PackTable();
  const chunks: RemoteChunk[] = [];
  pages.forEach((page, i) => {
    const [pageOid, count, bytes] = root.pages[i]!;
    let total = 0;
    for (const [c, length, p, offset] of page.chunks) {
      chunks.push([c, length, table.index(page.packs[p]!), offset]);
      total += length;
    }
    if (page.chunks.length !== count || total !== bytes) {
      fail(what, `page ${pageOid.slice(0, 12)} holds ${page.chunks.length} chunks of ${total} bytes, the root says ${count} of ${bytes}`);
    }
  });
  singleChunkRule(chunks, root.oid, what);
  return { format: 'cpv-manifest', version: 2, oid: root.oid, size: root.size, chunker: root.chunker, packs: table.packs, chunks, pages: root.pages.map(([p]) => p) };
}

/**
 * How many chunks each page of a chunk list holds (docs/format.md, "Remote manifest,
 * version 2"). Content-defined on the chunk oids: a page ends after a chunk whose oid's
 * first 4 bytes (big-endian) are 0 modulo {@link PAGE_CUT_MODULUS}, once it holds at
 * least {@link PAGE_MIN_CHUNKS}, and always at {@link PAGE_MAX_CHUNKS}; the end of the
 * list ends the last page. An edit changes only the pages around it. Pure.
 */
export function pageCuts(oids: readonly string[]): number[] {
  const out: number[] = [];
  let n = 0;
  for (const oid of oids) {
    n++;
    if (n === PAGE_MAX_CHUNKS || (n >= PAGE_MIN_CHUNKS && Number.parseInt(oid.slice(0, 8), 16) % PAGE_CUT_MODULUS === 0)) {
      out.push(n);
      n = 0;
    }
  }
  if (n > 0) out.push(n);
  return out;
}

/**
 * The pages a file's located chunks are stored in, in order, each with its own pack
 * table (packs in first-use order), so equal runs of equally located chunks give
 * byte-identical pages. Pure.
 */
export function splitPages(m: Pick<RemoteManifest, 'packs' | 'chunks'>): ManifestPage[] {
  const pages: ManifestPage[] = [];
  let at = 0;
  for (const count of pageCuts(m.chunks.map(([c]) => c))) {
    const table = new PackTable();
    const chunks = m.chunks.slice(at, at + count).map(([c, length, p, offset]): RemoteChunk => [c, length, table.index(m.packs[p]!), offset]);
    pages.push({ format: 'cpv-manifest-page', version: 1, packs: table.packs, chunks });
    at += count;
  }
  return pages;
}

/** The root of a version 2 manifest over `pages` (with their oids). Pure. */
export function manifestRoot(m: Pick<RemoteManifest, 'oid' | 'size' | 'chunker'>, pages: ReadonlyArray<{ oid: string; page: ManifestPage }>): ManifestRoot {
  return {
    format: 'cpv-manifest',
    version: 2,
    oid: m.oid,
    size: m.size,
    chunker: m.chunker,
    pages: pages.map(({ oid, page }): PageRef => [oid, page.chunks.length, page.chunks.reduce((n, c) => n + c[1], 0)]),
  };
}

/** The `packs` list of a manifest, page or tree index: each pack once, in first-use order. */
export class PackTable {
  readonly packs: string[] = [];
  private readonly at = new Map<string, number>();

  /** The index of `pack`, appending it on first use. */
  index(pack: string): number {
    let i = this.at.get(pack);
    if (i === undefined) {
      i = this.packs.push(pack) - 1;
      this.at.set(pack, i);
    }
    return i;
  }
}

/**
 * Parse a remote tree index. Checks structure only; the caller must check that
 * `tree` hashes to `oid` (it needs the hasher) and parse the tree text.
 */
export function parseRemoteTreeIndex(text: string, what: string, expectOid?: string): RemoteTreeIndex {
  const o = parseJson(text, what);
  header(o, what, 'cpv-tree-index');
  const { oid, tree } = o;
  if (typeof oid !== 'string' || !isFileOid(oid)) fail(what, 'bad oid');
  if (expectOid !== undefined && oid !== expectOid) fail(what, `describes ${oid}, expected ${expectOid}`);
  if (typeof tree !== 'string') fail(what, 'tree must be the canonical tree text');
  const packs = packsOf(o, what);
  if (!Array.isArray(o.entries)) fail(what, 'entries must be a list');
  for (const e of o.entries as unknown[]) {
    if (e === null) continue;
    if (!Array.isArray(e) || e.length !== 2 || !isCount(e[0]) || e[0] >= packs.length || !isCount(e[1])) fail(what, 'each entry must be [pack index, offset] or null');
  }
  return { format: 'cpv-tree-index', version: 1, oid, tree, packs, entries: o.entries as RemoteTreeIndex['entries'] };
}

/** Serialize any manifest or tree index (compact JSON, stable key order as constructed). */
export function serializeObject(o: LocalManifest | RemoteManifest | ManifestRoot | ManifestPage | RemoteTreeIndex): string {
  return JSON.stringify(o) + '\n';
}
