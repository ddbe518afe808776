import { describe, expect, it, vi } from 'vitest';
import { createRng, randomInt, seededBytes } from '../testing/seeded.js';
import { blake3Hex, hashImpl, loadHasher, type HashImpl } from './blake3.js';

// Official BLAKE3 test vectors (BLAKE3-team/BLAKE3, test_vectors/test_vectors.json):
// input = bytes i % 251; expected = the first 32 bytes of the "hash" field.
const VECTORS: Array<[number, string]> = [
  [0, 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'],
  [1, '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213'],
  [1023, '10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11'],
  [1024, '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7'],
  [1025, 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444'],
  [2048, 'e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a'],
  [2049, '5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030'],
  [3072, 'b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2'],
  [3073, '7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3'],
  [4096, '015094013f57a5277b59d8475c0501042c0b642e531b0a1c8f58d2163229e969'],
  [4097, '9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995'],
  [5120, '9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833'],
  [5121, '628bd2cb2004694adaab7bbd778a25df25c47b9d4155a55f8fbd79f2fe154cff'],
  [6144, '3e2e5b74e048f3add6d21faab3f83aa44d3b2278afb83b80b3c35164ebeca205'],
  [6145, 'f1323a8631446cc50536a9f705ee5cb619424d46887f3c376c695b70e0f0507f'],
  [7168, '61da957ec2499a95d6b8023e2b0e604ec7f6b50e80a9678b89d2628e99ada77a'],
  [7169, 'a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817'],
  [8192, 'aae792484c8efe4f19e2ca7d371d8c467ffb10748d8a5a1ae579948f718a2a63'],
  [8193, 'bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b'],
  [16384, 'f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4'],
  [31744, '62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47'],
  [102400, 'bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085'],
];

function vectorInput(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = i % 251;
  return out;
}

/** Hash `data` fed in seeded random-sized updates (including empty ones). */
async function hashInPieces(impl: HashImpl, data: Uint8Array, seed: number): Promise<string> {
  const next = createRng(seed);
  const h = (await loadHasher(impl))();
  for (let off = 0; off < data.length; ) {
    const n = Math.min(data.length - off, randomInt(next, 0, 70_000));
    h.update(data.subarray(off, off + n));
    off += n;
  }
  return h.digestHex();
}

const IMPLS: HashImpl[] = ['native', 'wasm'];

describe.each(IMPLS)('BLAKE3 %s', (impl) => {
  it.each(VECTORS)('matches the official vector for %i bytes', async (len, expected) => {
    expect(await blake3Hex(vectorInput(len), impl)).toBe(expected);
  });

  it('gives the same digest however the input is split into updates', async () => {
    const data = vectorInput(102400);
    expect(await hashInPieces(impl, data, 7)).toBe(VECTORS.at(-1)![1]);
    const h = (await loadHasher(impl))();
    for (const b of data) h.update(Uint8Array.of(b));
    expect(h.digestHex()).toBe(VECTORS.at(-1)![1]);
  });

  it('keeps interleaved hashers independent', async () => {
    const newHasher = await loadHasher(impl);
    const a = seededBytes(1, 300_000);
    const b = seededBytes(2, 200_000);
    const ha = newHasher();
    const hb = newHasher();
    for (let off = 0; off < a.length; off += 50_000) {
      ha.update(a.subarray(off, off + 50_000));
      hb.update(b.subarray(off, off + 50_000));
      // A third hasher that starts and finishes in between must not disturb them.
      expect(await blake3Hex(new Uint8Array(0), impl)).toBe(VECTORS[0]![1]);
    }
    expect(hb.digestHex()).toBe(await blake3Hex(b, impl));
    expect(ha.digestHex()).toBe(await blake3Hex(a, impl));
  });

  it('refuses to be used after digestHex', async () => {
    const h = (await loadHasher(impl))();
    h.update(Uint8Array.of(1));
    h.digestHex();
    expect(() => h.update(Uint8Array.of(2))).toThrow(/after digestHex/);
    expect(() => h.digestHex()).toThrow(/after digestHex/);
  });

  it('starts over after reset, whether spent or midway', async () => {
    const a = seededBytes(3, 100_001);
    const b = seededBytes(4, 70_000);
    const h = (await loadHasher(impl))();
    h.update(a);
    const first = h.digestHex();
    expect(first).toBe(await blake3Hex(a, impl));
    h.reset();
    h.update(b);
    expect(h.digestHex()).toBe(await blake3Hex(b, impl));
    // Reset midway discards what was fed; interleaved with another hasher.
    h.reset();
    h.update(a.subarray(0, 5000));
    const other = (await loadHasher(impl))();
    other.update(b.subarray(0, 9));
    h.reset();
    h.update(a);
    other.update(b.subarray(9));
    expect(h.digestHex()).toBe(first);
    expect(other.digestHex()).toBe(await blake3Hex(b, impl));
  });

  it('caches the factory', async () => {
    expect(await loadHasher(impl)).toBe(await loadHasher(impl));
  });
});

describe('native and wasm agree', () => {
  it.each([0, 1, 63, 64, 65, 1023, 1024, 1025, 4097, 65_537, 1_000_003, 3 * 1024 * 1024 + 17])(
    'on %i seeded random bytes in random updates',
    async (n) => {
      const data = seededBytes(n + 1, n);
      const native = await hashInPieces('native', data, n);
      const wasm = await hashInPieces('wasm', data, n * 31 + 5);
      expect(native).toMatch(/^[0-9a-f]{64}$/);
      expect(wasm).toBe(native);
    },
  );
});

describe('default implementation', () => {
  it('loads one of the two and reports it', async () => {
    const newHasher = await loadHasher();
    expect(IMPLS).toContain(hashImpl());
    const h = newHasher();
    h.update(vectorInput(1025));
    expect(h.digestHex()).toBe(VECTORS[4]![1]);
  });

  it('is forced to wasm by CPV_HASH_IMPL=wasm', async () => {
    vi.resetModules();
    vi.stubEnv('CPV_HASH_IMPL', 'wasm');
    try {
      const fresh = await import('./blake3.js');
      expect(() => fresh.hashImpl()).toThrow(/before loadHasher/);
      await fresh.loadHasher();
      expect(fresh.hashImpl()).toBe('wasm');
      expect(await fresh.blake3Hex(vectorInput(1))).toBe(VECTORS[1]![1]);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('rejects an unknown CPV_HASH_IMPL with a config error', async () => {
    vi.resetModules();
    vi.stubEnv('CPV_HASH_IMPL', 'sha256');
    try {
      const fresh = await import('./blake3.js');
      await expect(fresh.loadHasher()).rejects.toMatchObject({ code: 'CONFIG', message: expect.stringContaining('"sha256"') });
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
