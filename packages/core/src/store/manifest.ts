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

/** Where every chunk of a file lives on one remote (docs/format.md, "Remote manifest"). */
export interface RemoteManifest {
  format: 'cpv-manifest';
  version: 1;
  oid: string;
  size: number;
  chunker: ChunkerParams;
  packs: string[];
  chunks: RemoteChunk[];
}

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

function header(o: Record<string, unknown>, what: string, format: string): void {
  if (o.format !== format) fail(what, `expected format "${format}", got ${JSON.stringify(o.format)}`);
  if (o.version !== 1) fail(what, `unsupported ${format} version ${JSON.stringify(o.version)}`);
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
  const { oid, size, chunker, chunks } = manifestHead(text, what, expectOid);
  let total = 0;
  for (const c of chunks) {
    if (!Array.isArray(c) || c.length !== 2 || typeof c[0] !== 'string' || !isHexOid(c[0]) || !isCount(c[1]) || c[1] === 0) fail(what, 'each chunk must be ["<oid>", length > 0]');
    total += c[1];
  }
  if (total !== size) fail(what, `chunk lengths sum to ${total}, not the size ${size}`);
  return { format: 'cpv-manifest', version: 1, oid, size, chunker, chunks: chunks as ChunkRef[] };
}

/** The fields both manifest kinds share, validated. */
function manifestHead(text: string, what: string, expectOid: string | undefined): { o: Record<string, unknown>; oid: string; size: number; chunker: ChunkerParams; chunks: unknown[] } {
  const o = parseJson(text, what);
  header(o, what, 'cpv-manifest');
  const { oid, size } = o;
  if (typeof oid !== 'string' || !isFileOid(oid)) fail(what, 'bad oid');
  if (expectOid !== undefined && oid !== expectOid) fail(what, `describes ${oid}, expected ${expectOid}`);
  if (!isCount(size)) fail(what, 'bad size');
  const chunker = chunkerOf(o, what);
  if (!Array.isArray(o.chunks)) fail(what, 'chunks must be a list');
  const first = o.chunks[0] as unknown;
  // A one-chunk file's chunk is the whole file: its chunk oid must be the file oid.
  if (o.chunks.length === 1 && (!Array.isArray(first) || first[0] !== oid.slice(3))) fail(what, 'a single chunk must have the oid of the file');
  return { o, oid, size, chunker, chunks: o.chunks as unknown[] };
}

/**
 * Parse and validate a remote manifest (also checks pack indexes and that chunk
 * lengths sum to `size`). Chunk bytes are verified later, when they are read.
 */
export function parseRemoteManifest(text: string, what: string, expectOid?: string): RemoteManifest {
  const { o, oid, size, chunker, chunks } = manifestHead(text, what, expectOid);
  const packs = packsOf(o, what);
  let total = 0;
  for (const c of chunks) {
    if (
      !Array.isArray(c) || c.length !== 4 || typeof c[0] !== 'string' || !isHexOid(c[0]) ||
      !isCount(c[1]) || c[1] === 0 || !isCount(c[2]) || c[2] >= packs.length || !isCount(c[3])
    ) fail(what, 'each chunk must be ["<oid>", length > 0, pack index, offset]');
    total += c[1];
  }
  if (total !== size) fail(what, `chunk lengths sum to ${total}, not the size ${size}`);
  return { format: 'cpv-manifest', version: 1, oid, size, chunker, packs, chunks: chunks as RemoteChunk[] };
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
export function serializeObject(o: LocalManifest | RemoteManifest | RemoteTreeIndex): string {
  return JSON.stringify(o) + '\n';
}
