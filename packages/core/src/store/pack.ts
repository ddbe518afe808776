import { FormatError } from '../errors.js';
import type { Hasher } from '../hash/blake3.js';
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
  /** A view of the builder's buffer: valid until that buffer is reused. */
  bytes: Uint8Array;
  entries: PackEntry[];
  /** BLAKE3 hex of `bytes`, when the builder was given a hasher. */
  oid?: string;
}

/** Options of a PackBuilder. */
export interface PackBuilderOptions {
  /** A buffer to build the pack in (reused from an earlier pack); grown if too small. */
  buffer?: Buffer;
  /** Bytes to allocate when no buffer is given (grown as needed). */
  capacity?: number;
  /** A fresh hasher: fed the pack as it is built, so sealing yields the pack oid without another pass. */
  hasher?: Hasher;
}

/**
 * Accumulates chunks into one pack (docs/format.md, "Pack") in one buffer, so sealing
 * copies nothing. Not thread-safe; one builder per pack. A chunk added twice is
 * stored once.
 */
export class PackBuilder {
  private buf: Buffer;
  private offset = MAGIC.length;
  private readonly index = new Map<string, PackEntry>();
  private readonly hasher: Hasher | undefined;
  private sealed = false;

  constructor(opts: PackBuilderOptions = {}) {
    this.buf = opts.buffer ?? Buffer.allocUnsafe(Math.max(opts.capacity ?? 64 * 1024, MAGIC.length));
    MAGIC.copy(this.buf, 0);
    this.hasher = opts.hasher;
    this.hasher?.update(MAGIC);
  }

  /** Bytes of chunk data added so far (plus the header). */
  get size(): number {
    return this.offset;
  }

  get count(): number {
    return this.index.size;
  }

  /** The buffer the pack is built in (to reuse for a later pack once this one is uploaded). */
  get buffer(): Buffer {
    return this.buf;
  }

  /** Add a chunk (its bytes are copied); returns its entry. */
  add(oid: string, bytes: Uint8Array): PackEntry {
    const had = this.index.get(oid);
    if (had) return had;
    this.reserve(bytes.length).set(bytes);
    return this.commit([{ oid, length: bytes.length }])[0]!;
  }

  /**
   * Room for `length` more bytes right after the chunks added so far, to read chunk
   * bytes straight into; `commit` then records them. Valid until the next call.
   */
  reserve(length: number): Buffer {
    this.ensure(this.offset + length);
    return this.buf.subarray(this.offset, this.offset + length);
  }

  /**
   * Record chunks whose bytes the caller has placed, in order, at the start of the
   * last `reserve`d room. A chunk already in the pack keeps its first entry (its
   * second copy stays in the pack as unreferenced bytes).
   */
  commit(chunks: ReadonlyArray<{ oid: string; length: number }>): PackEntry[] {
    if (this.sealed) throw new Error('PackBuilder used after seal()');
    const start = this.offset;
    const out: PackEntry[] = [];
    for (const c of chunks) {
      const entry = this.index.get(c.oid) ?? { oid: c.oid, offset: this.offset, length: c.length };
      if (entry.offset === this.offset) this.index.set(c.oid, entry);
      this.offset += c.length;
      out.push(entry);
    }
    if (this.offset > this.buf.length) throw new Error('PackBuilder.commit past the reserved room');
    this.hasher?.update(this.buf.subarray(start, this.offset));
    return out;
  }

  /** Produce the pack bytes (chunks, index, trailer). The builder is spent afterwards. */
  seal(): SealedPack {
    const entries = [...this.index.values()];
    const json = Buffer.from(JSON.stringify({ version: 1, chunks: entries.map((e) => [e.oid, e.offset, e.length]) }), 'utf8');
    const start = this.offset;
    this.ensure(start + json.length + 4 + END.length);
    json.copy(this.buf, start);
    this.buf.writeUInt32LE(json.length, start + json.length);
    END.copy(this.buf, start + json.length + 4);
    const bytes = this.buf.subarray(0, start + json.length + 4 + END.length);
    this.sealed = true;
    if (!this.hasher) return { bytes, entries };
    this.hasher.update(bytes.subarray(start));
    return { bytes, entries, oid: this.hasher.digestHex() };
  }

  private ensure(size: number): void {
    if (size <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(size, Math.ceil(this.buf.length * 1.5)));
    this.buf.copy(grown, 0, 0, this.offset);
    this.buf = grown;
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
