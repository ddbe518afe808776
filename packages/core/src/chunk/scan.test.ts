import { appendFileSync, readFileSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConflictError } from '../errors.js';
import { blake3Hex } from '../hash/blake3.js';
import { safetensors, seededBytes } from '../testing/seeded.js';
import { chunkLengths, DEFAULT_CHUNKER, type ChunkerParams } from './fastcdc.js';
import { scanBytes, scanFile, type ScanResult } from './scan.js';

const MiB = 1024 * 1024;
const SMALL: ChunkerParams = { algorithm: 'fastcdc-v1', gear: 'cpv-gear-v1', min: 64, avg: 256, max: 1024, align: 'none' };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cpv-scan-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCount = 0;
function writeTemp(data: Uint8Array): string {
  const path = join(dir, `f${fileCount++}`);
  writeFileSync(path, data);
  return path;
}

/** The result computed from the definitions alone: whole-buffer hashes of each slice. */
async function expected(data: Uint8Array, params: ChunkerParams): Promise<ScanResult> {
  const chunks: Array<[string, number]> = [];
  let off = 0;
  for (const len of chunkLengths(data, params)) {
    chunks.push([await blake3Hex(data.subarray(off, off + len)), len]);
    off += len;
  }
  return { oid: `b3:${await blake3Hex(data)}`, size: data.length, chunks };
}

