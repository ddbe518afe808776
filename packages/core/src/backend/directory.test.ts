import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotFoundError, RemoteError, UsageError } from '../errors.js';
import { DirectoryBackend, directoryFromUrl } from './directory.js';
import { backendConformance } from './testing/conformance.js';

backendConformance('directory backend conformance', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cpv-dir-backend-'));
  const backend = new DirectoryBackend(dir);
  return {
    backend,
    cleanup: async () => {
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

async function listKeys(b: DirectoryBackend, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of b.list(prefix)) keys.push(o.key);
  return keys.sort();
}

describe('DirectoryBackend', () => {
  let root: string;
  let b: DirectoryBackend;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'cpv-dir-'));
    b = new DirectoryBackend(root);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('stores objects as read-only files at their key path', async () => {
    await b.save('packs/ab/cd', Uint8Array.of(1, 2, 3));
    const st = await stat(path.join(root, 'packs', 'ab', 'cd'));
    expect(st.mode & 0o777).toBe(0o444);
    expect(st.size).toBe(3);
    // Overwriting and removing work despite the read-only mode.
    await b.save('packs/ab/cd', Uint8Array.of(4));
    expect(await b.load('packs/ab/cd')).toEqual(Uint8Array.of(4));
    await b.remove('packs/ab/cd');
    expect(await b.exists('packs/ab/cd')).toBe(false);
  });

  it('leaves no temp files after saves, and does not list stray ones', async () => {
    await b.save('a', Uint8Array.of(1));
    expect(await readdir(path.join(root, '.tmp'))).toEqual([]);
    // What an interrupted save leaves behind.
    await writeFile(path.join(root, '.tmp', '.tmp-0123456789abcdef'), 'partial');
    await mkdir(path.join(root, '.tmp', 'sub'));
    await writeFile(path.join(root, '.tmp', 'sub', 'x'), 'partial');
    expect(await listKeys(b, '')).toEqual(['a']);
    expect(await listKeys(b, '.')).toEqual([]);
    expect(await listKeys(b, '.tmp')).toEqual([]);
    expect(await listKeys(b, '.tmp/')).toEqual([]);
    expect(await listKeys(b, '.tmp/sub/')).toEqual([]);
  });

  it('cleans up its temp file when the source fails', async () => {
    async function* failing() {
      yield Uint8Array.of(1, 2, 3);
      throw new Error('disk on fire');
    }
    const err = await b.save('x', failing()).catch((e: unknown) => e);
    // The source's own error, not a RemoteError about the directory.
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(RemoteError);
    expect((err as Error).message).toBe('disk on fire');
    expect(await readdir(path.join(root, '.tmp'))).toEqual([]);
    expect(await readdir(root)).toEqual(['.tmp']);
  });

  it('passes an abort reason through unchanged and leaves no temp file', async () => {
    const ac = new AbortController();
    const reason = new Error('user cancelled');
    async function* slow() {
      yield Uint8Array.of(1);
      ac.abort(reason);
      yield Uint8Array.of(2);
    }
    await expect(b.save('x', slow(), { signal: ac.signal })).rejects.toBe(reason);
    await expect(b.load('x', { signal: ac.signal })).rejects.toBe(reason);
    expect(await readdir(path.join(root, '.tmp'))).toEqual([]);
    expect(await b.exists('x')).toBe(false);
  });

  it.each(['../x', '/abs', 'a//b', 'a/./b', 'a/../b', '..', '.', '', 'a/', '/', 'a\\b', 'a\0b', '.tmp', '.tmp/x'])(
    'rejects the bad key %j with UsageError',
    async (key) => {
      const inner = new DirectoryBackend(path.join(root, 'inner'));
      await expect(inner.save(key, Uint8Array.of(1))).rejects.toBeInstanceOf(UsageError);
      await expect(inner.load(key)).rejects.toBeInstanceOf(UsageError);
      await expect(inner.stat(key)).rejects.toBeInstanceOf(UsageError);
      await expect(inner.exists(key)).rejects.toBeInstanceOf(UsageError);
      await expect(inner.remove(key)).rejects.toBeInstanceOf(UsageError);
      // Nothing was created, inside the root or next to it.
      expect(await readdir(root)).toEqual([]);
    },
  );

  it.each(['../', '/abs', 'a//b', 'a/../b', 'a\\b', '/'])('rejects the bad list prefix %j with UsageError', async (prefix) => {
    await expect(listKeys(b, prefix)).rejects.toBeInstanceOf(UsageError);
  });

  it('rejects negative or fractional ranges with UsageError', async () => {
    await b.save('r', Uint8Array.of(1, 2, 3));
    await expect(b.load('r', { offset: -1 })).rejects.toBeInstanceOf(UsageError);
    await expect(b.load('r', { length: 1.5 })).rejects.toBeInstanceOf(UsageError);
  });

  it('names the key and the location in NotFoundError', async () => {
    const err = await b.load('packs/zz/missing').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toContain('packs/zz/missing');
    expect((err as NotFoundError).message).toContain(root);
    expect((err as NotFoundError).data).toEqual({ key: 'packs/zz/missing', location: root });
  });

  it('treats a directory as no object', async () => {
    await b.save('d/inner', Uint8Array.of(1));
    await expect(b.load('d')).rejects.toBeInstanceOf(NotFoundError);
    await expect(b.stat('d')).rejects.toBeInstanceOf(NotFoundError);
    expect(await b.exists('d')).toBe(false);
    await b.remove('d');
    expect(await b.exists('d/inner')).toBe(true);
  });

  it('maps unexpected fs errors to RemoteError with the key and the cause', async () => {
    await b.save('f', Uint8Array.of(1));
    // `f` is a file, so `f/g` cannot be created under it (ENOTDIR/EEXIST from mkdir).
    const err = await b.save('f/g', Uint8Array.of(2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).message).toContain('f/g');
    expect((err as RemoteError).message).toContain(root);
    expect((err as RemoteError).cause).toBeInstanceOf(Error);
    expect((err as RemoteError).data).toMatchObject({ key: 'f/g', location: root });
    // Reads below a file are simply absent.
    expect(await b.exists('f/g')).toBe(false);
    await expect(b.load('f/g')).rejects.toBeInstanceOf(NotFoundError);
    expect(await listKeys(b, 'f/')).toEqual([]);
  });

  it('creates a missing root on the first save; an absent root lists nothing', async () => {
    const nested = new DirectoryBackend(path.join(root, 'not', 'yet'));
    expect(await listKeys(nested, '')).toEqual([]);
    expect(await nested.exists('k')).toBe(false);
    await nested.save('k', Uint8Array.of(9));
    expect(await nested.load('k')).toEqual(Uint8Array.of(9));
  });

  it('has its absolute path as location and refuses a relative root', () => {
    expect(new DirectoryBackend(`${root}/sub/../`).location).toBe(root);
    expect(() => new DirectoryBackend('relative/dir')).toThrow(UsageError);
  });

  it('throws UsageError after close, and close is idempotent', async () => {
    await b.save('k', Uint8Array.of(1));
    await b.close();
    await b.close();
    await expect(b.load('k')).rejects.toBeInstanceOf(UsageError);
    await expect(b.save('k', Uint8Array.of(1))).rejects.toBeInstanceOf(UsageError);
    await expect(b.exists('k')).rejects.toBeInstanceOf(UsageError);
    await expect(b.remove('k')).rejects.toBeInstanceOf(UsageError);
    await expect(listKeys(b, '')).rejects.toBeInstanceOf(UsageError);
  });
});

