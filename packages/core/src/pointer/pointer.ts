import { LineCounter, parseDocument, stringify, isMap, isScalar, visit, type Pair } from 'yaml';
import { PointerParseError } from '../errors.js';
import { isFileOid } from '../util/oid.js';

/** The suffix of a pointer file. `model.safetensors` is tracked by `model.safetensors.cpv`. */
export const POINTER_SUFFIX = '.cpv';
/** The pointer format version this build writes and the only one it reads. */
export const POINTER_VERSION = 1;
/** Pointers larger than this are rejected before parsing (they are a few hundred bytes). */
export const MAX_POINTER_BYTES = 64 * 1024;

export type ArtifactKind = 'model' | 'data' | 'other';
export const ARTIFACT_KINDS: readonly ArtifactKind[] = ['model', 'data', 'other'];

/** User metadata values: scalars only, so pointers stay diffable and mergeable. */
export type MetaValue = string | number | boolean;

/** A parsed pointer file. */
export interface Pointer {
  version: number;
  kind: ArtifactKind;
  /** Artifact name; absent means "the path". */
  name?: string;
  /** Tracked path, relative to the pointer's directory; always the pointer's own name minus `.cpv`. */
  path: string;
  type: 'file' | 'dir';
  /** File oid, or tree oid for a directory (`b3:` + 64 hex). */
  oid: string;
  size: number;
  /** Number of files, directories only. */
  files?: number;
  meta?: Record<string, MetaValue>;
  /** Experiment parameters this version was made with (flat: nested keys joined by "."). */
  params?: Record<string, MetaValue>;
  /** Experiment metrics this version scored (flat, like params). */
  metrics?: Record<string, MetaValue>;
}

const KEY_ORDER = ['version', 'kind', 'name', 'path', 'type', 'oid', 'size', 'files', 'meta', 'params', 'metrics'] as const;
/** The pointer sections holding flat key → scalar maps. */
export const VALUE_SECTIONS = ['meta', 'params', 'metrics'] as const;
export type ValueSection = (typeof VALUE_SECTIONS)[number];
const KNOWN_KEYS = new Set<string>(KEY_ORDER);

/** The tracked path's base name for a pointer file name, or undefined if it is not one. */
export function trackedNameOf(pointerFileName: string): string | undefined {
  if (!pointerFileName.endsWith(POINTER_SUFFIX) || pointerFileName.length <= POINTER_SUFFIX.length) return undefined;
  return pointerFileName.slice(0, -POINTER_SUFFIX.length);
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The text of a pointer file's bytes. Throws PointerParseError naming `file` and the
 * line when they are not valid UTF-8: a pointer is YAML text, and replacing bad bytes
 * would silently change the metadata it carries.
 */
export function decodePointer(bytes: Uint8Array, file: string): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    // Newlines never occur inside a multi-byte sequence: the first bad line is the culprit.
    let line = 1;
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i < bytes.length && bytes[i] !== 0x0a) continue;
      try {
        STRICT_UTF8.decode(bytes.subarray(start, i));
      } catch {
        break;
      }
      line++;
      start = i + 1;
    }
    throw new PointerParseError(file, 'not valid UTF-8 text', line);
  }
}

/**
 * Parse pointer text. Pure: `file` names the pointer in messages; `pointerName` (default:
 * the last component of `file`) is the pointer's own file name, which `path` must match.
 * Throws PointerParseError naming the file and, where known, the line, for malformed
 * YAML, unknown keys or versions, bad oids, sizes or kinds, and any `path` other than
 * the pointer's own base name minus `.cpv` (which rules out traversal and absolute paths).
 */