describe('scanFile and scanBytes', () => {
  it.each([
    ['default', DEFAULT_CHUNKER, [1, 100, 16 * 1024, 16 * 1024 + 1, 300 * 1024, 5 * MiB + 17, 9 * MiB]],
    ['small', SMALL, [1, 1023, 1025, 100_000]],
  ] as const)('agree with the definitions (%s params)', async (_name, params, sizes) => {
    for (const n of sizes) {
      const data = seededBytes(n, n);
      const want = await expected(data, params);
      expect(await scanBytes(data, params)).toEqual(want);
      expect(await scanFile(writeTemp(data), { params })).toEqual(want);
      expect(want.chunks.reduce((a, [, len]) => a + len, 0)).toBe(n);
    }
  });

  it('do not depend on the read buffer size', async () => {
    const big = seededBytes(1, 5 * MiB + 3);
    const bigPath = writeTemp(big);
    const bigWant = await scanBytes(big, DEFAULT_CHUNKER);
    expect(bigWant.chunks.length).toBeGreaterThan(40);
    for (const bufferSize of [4096, 65537, MiB + 3, 8 * MiB]) {
      expect(await scanFile(bigPath, { params: DEFAULT_CHUNKER, bufferSize })).toEqual(bigWant);
    }
    const small = seededBytes(2, 50_000);
    const smallPath = writeTemp(small);
    const smallWant = await scanBytes(small, SMALL);
    for (const bufferSize of [1, 7, 1000, 1024, 1025, 4096]) {
      expect(await scanFile(smallPath, { params: SMALL, bufferSize })).toEqual(smallWant);
    }
  });

  it('scan an empty file as size 0, the empty hash and no chunks', async () => {
    const empty = new Uint8Array(0);
    const want: ScanResult = { oid: `b3:${await blake3Hex(empty)}`, size: 0, chunks: [] };
    expect(want.oid).toBe('b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    expect(await scanFile(writeTemp(empty), { params: DEFAULT_CHUNKER })).toEqual(want);
    expect(await scanBytes(empty, DEFAULT_CHUNKER)).toEqual(want);
  });

  it('give a single-chunk file the file oid as its chunk oid', async () => {
    const data = seededBytes(3, 10_000);
    const path = writeTemp(data);
    for (const bufferSize of [undefined, 1000]) {
      const r = await scanFile(path, { params: DEFAULT_CHUNKER, bufferSize });
      expect(r.chunks).toEqual([[r.oid.slice(3), data.length]]);
      expect(r.oid).toBe(`b3:${await blake3Hex(data)}`);
    }
    const r = await scanBytes(data, DEFAULT_CHUNKER);
    expect(r.chunks).toEqual([[r.oid.slice(3), data.length]]);
  });

  it('give the same result with the wasm hasher', async () => {
    const data = seededBytes(4, 3 * MiB + 5);
    const path = writeTemp(data);
    const native = await scanFile(path, { params: DEFAULT_CHUNKER, bufferSize: 100_000 });
    vi.resetModules();
    vi.stubEnv('CPV_HASH_IMPL', 'wasm');
    try {
      const fresh = await import('./scan.js');
      const hash = await import('../hash/blake3.js');
      expect(await fresh.scanFile(path, { params: DEFAULT_CHUNKER, bufferSize: 100_000 })).toEqual(native);
      expect(await fresh.scanBytes(data, DEFAULT_CHUNKER)).toEqual(native);
      expect(hash.hashImpl()).toBe('wasm');
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('scanFile', () => {
  it('reports progress that adds up to the size', async () => {
    const data = seededBytes(5, 1 * MiB + 1);
    const deltas: number[] = [];
    await scanFile(writeTemp(data), { params: DEFAULT_CHUNKER, bufferSize: 300_000, onProgress: (d) => deltas.push(d) });
    expect(deltas).toEqual([300_000, 300_000, 300_000, 148_577]);
  });

  it('rejects with the reason of an aborted signal', async () => {
    const path = writeTemp(seededBytes(6, 1 * MiB));
    const reason = new Error('stop');
    await expect(scanFile(path, { params: DEFAULT_CHUNKER, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    const ac = new AbortController();
    const scan = scanFile(path, { params: DEFAULT_CHUNKER, bufferSize: 65536, signal: ac.signal, onProgress: () => ac.abort(reason) });
    await expect(scan).rejects.toBe(reason);
  });

  it.each([
    ['grows', (path: string) => appendFileSync(path, 'more')],
    ['shrinks', (path: string) => truncateSync(path, 1000)],
    ['is rewritten in place', (path: string) => {
      writeFileSync(path, seededBytes(8, 200_000));
      utimesSync(path, new Date(2000, 0, 1), new Date(2000, 0, 1));
    }],
  ])('throws ConflictError when the file %s while it is read', async (_what, change) => {
    const path = writeTemp(seededBytes(7, 200_000));
    let changed = false;
    const onProgress = (): void => {
      if (!changed) change(path);
      changed = true;
    };
    const err = await scanFile(path, { params: DEFAULT_CHUNKER, bufferSize: 65536, onProgress }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).code).toBe('CONFLICT');
    expect((err as ConflictError).message).toContain(path);
    expect((err as ConflictError).hint).toBe('the file changed while it was being read; run the command again when it is stable');
  });

  it('passes file-system errors through', async () => {
    await expect(scanFile(join(dir, 'missing'), { params: DEFAULT_CHUNKER })).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rejects a bad buffer size', async () => {
    const path = writeTemp(seededBytes(9, 10));
    await expect(scanFile(path, { params: DEFAULT_CHUNKER, bufferSize: 0 })).rejects.toBeInstanceOf(RangeError);
  });
});

describe('scanFile with copyTo', () => {
  /** Scan `src` while copying it to a new file; the result and the copy's bytes. */
  async function scanCopy(src: string, params: ChunkerParams, bufferSize?: number): Promise<{ result: ScanResult; copy: Buffer }> {
    const dest = join(dir, `copy${fileCount++}`);
    const out = await open(dest, 'w');
    try {
      const result = await scanFile(src, { params, bufferSize, copyTo: out });
      return { result, copy: readFileSync(dest) };
    } finally {
      await out.close();
    }
  }

  it('writes exactly the bytes it describes, for any buffer size', async () => {
    const data = seededBytes(21, 3 * MiB + 5);
    const src = writeTemp(data);
    const expected = await scanBytes(data, DEFAULT_CHUNKER);
    for (const bufferSize of [1000, 65537, MiB, 4 * MiB, undefined]) {
      const { result, copy } = await scanCopy(src, DEFAULT_CHUNKER, bufferSize);
      expect(result).toEqual(expected);
      expect(copy.equals(data)).toBe(true);
    }
  });

  it('copies exactly past the background flush (64 MiB)', async () => {
    const data = seededBytes(22, 65 * MiB + 3);
    const src = writeTemp(data);
    const { result, copy } = await scanCopy(src, DEFAULT_CHUNKER);
    expect(result.oid).toBe(`b3:${await blake3Hex(data)}`);
    expect(copy.equals(data)).toBe(true);
  });

  it('copies an empty file as an empty file', async () => {
    const { result, copy } = await scanCopy(writeTemp(new Uint8Array(0)), SMALL);
    expect(result.size).toBe(0);
    expect(copy.length).toBe(0);
  });

  it('fails when a write fails', async () => {
    const src = writeTemp(seededBytes(23, 3 * MiB));
    const dest = join(dir, `copy${fileCount++}`);
    writeFileSync(dest, '');
    const readOnly = await open(dest, 'r');
    try {
      await expect(scanFile(src, { params: SMALL, copyTo: readOnly })).rejects.toMatchObject({ code: 'EBADF' });
    } finally {
      await readOnly.close();
    }
  });
});

describe('scanFile on two threads', () => {
  const TWO = { parallel: true } as const;

  it('gives the one-thread result for any size, block size and parameters', async () => {
    const aligned: ChunkerParams = { ...DEFAULT_CHUNKER, min: 1024, avg: 4096, max: 16384, align: 'tensors' };
    for (const [seed, n] of [[31, 1], [32, 4095], [33, 300_001], [34, 2 * MiB + 7]] as const) {
      const data = seededBytes(seed, n);
      const path = writeTemp(data);
      for (const params of [DEFAULT_CHUNKER, SMALL, aligned]) {
        const want = await expected(data, params);
        for (const bufferSize of [undefined, 1, 4096, 65537]) {
          if (bufferSize === 1 && n > 5000) continue;
          expect(await scanFile(path, { params, bufferSize, ...TWO })).toEqual(want);
        }
      }
    }
  });

  it('cuts at tensor boundaries exactly as one thread does', async () => {
    const { data } = safetensors([70_000, 3, 1_000_000, 20_001, 500_000], 35);
    const path = writeTemp(data);
    const params: ChunkerParams = { ...DEFAULT_CHUNKER, align: 'tensors' };
    const one = await scanFile(path, { params, parallel: false });
    expect(one).toEqual(await scanBytes(data, params));
    for (const bufferSize of [undefined, 7777, 65536]) expect(await scanFile(path, { params, bufferSize, ...TWO })).toEqual(one);
  });

  it('reports progress that adds up to the size', async () => {
    const n = 3 * MiB + 12_345;
    const deltas: number[] = [];
    await scanFile(writeTemp(seededBytes(36, n)), { params: DEFAULT_CHUNKER, onProgress: (d) => deltas.push(d), ...TWO });
    expect(deltas.reduce((a, b) => a + b, 0)).toBe(n);
    expect(deltas.length).toBeGreaterThan(1);
  });

  it('copies exactly the bytes it describes', async () => {
    const data = seededBytes(37, 5 * MiB + 3);
    const src = writeTemp(data);
    for (const bufferSize of [undefined, 65537]) {
      const dest = join(dir, `copy${fileCount++}`);
      const out = await open(dest, 'w');
      try {
        expect(await scanFile(src, { params: DEFAULT_CHUNKER, copyTo: out, bufferSize, ...TWO })).toEqual(await scanBytes(data, DEFAULT_CHUNKER));
      } finally {
        await out.close();
      }
      expect(readFileSync(dest).equals(data)).toBe(true);
    }
  });

  it('fails with the error of a failed write', async () => {
    const src = writeTemp(seededBytes(38, 3 * MiB));
    const dest = join(dir, `copy${fileCount++}`);
    writeFileSync(dest, '');
    const readOnly = await open(dest, 'r');
    try {
      await expect(scanFile(src, { params: SMALL, copyTo: readOnly, ...TWO })).rejects.toMatchObject({ code: 'EBADF', syscall: 'write' });
    } finally {
      await readOnly.close();
    }
  });

  it('throws ConflictError when the file shrinks before the reader reaches its end', async () => {
    // Blocks of 4 KiB: the reader is at most 512 KiB ahead when 1 MiB is reported.
    const path = writeTemp(seededBytes(39, 4 * MiB));
    let truncated = false;
    const onProgress = (): void => {
      if (!truncated) truncateSync(path, 2 * MiB);
      truncated = true;
    };
    const err = await scanFile(path, { params: DEFAULT_CHUNKER, bufferSize: 4096, onProgress, ...TWO }).catch((e: unknown) => e);
    expect(truncated).toBe(true);
    expect(err).toBeInstanceOf(ConflictError);
  });

  it.each([
    ['grows', (path: string) => appendFileSync(path, 'more')],
    ['is rewritten in place', (path: string) => {
      writeFileSync(path, seededBytes(41, 2 * MiB));
      utimesSync(path, new Date(2000, 0, 1), new Date(2000, 0, 1));
    }],
  ])('throws ConflictError when the file %s while it is read', async (_what, change) => {
    const path = writeTemp(seededBytes(40, 2 * MiB));
    let changed = false;
    const onProgress = (): void => {
      if (!changed) change(path);
      changed = true;
    };
    const err = await scanFile(path, { params: DEFAULT_CHUNKER, bufferSize: 4096, onProgress, ...TWO }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
  });

  it('rejects with the reason of an aborted signal and stops the reader', async () => {
    const data = seededBytes(42, 4 * MiB);
    const path = writeTemp(data);
    const reason = new Error('stop');
    const ac = new AbortController();
    const scan = scanFile(path, { params: DEFAULT_CHUNKER, bufferSize: 4096, signal: ac.signal, onProgress: () => ac.abort(reason), ...TWO });
    await expect(scan).rejects.toBe(reason);
    // The next scan of the same file is whole and correct.
    expect(await scanFile(path, { params: DEFAULT_CHUNKER, ...TWO })).toEqual(await scanBytes(data, DEFAULT_CHUNKER));
  });
});

describe('scanFile, many at once', () => {
  it('gives every scan its own result, on two threads or (past the limit) on one', async () => {
    const files = [50, 51, 52, 53].map((seed) => {
      const data = seededBytes(seed, 3 * MiB + seed);
      return { data, path: writeTemp(data) };
    });
    const results = await Promise.all(
      files.map(async (f, i) => {
        const dest = join(dir, `copy${fileCount++}`);
        const out = await open(dest, 'w');
        try {
          const r = await scanFile(f.path, { params: DEFAULT_CHUNKER, parallel: true, bufferSize: 65536 + i, copyTo: out });
          return { r, copy: readFileSync(dest) };
        } finally {
          await out.close();
        }
      }),
    );
    for (const [i, f] of files.entries()) {
      expect(results[i]!.r).toEqual(await scanBytes(f.data, DEFAULT_CHUNKER));
      expect(results[i]!.copy.equals(f.data)).toBe(true);
    }
  });
});
