import { FormatError } from '../errors.js';
import { isHexOid } from '../util/oid.js';

const MAGIC = Buffer.from('CPVPACK1', 'latin1');
const END = Buffer.from('CPVPEND1', 'latin1');
/** Bytes before the first chunk. */
export const PACK_HEADER_BYTES = MAGIC.length;

/** Location of a chunk inside a pack. */
export interface PackEntry {
  oid: string;
  offset: number;
  length: number;
}

/** A finished pack, ready to upload: its bytes, its oid and where each chunk is. */
export interface SealedPack {
  bytes: Uint8Array;
  entries: PackEntry[];
}

/**
 * Accumulates chunks into one pack (docs/format.md, "Pack"). Not thread-safe; one
 * builder per pack. A chunk added twice is stored once.
 */
export class PackBuilder {
  private parts: Uint8Array[] = [MAGIC];
  private offset = MAGIC.length;
  private readonly index = new Map<string, PackEntry>();

  /** Bytes of chunk data added so far (plus the header). */
  get size(): number {
    return this.offset;
  }

  get count(): number {
    return this.index.size;
  }

  /** Add a chunk; returns its entry. The bytes are referenced, not copied: don't reuse them. */
  add(oid: string, bytes: Uint8Array): PackEntry {
    const had = this.index.get(oid);
    if (had) return had;
    const entry = { oid, offset: this.offset, length: bytes.length };
    this.parts.push(bytes);
    this.offset += bytes.length;
    this.index.set(oid, entry);
    return entry;
  }

  /** Produce the pack bytes (chunks, index, trailer). The builder is spent afterwards. */
  seal(): SealedPack {
    const entries = [...this.index.values()];
    const json = Buffer.from(JSON.stringify({ version: 1, chunks: entries.map((e) => [e.oid, e.offset, e.length]) }), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(json.length);
    const bytes = Buffer.concat([...this.parts, json, len, END]);
    this.parts = [];
    return { bytes, entries };
  }
}

/**
 * Read the self-describing index of a whole pack. Throws FormatError when the magic
 * numbers, index length or any entry is out of place. Chunk bytes are not verified here.
 */
export function readPackIndex(pack: Uint8Array, what: string): PackEntry[] {
  const b = Buffer.from(pack.buffer, pack.byteOffset, pack.byteLength);
  if (b.length < MAGIC.length + 12 || !b.subarray(0, 8).equals(MAGIC) || !b.subarray(b.length - 8).equals(END)) {
    throw new FormatError(`${what}: not a cpv pack (bad magic)`);
  }
  const len = b.readUInt32LE(b.length - 12);
  const start = b.length - 12 - len;
  if (start < MAGIC.length) throw new FormatError(`${what}: pack index length out of range`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(b.subarray(start, b.length - 12).toString('utf8'));
  } catch {
    throw new FormatError(`${what}: pack index is not valid JSON`);
  }
  const o = parsed as { version?: unknown; chunks?: unknown };
  if (o?.version !== 1 || !Array.isArray(o.chunks)) throw new FormatError(`${what}: unsupported pack index`);
  return o.chunks.map((c: unknown) => {
    if (!Array.isArray(c) || typeof c[0] !== 'string' || !isHexOid(c[0]) || !Number.isSafeInteger(c[1]) || !Number.isSafeInteger(c[2]) || c[1] < MAGIC.length || c[2] <= 0 || c[1] + c[2] > start) {
      throw new FormatError(`${what}: bad pack index entry`);
    }
    return { oid: c[0], offset: c[1], length: c[2] };
  });
}
