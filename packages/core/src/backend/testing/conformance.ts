/**
 * The one test suite every Backend passes. A backend's test file runs it with a
 * one-liner (`backendConformance('directory', setup)`); backend-specific behaviour is
 * tested next to it. Imports vitest, so this file is excluded from the build.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError } from '../../errors.js';
import { seededBytes } from '../../testing/seeded.js';
import type { Backend, ObjectInfo } from '../backend.js';

/** What `setup` hands to each test: a fresh, empty backend and how to dispose of it. */
export interface ConformanceFixture {
  backend: Backend;
  /** Called after each test: close the backend and delete everything it stored. */
  cleanup: () => Promise<void>;
}

/** Capabilities a backend declares; tests of missing capabilities are skipped. */
export interface ConformanceOptions {
  /** `save` with `ifNoneMatch` throws ConflictError atomically on an existing key. Default true. */
  supportsIfNoneMatch?: boolean;
}

/**
 * Declare `describe(name)` with the Backend contract's tests. `setup` runs before every
 * test and must return an empty backend (a fresh temp directory, a fresh S3 prefix);
 * `cleanup` runs after it, even when the test fails. Tests never share state.
 */
export function backendConformance(
  name: string,
  setup: () => Promise<ConformanceFixture>,
  opts: ConformanceOptions = {},
): void {
  const supportsIfNoneMatch = opts.supportsIfNoneMatch ?? true;

  describe(name, () => {
    let fixture: ConformanceFixture | undefined;
    let b: Backend;

    beforeEach(async () => {
      fixture = await setup();
      b = fixture.backend;
    });
    afterEach(async () => {
      const f = fixture;
      fixture = undefined;
      await f?.cleanup();
    });

    describe('save and load', () => {
      it('round-trips an empty object', async () => {
        await b.save('empty', new Uint8Array(0));
        expectBytes(await b.load('empty'), new Uint8Array(0));
        expect((await b.stat('empty')).size).toBe(0);
      });

      it('round-trips a 1-byte object', async () => {
        await b.save('one', Uint8Array.of(0xa5));
        expectBytes(await b.load('one'), Uint8Array.of(0xa5));
      });

      it('round-trips 1 MiB of random bytes', async () => {
        const data = seededBytes(1, 1 << 20);
        await b.save('packs/ab/big', data, { size: data.length });
        const got = await b.load('packs/ab/big');
        expect(got).toBeInstanceOf(Uint8Array);
        expectBytes(got, data);
        expect((await b.stat('packs/ab/big')).size).toBe(data.length);
      });

      it('round-trips an async-iterable source of many small pieces', async () => {
        const data = seededBytes(2, 200_000);
        await b.save('pieces', piecesOf(data, 3));
        expectBytes(await b.load('pieces'), data);
      });

      it('does not keep a reference to the caller’s buffer', async () => {
        const data = seededBytes(3, 4096);
        const copy = data.slice();
        await b.save('owned', data);
        data.fill(0);
        expectBytes(await b.load('owned'), copy);
      });

      it('overwrites an existing object, shorter content included', async () => {
        await b.save('k', seededBytes(4, 10_000));
        const next = seededBytes(5, 100);
        await b.save('k', next);
        expectBytes(await b.load('k'), next);
        expect((await b.stat('k')).size).toBe(100);
      });

      it('is idempotent for identical content', async () => {
        const data = seededBytes(6, 1000);
        await b.save('same', data);
        await b.save('same', data);
        expectBytes(await b.load('same'), data);
      });

      it('round-trips keys with spaces, unicode and punctuation', async () => {
        const keys = [
          'dir with space/file name.bin',
          'unicode/ünïcødé-文件-🙂',
          "punct/a+b=c,d;e@f!g'h(i)j~k",
          'punct/percent%20hash#amp&dollar$',
          '.hidden/.dotfile',
        ];
        for (const [i, key] of keys.entries()) await b.save(key, seededBytes(100 + i, 10 + i));
        for (const [i, key] of keys.entries()) expectBytes(await b.load(key), seededBytes(100 + i, 10 + i));
        const listed = await listAll(b, '');
        expect(listed.map((o) => o.key).sort()).toEqual([...keys].sort());
      });

      it('lands 32 concurrent saves of different keys', async () => {
        const keys = Array.from({ length: 32 }, (_, i) => `conc/${(i % 4).toString()}/obj-${i.toString()}`);
        await Promise.all(keys.map((key, i) => b.save(key, i % 2 ? seededBytes(200 + i, 5000 + i) : piecesOf(seededBytes(200 + i, 5000 + i), 7))));
        for (const [i, key] of keys.entries()) expectBytes(await b.load(key), seededBytes(200 + i, 5000 + i));
        const listed = await listAll(b, 'conc/');
        expect(listed.map((o) => o.key).sort()).toEqual([...keys].sort());
      });
    });

    describe('failed saves leave nothing', () => {
      it('a source that throws midway stores no object', async () => {
        const boom = new Error('source failed');
        await expect(b.save('partial', failingSource(seededBytes(7, 100_000), boom))).rejects.toThrow('source failed');
        expect(await b.exists('partial')).toBe(false);
        await expect(b.stat('partial')).rejects.toBeInstanceOf(NotFoundError);
        expect(await listAll(b, '')).toEqual([]);
      });

      it('a source that throws midway keeps the previous object intact', async () => {
        const old = seededBytes(8, 3000);
        await b.save('kept', old);
        await expect(b.save('kept', failingSource(seededBytes(9, 100_000), new Error('source failed')))).rejects.toThrow(
          'source failed',
        );
        expectBytes(await b.load('kept'), old);
        expect((await listAll(b, '')).map((o) => o.key)).toEqual(['kept']);
      });

      it('an aborted signal stores no object', async () => {
        const ac = new AbortController();
        ac.abort();
        await expect(b.save('aborted', seededBytes(10, 100), { signal: ac.signal })).rejects.toThrow();
        expect(await b.exists('aborted')).toBe(false);
      });
    });

    describe('ranged load', () => {
      const data = seededBytes(11, 10_000);
      beforeEach(async () => {
        await b.save('r', data);
      });

      it.each([
        ['the start', { offset: 0, length: 100 }, [0, 100]],
        ['the middle', { offset: 1234, length: 4321 }, [1234, 5555]],
        ['the end, no length', { offset: 9_900 }, [9_900, 10_000]],
        ['the end, exact length', { offset: 9_900, length: 100 }, [9_900, 10_000]],
        ['a length running past the end', { offset: 9_990, length: 1000 }, [9_990, 10_000]],
        ['zero length', { offset: 500, length: 0 }, [500, 500]],
        ['an offset at the end', { offset: 10_000 }, [10_000, 10_000]],
        ['an offset past the end', { offset: 20_000, length: 10 }, [10_000, 10_000]],
        ['length only', { length: 10 }, [0, 10]],
        ['a huge length', { offset: 100, length: Number.MAX_SAFE_INTEGER }, [100, 10_000]],
      ] as const)('reads %s', async (_label, range, [from, to]) => {
        expectBytes(await b.load('r', range), data.subarray(from, to));
      });

      it('reads into a given buffer when the bytes fit, and allocates when they do not', async () => {
        const into = new Uint8Array(6000).fill(0xee);
        const got = await b.load('r', { offset: 1234, length: 4321, into });
        expectBytes(got, data.subarray(1234, 5555));
        expect(got.buffer).toBe(into.buffer);
        expect(got.byteOffset).toBe(into.byteOffset);
        const small = new Uint8Array(100);
        const whole = await b.load('r', { into: small });
        expectBytes(whole, data);
        expect(whole.buffer).not.toBe(small.buffer);
      });
    });

    describe('missing objects', () => {
      it('load throws NotFoundError', async () => {
        const err = await b.load('nope/missing').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(NotFoundError);
        expect((err as NotFoundError).code).toBe('NOT_FOUND');
        expect((err as NotFoundError).message).toContain('nope/missing');
      });

      it('a ranged load throws NotFoundError', async () => {
        await expect(b.load('missing', { offset: 0, length: 0 })).rejects.toBeInstanceOf(NotFoundError);
      });

      it('stat throws NotFoundError', async () => {
        await expect(b.stat('nope/missing')).rejects.toBeInstanceOf(NotFoundError);
      });

      it('exists is false, then true after a save', async () => {
        expect(await b.exists('e/k')).toBe(false);
        await b.save('e/k', Uint8Array.of(1));
        expect(await b.exists('e/k')).toBe(true);
        // A prefix of an existing key is not itself an object.
        expect(await b.exists('e')).toBe(false);
      });
    });

    describe('ifNoneMatch', () => {
      it('creates an absent object', async () => {
        await b.save('inm', Uint8Array.of(1, 2, 3), { ifNoneMatch: true });
        expectBytes(await b.load('inm'), Uint8Array.of(1, 2, 3));
      });

      it.skipIf(!supportsIfNoneMatch)('throws ConflictError on an existing object and keeps it', async () => {
        const old = seededBytes(12, 500);
        await b.save('inm', old);
        const err = await b.save('inm', seededBytes(13, 700), { ifNoneMatch: true }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ConflictError);
        expect((err as ConflictError).code).toBe('CONFLICT');
        expectBytes(await b.load('inm'), old);
      });

      it.skipIf(!supportsIfNoneMatch)('lets exactly one of concurrent exclusive saves win', async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => b.save('race', seededBytes(300 + i, 4000), { ifNoneMatch: true })),
        );
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        expect(won).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConflictError);
        expectBytes(await b.load('race'), seededBytes(300 + (won[0] ?? -1), 4000));
      });
    });

    describe('list', () => {
      const objects: Record<string, number> = {
        'packs/aa/1': 10,
        'packs/aa/10': 11,
        'packs/ab/2': 12,
        'packs/b0/3': 13,
        'manifests/aa/4': 14,
        top: 15,
      };
      beforeEach(async () => {
        await Promise.all(Object.entries(objects).map(([key, n]) => b.save(key, seededBytes(n, n))));
      });

      const expectList = async (prefix: string, keys: string[]) => {
        const listed = await listAll(b, prefix);
        expect(listed.map((o) => o.key).sort()).toEqual([...keys].sort());
        for (const o of listed) expect(o.size).toBe(objects[o.key]);
      };

      it('lists everything under the empty prefix', async () => {
        await expectList('', Object.keys(objects));
      });
      it('lists nested keys under a directory prefix', async () => {
        await expectList('packs/', ['packs/aa/1', 'packs/aa/10', 'packs/ab/2', 'packs/b0/3']);
        await expectList('packs/aa/', ['packs/aa/1', 'packs/aa/10']);
      });
      it('matches partial names', async () => {
        await expectList('packs/a', ['packs/aa/1', 'packs/aa/10', 'packs/ab/2']);
        await expectList('pack', ['packs/aa/1', 'packs/aa/10', 'packs/ab/2', 'packs/b0/3']);
        await expectList('packs/aa/1', ['packs/aa/1', 'packs/aa/10']);
        await expectList('t', ['top']);
      });
      it('lists nothing under an absent prefix', async () => {
        await expectList('trees/', []);
        await expectList('packs/zz', []);
        await expectList('packs/aa/2', []);
        await expectList('top/', []);
      });
      it('reports plausible modification times', async () => {
        const now = Date.now();
        for (const o of await listAll(b, '')) {
          expect(typeof o.mtimeMs).toBe('number');
          expect(Math.abs(o.mtimeMs - now)).toBeLessThan(60_000);
        }
        const info = await b.stat('top');
        expect(info).toEqual({ key: 'top', size: 15, mtimeMs: expect.any(Number) });
        expect(Math.abs(info.mtimeMs - now)).toBeLessThan(60_000);
      });
      it('lists the modification time stat gives (gc\'s grace period reads it from listings)', async () => {
        for (const o of await listAll(b, '')) {
          expect(o.mtimeMs).toBeGreaterThan(0);
          // S3 listings carry milliseconds, HEAD whole seconds.
          expect(Math.abs(o.mtimeMs - (await b.stat(o.key)).mtimeMs)).toBeLessThan(1000);
        }
      });
      it('does not list removed objects', async () => {
        await b.remove('packs/aa/1');
        await expectList('packs/aa', ['packs/aa/10']);
      });
    });

    describe('remove', () => {
      it('removes an object', async () => {
        await b.save('rm/k', Uint8Array.of(1));
        await b.remove('rm/k');
        expect(await b.exists('rm/k')).toBe(false);
        await expect(b.load('rm/k')).rejects.toBeInstanceOf(NotFoundError);
      });

      it('succeeds for a missing key, repeatedly', async () => {
        await b.remove('rm/missing');
        await b.remove('rm/missing');
        await b.save('rm/k', Uint8Array.of(1));
        await b.remove('rm/k');
        await b.remove('rm/k');
        expect(await b.exists('rm/k')).toBe(false);
      });

      it('leaves other objects alone', async () => {
        await b.save('rm/a', Uint8Array.of(1));
        await b.save('rm/ab', Uint8Array.of(2));
        await b.remove('rm/a');
        expectBytes(await b.load('rm/ab'), Uint8Array.of(2));
      });
    });
  });
}

