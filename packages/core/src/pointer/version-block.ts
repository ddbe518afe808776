import { LineCounter, parseDocument, stringify, isMap, isScalar, isSeq, visit, type Node, type Pair, type YAMLMap } from 'yaml';
import { FormatError, UsageError } from '../errors.js';
import { relPathProblem } from '../store/tree.js';
import { isFileOid } from '../util/oid.js';
import { ARTIFACT_KINDS, isValidMetaKey, POINTER_SUFFIX, type ArtifactKind, type MetaValue } from './pointer.js';

/** The line that opens the block in a version tag's message (docs/format.md, "Version tag"). */
export const VERSION_BEGIN = '-----BEGIN CPV VERSION-----';
/** The line that closes it. */
export const VERSION_END = '-----END CPV VERSION-----';
/** The block format version this build writes and the only one it reads. */
export const VERSION_BLOCK_VERSION = 1;
/** Blocks larger than this are rejected before parsing. */
export const MAX_VERSION_BLOCK_BYTES = 4 * 1024 * 1024;

/** One model or dataset a version binds: a copy of its pointer at the tagged commit. */
export interface VersionArtifact {
  /** The pointer's name, or its path when it has none. */
  name: string;
  kind: ArtifactKind;
  /** Tracked path relative to the cpv repository root, `/`-separated. */
  path: string;
  type: 'file' | 'dir';
  oid: string;
  size: number;
  /** Directories only: number of files. */
  files?: number;
}

/** The parsed block of a version tag. */
export interface VersionBlock {
  version: number;
  artifacts: VersionArtifact[];
  meta?: Record<string, MetaValue>;
}

/** A version tag's message split into the user's text and the block. */
export interface VersionMessage {
  /** The user's message, without the trailing blank lines before the block. */
  message: string;
  block: VersionBlock;
}

const TOP_KEYS = ['version', 'artifacts', 'meta'] as const;
const ARTIFACT_KEYS = ['name', 'kind', 'path', 'type', 'oid', 'size', 'files'] as const;
// What git may append after the message of a signed tag.
const SIGNATURE = /^-----BEGIN (PGP SIGNATURE|PGP MESSAGE|SSH SIGNATURE|SIGNED MESSAGE)-----$/;

/** Whether a tag message carries a version block (or a broken attempt at one). */
export function hasVersionBlock(text: string): boolean {
  return text.split('\n').some((l) => l === VERSION_BEGIN || l === VERSION_END);
}

/**
 * Split a tag message into the user's message and the parsed version block. Pure.
 * Returns undefined when the message has no block (an ordinary tag). Throws
 * FormatError naming `tagName` (and the line of the message, where known) for a
 * malformed block: duplicate or misplaced markers, invalid YAML, unknown keys, an
 * unknown version, bad oids, sizes, kinds or paths (absolute, `..`, repeated, nested).
 */
export function parseVersionBlock(text: string, tagName: string): VersionMessage | undefined {
  const fail = (reason: string, line?: number): never => {
    throw new FormatError(`version tag ${JSON.stringify(tagName)}${line === undefined ? '' : `, line ${line}`}: ${reason}`, {
      hint: 'the tag was written by a newer cpv (upgrade cpv) or edited by hand; recreate it with `cpv tag create`',
      data: { tag: tagName, ...(line === undefined ? {} : { line }) },
    });
  };
  const lines = text.split('\n');
  const begins = lines.flatMap((l, i) => (l === VERSION_BEGIN ? [i] : []));
  const ends = lines.flatMap((l, i) => (l === VERSION_END ? [i] : []));
  if (begins.length === 0 && ends.length === 0) return undefined;
  if (begins.length !== 1) fail(begins.length === 0 ? `"${VERSION_END}" without "${VERSION_BEGIN}"` : `more than one "${VERSION_BEGIN}" line`, begins[1] !== undefined ? begins[1] + 1 : undefined);
  if (ends.length !== 1) fail(ends.length === 0 ? `"${VERSION_BEGIN}" without "${VERSION_END}"` : `more than one "${VERSION_END}" line`, ends[1] !== undefined ? ends[1] + 1 : undefined);
  const begin = begins[0]!;
  const end = ends[0]!;
  if (end < begin) fail(`"${VERSION_END}" comes before "${VERSION_BEGIN}"`, end + 1);
  for (let i = end + 1; i < lines.length; i++) {
    if (SIGNATURE.test(lines[i]!)) break;
    if (lines[i]!.trim() !== '') fail(`unexpected text after "${VERSION_END}": ${JSON.stringify(lines[i]!.slice(0, 80))}`, i + 1);
  }
  const yamlText = lines.slice(begin + 1, end).join('\n') + '\n';
  if (Buffer.byteLength(yamlText, 'utf8') > MAX_VERSION_BLOCK_BYTES) fail(`the block is larger than ${MAX_VERSION_BLOCK_BYTES} bytes`);
  const message = lines
    .slice(0, begin)
    .join('\n')
    .replace(/\s+$/, '');
  return { message, block: parseBlockYaml(yamlText, begin + 1, fail) };
}

