import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { blake3Hex, loadHasher } from '../hash/blake3.js';
import { seededBytes } from '../testing/seeded.js';
import { PACK_HEADER_BYTES, PackBuilder, readPackIndex } from './pack.js';

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

async function chunk(seed: number, n: number): Promise<{ oid: string; bytes: Uint8Array }> {
  const bytes = seededBytes(seed, n);
  return { oid: await blake3Hex(bytes), bytes };
}

/** A pack with an index `json` and correct magic numbers around it. */
function handMade(body: Uint8Array, json: string): Buffer {
  const idx = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(idx.length);
  return Buffer.concat([Buffer.from('CPVPACK1'), body, idx, len, Buffer.from('CPVPEND1')]);
}

describe('PackBuilder', () => {
  it('lays out magic, chunks, JSON index, index length and end magic', async () => {
    const a = { oid: 'a'.repeat(64), bytes: Uint8Array.of(1, 2, 3) };
    const b = { oid: 'b'.repeat(64), bytes: Uint8Array.of(4, 5) };
    const builder = new PackBuilder();
    expect(builder.size).toBe(PACK_HEADER_BYTES);
    expect(builder.add(a.oid, a.bytes)).toEqual({ oid: a.oid, offset: 8, length: 3 });
    expect(builder.add(b.oid, b.bytes)).toEqual({ oid: b.oid, offset: 11, length: 2 });
    expect(builder.size).toBe(13);
    const json = `{"version":1,"chunks":[["${a.oid}",8,3],["${b.oid}",11,2]]}`;
    const sealed = builder.seal();
    const expected = Buffer.concat([Buffer.from('CPVPACK1'), Buffer.from([1, 2, 3, 4, 5]), Buffer.from(json), Buffer.from([json.length, 0, 0, 0]), Buffer.from('CPVPEND1')]);
    expect(Buffer.from(sealed.bytes).equals(expected)).toBe(true);
    expect(sealed.entries).toEqual([
      { oid: a.oid, offset: 8, length: 3 },
      { oid: b.oid, offset: 11, length: 2 },
    ]);
  });

  it('round-trips through readPackIndex; every chunk is readable at its offset', async () => {
    const chunks = await Promise.all([1, 2, 3, 4, 5].map((s) => chunk(s, 1000 + s * 777)));
    const builder = new PackBuilder();
    for (const c of chunks) builder.add(c.oid, c.bytes);
    expect(builder.count).toBe(5);
    const { bytes, entries } = builder.seal();
    const index = readPackIndex(bytes, 'pack x');
    expect(index).toEqual(entries);
    expect(index.map((e) => e.oid)).toEqual(chunks.map((c) => c.oid));
    for (const e of index) {
      const got = bytes.subarray(e.offset, e.offset + e.length);
      expect(await blake3Hex(got)).toBe(e.oid);
    }
    expect(Buffer.from(bytes.subarray(0, 8)).toString('latin1')).toBe('CPVPACK1');
    expect(Buffer.from(bytes.subarray(bytes.length - 8)).toString('latin1')).toBe('CPVPEND1');
  });

  it('stores a chunk added twice once, returning the first entry', async () => {
    const c = await chunk(7, 5000);
    const d = await chunk(8, 100);
    const builder = new PackBuilder();
    const first = builder.add(c.oid, c.bytes);
    builder.add(d.oid, d.bytes);
    expect(builder.add(c.oid, c.bytes)).toBe(first);
    expect(builder.count).toBe(2);
    expect(builder.size).toBe(8 + 5000 + 100);
    const { bytes } = builder.seal();
    expect(readPackIndex(bytes, 'p')).toEqual([
      { oid: c.oid, offset: 8, length: 5000 },
      { oid: d.oid, offset: 5008, length: 100 },
    ]);
  });

  it('builds the same pack from chunks read into reserved room, in a reused buffer, and hashes it while building', async () => {
    const chunks = await Promise.all([1, 2, 3, 4].map((s) => chunk(s, 3000 + s * 1111)));
    const plain = new PackBuilder();
    for (const c of chunks) plain.add(c.oid, c.bytes);
    const want = Buffer.from(plain.seal().bytes);

    const reused = Buffer.alloc(64, 0xee); // too small on purpose: it grows
    const builder = new PackBuilder({ buffer: reused, hasher: (await loadHasher())() });
    // Two chunks read together into one reserved span, then the other two one by one.
    const room = builder.reserve(chunks[0]!.bytes.length + chunks[1]!.bytes.length);
    room.set(chunks[0]!.bytes, 0);
    room.set(chunks[1]!.bytes, chunks[0]!.bytes.length);
    builder.commit(chunks.slice(0, 2).map((c) => ({ oid: c.oid, length: c.bytes.length })));
    for (const c of chunks.slice(2)) {
      builder.reserve(c.bytes.length).set(c.bytes);
      builder.commit([{ oid: c.oid, length: c.bytes.length }]);
    }
    const sealed = builder.seal();
    expect(Buffer.from(sealed.bytes).equals(want)).toBe(true);
    expect(sealed.oid).toBe(await blake3Hex(want));
    expect(builder.buffer.length).toBeGreaterThanOrEqual(want.length);
    expect(() => builder.commit([])).toThrow();
  });

  it('seals an empty pack that reads back as no chunks', () => {
    expect(readPackIndex(new PackBuilder().seal().bytes, 'p')).toEqual([]);
  });
});