/** Everything `list(prefix)` yields. */
async function listAll(b: Backend, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of b.list(prefix)) out.push(o);
  return out;
}

/** Compare bytes without vitest printing a million-element diff on failure. */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength, 'length').toBe(expected.byteLength);
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (!a.equals(e)) {
    let i = 0;
    while (a[i] === e[i]) i++;
    expect.fail(`bytes differ first at offset ${i.toString()} of ${a.length.toString()}`);
  }
}

/** `data` as an async iterable of small pieces of varying size, empty pieces included. */
async function* piecesOf(data: Uint8Array, seed: number): AsyncGenerator<Uint8Array> {
  const sizes = seededBytes(seed, data.length + 1);
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = Math.min((sizes[i] ?? 0) % 97, data.length - at);
    // A fresh copy per piece: the backend must not rely on the pieces staying unchanged.
    yield data.slice(at, at + n);
    at += n;
    // Let other work interleave, as a real stream would.
    if (i % 64 === 0) await Promise.resolve();
  }
}

/** Yields about half of `data`, then throws `err`. */
async function* failingSource(data: Uint8Array, err: Error): AsyncGenerator<Uint8Array> {
  const half = data.length >> 1;
  for (let at = 0; at < half; at += 4096) yield data.slice(at, Math.min(at + 4096, half));
  throw err;
}