describe('directoryFromUrl', () => {
  it('decodes file:// URLs', () => {
    expect(directoryFromUrl('file:///mnt/team/cpv-remote', '/repo')).toBe('/mnt/team/cpv-remote');
    expect(directoryFromUrl('file:///mnt/with%20space/r/', '/repo')).toBe('/mnt/with space/r');
    expect(directoryFromUrl(pathToFileURL('/tmp/ünï cødé').href, '/repo')).toBe('/tmp/ünï cødé');
    expect(directoryFromUrl('FILE:///x', '/repo')).toBe('/x');
  });

  it('keeps absolute paths and resolves relative ones against base', () => {
    expect(directoryFromUrl('/mnt/team/cpv-remote/', '/repo')).toBe('/mnt/team/cpv-remote');
    expect(directoryFromUrl('../remote', '/work/repo')).toBe('/work/remote');
    expect(directoryFromUrl('remote', '/work/repo')).toBe('/work/repo/remote');
  });

  it('rejects other schemes, remote hosts, empty URLs and relative bases', () => {
    expect(() => directoryFromUrl('s3://bucket/prefix', '/repo')).toThrow(UsageError);
    expect(() => directoryFromUrl('https://example.com/x', '/repo')).toThrow(UsageError);
    expect(() => directoryFromUrl('file://otherhost/x', '/repo')).toThrow(UsageError);
    expect(() => directoryFromUrl('', '/repo')).toThrow(UsageError);
    expect(() => directoryFromUrl('remote', 'relative')).toThrow(UsageError);
  });
});