function parseBlockYaml(yamlText: string, lineOffset: number, fail: (reason: string, line?: number) => never): VersionBlock {
  const lineCounter = new LineCounter();
  const doc = parseDocument(yamlText, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true, schema: 'core' });
  const lineAt = (offset: number | undefined): number | undefined => (offset === undefined ? undefined : lineCounter.linePos(offset).line + lineOffset);
  const lineOf = (node: unknown): number | undefined => lineAt((node as { range?: [number, number, number] } | null)?.range?.[0]);
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    fail(`invalid YAML: ${err.message.split('\n')[0]}`, err.pos ? lineAt(err.pos[0]) : undefined);
  }
  let aliasAt: number | undefined;
  visit(doc, {
    Alias(_, node) {
      aliasAt = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  if (aliasAt !== undefined) fail('YAML aliases (*name) are not allowed in a version block', lineAt(aliasAt));
  if (!isMap(doc.contents)) fail('expected a YAML mapping with keys version, artifacts and optionally meta', lineOffset + 1);
  const top = fields(doc.contents as YAMLMap, TOP_KEYS, 'the block', lineOf, fail);

  const version = top.get('version');
  if (!version) fail('missing required key "version"');
  const v = count(version!.value);
  if (v !== VERSION_BLOCK_VERSION) {
    fail(`unsupported version ${JSON.stringify(scalar(version!.value) ?? null)} (this cpv reads version ${VERSION_BLOCK_VERSION}; upgrade cpv if the tag is newer)`, version!.line);
  }

  const list = top.get('artifacts');
  if (!list) fail('missing required key "artifacts"');
  if (!isSeq(list!.value) || list!.value.items.length === 0) fail('artifacts must be a non-empty list', list!.line);
  const artifacts: VersionArtifact[] = [];
  (list!.value as { items: unknown[] }).items.forEach((item, i) => {
    const where = `artifacts[${i}]`;
    if (!isMap(item)) fail(`${where} must be a mapping with keys ${ARTIFACT_KEYS.join(', ')}`, lineOf(item));
    const f = fields(item as YAMLMap, ARTIFACT_KEYS, where, lineOf, fail);
    const need = (key: string): { value: Node | null; line: number | undefined } => {
      const got = f.get(key);
      if (!got) fail(`${where}: missing required key "${key}"`, lineOf(item));
      return got!;
    };
    const str = (key: string): { value: string; line: number | undefined } => {
      const got = need(key);
      const s = scalar(got.value);
      if (typeof s !== 'string' || s === '') fail(`${where}.${key} must be a non-empty string, got ${JSON.stringify(s ?? null)}`, got.line);
      return { value: s as string, line: got.line };
    };
    const name = str('name');
    if (/[\u0000-\u001f\u007f]/.test(name.value) || name.value.length > 4096) fail(`${where}.name must be printable text of at most 4096 characters`, name.line);
    const kind = str('kind');
    if (!ARTIFACT_KINDS.includes(kind.value as ArtifactKind)) fail(`${where}.kind must be one of ${ARTIFACT_KINDS.join(', ')}, got ${JSON.stringify(kind.value)}`, kind.line);
    const path = str('path');
    const problem = relPathProblem(path.value);
    if (problem) fail(`${where}.path ${JSON.stringify(path.value)} must be a relative path without "..": ${problem}`, path.line);
    if (path.value.endsWith(POINTER_SUFFIX)) fail(`${where}.path ${JSON.stringify(path.value)} names a pointer file; it must be the tracked path`, path.line);
    const first = path.value.split('/')[0];
    if (first === '.git' || first === '.cpv') fail(`${where}.path ${JSON.stringify(path.value)} lies inside ${first}/`, path.line);
    const type = str('type');
    if (type.value !== 'file' && type.value !== 'dir') fail(`${where}.type must be "file" or "dir", got ${JSON.stringify(type.value)}`, type.line);
    const oid = str('oid');
    if (!isFileOid(oid.value)) fail(`${where}.oid must be "b3:" followed by 64 lowercase hex digits, got ${JSON.stringify(oid.value)}`, oid.line);
    const sizeField = need('size');
    const size = count(sizeField.value);
    if (size === undefined) fail(`${where}.size must be a non-negative integer, got ${JSON.stringify(sourceOf(sizeField.value))}`, sizeField.line);
    const a: VersionArtifact = { name: name.value, kind: kind.value as ArtifactKind, path: path.value, type: type.value as 'file' | 'dir', oid: oid.value, size: size! };
    const filesField = f.get('files');
    if (filesField) {
      if (a.type !== 'dir') fail(`${where}: "files" is only allowed on a directory (type: dir)`, filesField.line);
      const files = count(filesField.value);
      if (files === undefined) fail(`${where}.files must be a non-negative integer, got ${JSON.stringify(sourceOf(filesField.value))}`, filesField.line);
      a.files = files;
    } else if (a.type === 'dir') {
      fail(`${where}: missing required key "files" for a directory`, lineOf(item));
    }
    artifacts.push(a);
  });
  const paths = new Set<string>();
  for (const a of artifacts) {
    if (paths.has(a.path)) fail(`path ${JSON.stringify(a.path)} is listed twice`);
    paths.add(a.path);
  }
  for (const a of artifacts) {
    const parts = a.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const outer = parts.slice(0, i).join('/');
      if (paths.has(outer)) fail(`path ${JSON.stringify(a.path)} lies inside ${JSON.stringify(outer)}, which is also listed`);
    }
  }

  const block: VersionBlock = { version: VERSION_BLOCK_VERSION, artifacts };
  const meta = top.get('meta');
  if (meta) {
    if (!isMap(meta.value)) fail('meta must be a mapping of keys to strings, numbers or booleans', meta.line);
    const out: Record<string, MetaValue> = {};
    for (const pair of (meta.value as YAMLMap).items) {
      const k = scalar(pair.key as Node);
      if (typeof k !== 'string' || !isValidMetaKey(k)) fail(`meta key ${JSON.stringify(k ?? null)} must start with a letter or "_" and use letters, digits, "_", "." or "-"`, lineOf(pair.key));
      const val = scalar(pair.value as Node);
      if (typeof val !== 'string' && typeof val !== 'boolean' && !(typeof val === 'number' && Number.isFinite(val))) {
        fail(`meta.${k as string} must be a string, number or boolean`, lineOf(pair.key));
      }
      out[k as string] = val as MetaValue;
    }
    block.meta = out;
  }
  return block;
}

/** The pairs of a mapping by key; rejects unknown and non-string keys. */
function fields(
  map: YAMLMap,
  known: readonly string[],
  where: string,
  lineOf: (node: unknown) => number | undefined,
  fail: (reason: string, line?: number) => never,
): Map<string, { value: Node | null; line: number | undefined }> {
  const out = new Map<string, { value: Node | null; line: number | undefined }>();
  for (const pair of map.items as Pair[]) {
    const key = isScalar(pair.key) ? pair.key.value : undefined;
    if (typeof key !== 'string') fail(`${where}: keys must be plain strings`, lineOf(pair.key));
    if (!known.includes(key as string)) fail(`${where}: unknown key ${JSON.stringify(key)} (expected one of ${known.join(', ')})`, lineOf(pair.key));
    out.set(key as string, { value: (pair.value ?? null) as Node | null, line: lineOf(pair.key) });
  }
  return out;
}

function scalar(node: Node | null | undefined): unknown {
  return isScalar(node) ? node.value : undefined;
}

function sourceOf(node: Node | null): unknown {
  return isScalar(node) ? (node.source ?? node.value) : null;
}

/** A count written as a plain decimal integer (`0x10`, `1e3` or `+5` are not what cpv writes). */
function count(node: Node | null): number | undefined {
  if (!isScalar(node) || typeof node.value !== 'number') return undefined;
  if (!/^(0|[1-9][0-9]*)$/.test(String(node.source ?? ''))) return undefined;
  return Number.isSafeInteger(node.value) && node.value >= 0 ? node.value : undefined;
}

/**
 * The full message of a version tag: `message`, a blank line, then the block with
 * keys in the documented order, artifacts sorted by path and meta keys sorted.
 * Inverse of parseVersionBlock. Throws UsageError when `message` is empty or itself
 * contains a marker line.
 */
export function formatVersionMessage(message: string, block: VersionBlock): string {
  const text = message.replace(/\s+$/, '');
  if (text.trim() === '') throw new UsageError('a version tag needs a message', { hint: 'pass -m "what this version is"' });
  if (hasVersionBlock(text)) throw new UsageError(`the message must not contain a "${VERSION_BEGIN}" or "${VERSION_END}" line`);
  const artifacts = [...block.artifacts]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((a) => {
      const o: Record<string, unknown> = {};
      for (const k of ARTIFACT_KEYS) if (a[k] !== undefined) o[k] = a[k];
      return o;
    });
  const out: Record<string, unknown> = { version: block.version, artifacts };
  if (block.meta && Object.keys(block.meta).length > 0) {
    out.meta = Object.fromEntries(Object.entries(block.meta).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
  return `${text}\n\n${VERSION_BEGIN}\n${stringify(out, { lineWidth: 0 })}${VERSION_END}\n`;
}