describe('readPackIndex rejects', () => {
  const sample = async (): Promise<Buffer> => {
    const builder = new PackBuilder();
    for (const s of [1, 2]) {
      const c = await chunk(s, 300);
      builder.add(c.oid, c.bytes);
    }
    return Buffer.from(builder.seal().bytes);
  };

  it('a pack truncated by one byte', async () => {
    const p = await sample();
    expect(formatError(() => readPackIndex(p.subarray(0, p.length - 1), 'pack 0123abcd')).message).toBe('pack 0123abcd: not a cpv pack (bad magic)');
  });

  it('a pack cut off before its index', async () => {
    const p = await sample();
    expect(formatError(() => readPackIndex(p.subarray(0, 500), 'pack x')).message).toContain('bad magic');
  });

  it('a pack with a garbled start magic', async () => {
    const p = await sample();
    p[0] = 0x58;
    expect(formatError(() => readPackIndex(p, 'pack x')).message).toContain('bad magic');
  });

  it('a pack with a garbled end magic', async () => {
    const p = await sample();
    p[p.length - 1] = p[p.length - 1]! ^ 1;
    expect(formatError(() => readPackIndex(p, 'pack x')).message).toContain('bad magic');
  });

  it('bytes too short to be a pack', () => {
    expect(formatError(() => readPackIndex(Buffer.from('CPVPACK1CPVPEND1'), 'pack x')).message).toContain('bad magic');
    expect(formatError(() => readPackIndex(new Uint8Array(0), 'pack x')).message).toContain('bad magic');
  });

  it('an index length that reaches into the header', async () => {
    const p = await sample();
    p.writeUInt32LE(p.length, p.length - 12);
    expect(formatError(() => readPackIndex(p, 'pack x')).message).toBe('pack x: pack index length out of range');
  });

  it('an index length that is off by one', async () => {
    const p = await sample();
    p.writeUInt32LE(p.readUInt32LE(p.length - 12) + 1, p.length - 12);
    expect(formatError(() => readPackIndex(p, 'pack x')).message).toBe('pack x: pack index is not valid JSON');
  });

  it('a garbled index', async () => {
    const p = await sample();
    const len = p.readUInt32LE(p.length - 12);
    p[p.length - 12 - len] = 0x5b; // '{' becomes '['
    expect(formatError(() => readPackIndex(p, 'pack x')).message).toContain('pack x: ');
  });

  it.each([
    ['version 2', '{"version":2,"chunks":[]}', 'unsupported pack index'],
    ['no chunk list', '{"version":1}', 'unsupported pack index'],
    ['a JSON null', 'null', 'unsupported pack index'],
    ['a chunk overlapping the index', `{"version":1,"chunks":[["${'a'.repeat(64)}",8,11]]}`, 'bad pack index entry'],
    ['a chunk inside the header', `{"version":1,"chunks":[["${'a'.repeat(64)}",7,3]]}`, 'bad pack index entry'],
    ['a zero-length chunk', `{"version":1,"chunks":[["${'a'.repeat(64)}",8,0]]}`, 'bad pack index entry'],
    ['a fractional offset', `{"version":1,"chunks":[["${'a'.repeat(64)}",8.5,1]]}`, 'bad pack index entry'],
    ['a bad chunk oid', `{"version":1,"chunks":[["${'A'.repeat(64)}",8,10]]}`, 'bad pack index entry'],
    ['a chunk that is not a list', '{"version":1,"chunks":[5]}', 'bad pack index entry'],
  ])('%s', (_, json, reason) => {
    const p = handMade(new Uint8Array(10), json);
    expect(formatError(() => readPackIndex(p, 'pack x')).message).toBe(`pack x: ${reason}`);
  });

  it('accepts a hand-made pack whose chunk ends right at the index', () => {
    const p = handMade(new Uint8Array(10), `{"version":1,"chunks":[["${'a'.repeat(64)}",8,10]]}`);
    expect(readPackIndex(p, 'pack x')).toEqual([{ oid: 'a'.repeat(64), offset: 8, length: 10 }]);
  });

  it('reads a pack that is a view into a larger buffer', async () => {
    const p = await sample();
    const big = new Uint8Array(p.length + 100);
    big.set(p, 50);
    expect(readPackIndex(big.subarray(50, 50 + p.length), 'p')).toEqual(readPackIndex(p, 'p'));
  });
});
