import { describe, expect, it } from 'vitest';
import { loadHasher } from '../hash/blake3.js';
import { GEAR_V1 } from './gear.js';

describe('GEAR_V1', () => {
  it('is BLAKE3("cpv gear v1" || byte i), first 4 bytes little-endian', async () => {
    const newHasher = await loadHasher();
    const prefix = new TextEncoder().encode('cpv gear v1');
    const expected = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      const h = newHasher();
      h.update(prefix);
      h.update(Uint8Array.of(i));
      const d = Buffer.from(h.digestHex(), 'hex');
      expected[i] = d.readUInt32LE(0);
    }
    expect(GEAR_V1.length).toBe(256);
    expect(Array.from(GEAR_V1)).toEqual(Array.from(expected));
  });
});