export function parsePointer(text: string, file: string, pointerName: string = baseName(file)): Pointer {
  if (Buffer.byteLength(text, 'utf8') > MAX_POINTER_BYTES) {
    throw new PointerParseError(file, `pointer is larger than ${MAX_POINTER_BYTES} bytes; a pointer is a small YAML file, this is not one`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true, schema: 'core' });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const line = err.pos ? lineCounter.linePos(err.pos[0]).line : undefined;
    throw new PointerParseError(file, `invalid YAML: ${err.message.split('\n')[0]}`, line, { cause: err });
  }
  const contents = doc.contents;
  if (!isMap(contents)) {
    throw new PointerParseError(file, 'expected a YAML mapping with keys version, kind, path, type, oid, size', 1);
  }
  const lineOf = (pair: Pair): number | undefined => {
    const node = pair.key as { range?: [number, number, number] } | null;
    return node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
  };
  // Aliases are never needed in a pointer and would let a tiny file expand hugely.
  let aliasAt: number | undefined;
  visit(doc, {
    Alias(_, node) {
      aliasAt = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  if (aliasAt !== undefined) throw new PointerParseError(file, 'YAML aliases (*name) are not allowed in a pointer', lineCounter.linePos(aliasAt).line);
  // Keys first: converting a mapping with a collection as a key would warn on stderr.
  for (const pair of contents.items) {
    if (!isScalar(pair.key) || typeof pair.key.value !== 'string') throw new PointerParseError(file, 'keys must be plain strings', lineOf(pair));
  }
  const js = doc.toJS({ maxAliasCount: 0 }) as Record<string, unknown>;
  const values = new Map<string, { value: unknown; line: number | undefined }>();
  for (const pair of contents.items) {
    const key = (pair.key as { value: string }).value;
    if (!KNOWN_KEYS.has(key)) {
      throw new PointerParseError(file, `unknown key "${key}" (expected one of ${KEY_ORDER.join(', ')})`, lineOf(pair));
    }
    let value = js[key];
    // Counts must be written as plain decimal integers: `0x10`, `1e3` or `+5` parse as
    // numbers in YAML but are not what cpv writes, so a pointer using them was edited
    // by hand or by something else; reject rather than guess.
    // A number beyond 2^53 is rounded by the parser: report what the file says.
    if (typeof value === 'number' && isScalar(pair.value) && (!/^(0|[1-9][0-9]*)$/.test(String(pair.value.source ?? '')) || !Number.isSafeInteger(value))) {
      value = String(pair.value.source ?? value);
    }
    values.set(key, { value, line: lineOf(pair) });
  }
  const need = (key: string): { value: unknown; line: number | undefined } => {
    const v = values.get(key);
    if (v === undefined) throw new PointerParseError(file, `missing required key "${key}"`);
    return v;
  };

  const version = need('version');
  if (version.value !== POINTER_VERSION) {
    throw new PointerParseError(file, `unsupported pointer version ${JSON.stringify(version.value)} (this cpv reads version ${POINTER_VERSION}; upgrade cpv if the pointer is newer)`, version.line);
  }
  const kind = need('kind');
  if (typeof kind.value !== 'string' || !ARTIFACT_KINDS.includes(kind.value as ArtifactKind)) {
    throw new PointerParseError(file, `kind must be one of ${ARTIFACT_KINDS.join(', ')}, got ${JSON.stringify(kind.value)}`, kind.line);
  }
  const path = need('path');
  const expected = trackedNameOf(pointerName);
  if (typeof path.value !== 'string' || path.value.length === 0) {
    throw new PointerParseError(file, 'path must be a non-empty string', path.line);
  }
  if (path.value.includes('/') || path.value.includes('\\') || path.value === '.' || path.value === '..' || path.value.includes('\0')) {
    throw new PointerParseError(file, `path ${JSON.stringify(path.value)} must be a plain file name next to the pointer (no directories, no "..", not absolute)`, path.line);
  }
  if (expected !== undefined && path.value !== expected) {
    throw new PointerParseError(file, `path ${JSON.stringify(path.value)} does not match the pointer's own name; expected ${JSON.stringify(expected)}`, path.line);
  }
  const type = need('type');
  if (type.value !== 'file' && type.value !== 'dir') {
    throw new PointerParseError(file, `type must be "file" or "dir", got ${JSON.stringify(type.value)}`, type.line);
  }
  const oid = need('oid');
  if (typeof oid.value !== 'string' || !isFileOid(oid.value)) {
    throw new PointerParseError(file, `oid must be "b3:" followed by 64 lowercase hex digits, got ${JSON.stringify(oid.value)}`, oid.line);
  }
  const size = need('size');
  if (!isSafeCount(size.value)) {
    throw new PointerParseError(file, `size must be a non-negative integer, got ${JSON.stringify(size.value)}`, size.line);
  }
  const pointer: Pointer = { version: POINTER_VERSION, kind: kind.value as ArtifactKind, path: path.value, type: type.value, oid: oid.value, size: size.value };

  const name = values.get('name');
  if (name !== undefined) {
    if (typeof name.value !== 'string' || !isValidArtifactName(name.value)) {
      throw new PointerParseError(file, `name must be letters, digits, ".", "_", "-", optionally "team/name", got ${JSON.stringify(name.value)}`, name.line);
    }
    pointer.name = name.value;
  }
  const files = values.get('files');
  if (files !== undefined) {
    if (pointer.type !== 'dir') throw new PointerParseError(file, '"files" is only allowed on a directory pointer (type: dir)', files.line);
    if (!isSafeCount(files.value)) throw new PointerParseError(file, `files must be a non-negative integer, got ${JSON.stringify(files.value)}`, files.line);
    pointer.files = files.value;
  } else if (pointer.type === 'dir') {
    throw new PointerParseError(file, 'missing required key "files" for a directory pointer');
  }
  for (const section of VALUE_SECTIONS) {
    const v = values.get(section);
    if (v !== undefined) pointer[section] = parseMeta(section, v.value, file, v.line);
  }
  return pointer;
}

/** Serialize a pointer with a stable key order. Inverse of parsePointer. */
export function serializePointer(p: Pointer): string {
  const out: Record<string, unknown> = {};
  for (const key of KEY_ORDER) {
    const v = p[key];
    if (v !== undefined) out[key] = (VALUE_SECTIONS as readonly string[]).includes(key) ? sortedObject(v as Record<string, MetaValue>) : v;
  }
  for (const section of VALUE_SECTIONS) if (p[section] !== undefined && Object.keys(p[section]).length === 0) delete out[section];
  return stringify(out, { lineWidth: 0 });
}

/** Names: `name` or `team/name`, each part [A-Za-z0-9._-]+ not starting with "." */
export function isValidArtifactName(name: string): boolean {
  return /^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*\/)?[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name) && name.length <= 200;
}

const META_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Whether `key` may be a metadata key in a pointer. */
export function isValidMetaKey(key: string): boolean {
  return META_KEY.test(key) && key.length <= 200;
}

function parseMeta(section: ValueSection, value: unknown, file: string, line: number | undefined): Record<string, MetaValue> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new PointerParseError(file, `${section} must be a mapping of keys to strings, numbers or booleans`, line);
  }
  const out: Record<string, MetaValue> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!META_KEY.test(k) || k.length > 200) throw new PointerParseError(file, `${section} key ${JSON.stringify(k)} must match ${META_KEY.source}`, line);
    if (typeof v !== 'string' && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v))) {
      throw new PointerParseError(file, `${section}.${k} must be a string, number or boolean`, line);
    }
    out[k] = v;
  }
  return out;
}

function isSafeCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function sortedObject<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function baseName(file: string): string {
  const i = Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\'));
  return i < 0 ? file : file.slice(i + 1);
}
