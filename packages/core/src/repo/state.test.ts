import { mkdir, mkdtemp, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Stats } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StatCache } from './state.js';

const OID = 'b3:' + 'a'.repeat(64);
const OID2 = 'b3:' + 'b'.repeat(64);
// An mtime with a sub-second part, in the past: always recordable.
const OLD = new Date('2024-01-02T03:04:05.678Z');

let root: string;
let file: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'cpv-state-'));
  await mkdir(path.join(root, '.cpv'));
  file = path.join(root, 'f.bin');
  await writeFile(file, 'hello');
  await utimes(file, OLD, OLD);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const stateFile = (): string => path.join(root, '.cpv', 'tmp', 'state.json');

describe('StatCache', () => {
  it('finds a recorded file while size, mtime and inode match', async () => {
    const sc = await StatCache.load(root);
    const st = await stat(file);
    expect(sc.lookup('f.bin', st)).toBeUndefined();
    sc.record('f.bin', st, OID);
    expect(sc.lookup('f.bin', st)).toBe(OID);
    expect(sc.lookup('f.bin', await stat(file))).toBe(OID);
    expect(sc.lookup('other', st)).toBeUndefined();
  });

  it('misses when the size changes', async () => {
    const sc = await StatCache.load(root);
    sc.record('f.bin', await stat(file), OID);
    await writeFile(file, 'hello!');
    await utimes(file, OLD, OLD);
    expect(sc.lookup('f.bin', await stat(file))).toBeUndefined();
  });

  it('misses when only the mtime changes', async () => {
    const sc = await StatCache.load(root);
    sc.record('f.bin', await stat(file), OID);
    await writeFile(file, 'jello');
    await utimes(file, OLD, new Date(OLD.getTime() + 1));
    const st = await stat(file);
    expect(st.size).toBe(5);
    expect(sc.lookup('f.bin', st)).toBeUndefined();
  });

  it('misses when only the inode changes (file replaced by rename)', async () => {
    const sc = await StatCache.load(root);
    const before = await stat(file);
    sc.record('f.bin', before, OID);
    const other = path.join(root, 'new.bin');
    await writeFile(other, 'jello');
    await utimes(other, OLD, OLD);
    await rename(other, file);
    const after = await stat(file);
    expect([after.size, after.mtimeMs]).toEqual([before.size, before.mtimeMs]);
    expect(after.ino).not.toBe(before.ino);
    expect(sc.lookup('f.bin', after)).toBeUndefined();
  });

  it('round-trips through save and load in the documented format', async () => {
    const sc = await StatCache.load(root);
    const st = await stat(file);
    sc.record('f.bin', st, OID);
    sc.record('dir/x', st, OID2);
    sc.recordDir('dir', { fingerprint: 'fp1', tree: OID2, cache: 'c1' });
    await sc.save();
    expect(JSON.parse(await readFile(stateFile(), 'utf8'))).toEqual({
      version: 2,
      paths: ['f.bin', 'dir/x'],
      stats: [5, st.mtimeMs, st.ino, 5, st.mtimeMs, st.ino],
      oids: OID.slice(3) + OID2.slice(3),
      dirs: { dir: ['fp1', OID2, 'c1'] },
    });
    const loaded = await StatCache.load(root);
    expect(loaded.lookup('f.bin', st)).toBe(OID);
    expect(loaded.lookup('dir/x', st)).toBe(OID2);
    expect(loaded.dir('dir')).toEqual({ fingerprint: 'fp1', tree: OID2, cache: 'c1' });
  });

  it('round-trips a state of 150,000 files', async () => {
    const sc = await StatCache.load(root);
    const n = 150_000;
    // Seeded stats (old mtimes with a fraction) and oids; only the fields the cache reads.
    const statOf = (i: number): Stats => ({ size: (i * 7919) % 100_000, mtimeMs: OLD.getTime() - i * 1.5, ino: 1_000_000 + i }) as Stats;
    const oidOf = (i: number): string => 'b3:' + (i.toString(16).padStart(8, '0') + 'c'.repeat(56));
    for (let i = 0; i < n; i++) sc.record(`d/${i}`, statOf(i), oidOf(i));
    await sc.save();
    const loaded = await StatCache.load(root);
    for (const i of [0, 1, 4242, 99_999, n - 1]) expect(loaded.lookup(`d/${i}`, statOf(i)), String(i)).toBe(oidOf(i));
    expect(loaded.lookup('d/7', statOf(8))).toBeUndefined();
  });

  it('forget removes an entry, and saving persists that', async () => {
    const sc = await StatCache.load(root);
    const st = await stat(file);
    sc.record('f.bin', st, OID);
    await sc.save();
    sc.forget('f.bin');
    await sc.save();
    expect((await StatCache.load(root)).lookup('f.bin', st)).toBeUndefined();
  });

  it('does not write when nothing changed', async () => {
    const sc = await StatCache.load(root);
    await sc.save();
    await expect(stat(stateFile())).rejects.toMatchObject({ code: 'ENOENT' });
    const st = await stat(file);
    sc.record('f.bin', st, OID);
    await sc.save();
    const mtime = (await stat(stateFile())).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    sc.record('f.bin', st, OID);
    await sc.save();
    expect((await stat(stateFile())).mtimeMs).toBe(mtime);
  });

  it('starts empty when the state file is damaged or of another version', async () => {
    await mkdir(path.dirname(stateFile()), { recursive: true });
    const st = await stat(file);
    const good = { version: 2, paths: ['f.bin'], stats: [5, st.mtimeMs, st.ino], oids: OID.slice(3) };
    await writeFile(stateFile(), JSON.stringify(good));
    expect((await StatCache.load(root)).lookup('f.bin', st)).toBe(OID);
    await writeFile(stateFile(), JSON.stringify(good).slice(0, 40));
    expect((await StatCache.load(root)).lookup('f.bin', st)).toBeUndefined();
    // The format of cpv 0.1's first releases: one object per path.
    await writeFile(stateFile(), JSON.stringify({ version: 1, files: { 'f.bin': [5, st.mtimeMs, st.ino, OID] } }));
    expect((await StatCache.load(root)).lookup('f.bin', st)).toBeUndefined();
  });

  it('discards the whole file when any column is malformed', async () => {
    await mkdir(path.dirname(stateFile()), { recursive: true });
    const st = await stat(file);
    const good = { version: 2, paths: ['f.bin', 'g'], stats: [5, st.mtimeMs, st.ino, 1, 2, 3], oids: OID.slice(3) + OID2.slice(3) };
    const bad: Record<string, unknown> = {
      'uppercase oid': { ...good, oids: OID.slice(3) + OID2.slice(3).toUpperCase() },
      'short oids': { ...good, oids: OID.slice(3) + OID2.slice(4) },
      'string size': { ...good, stats: ['5', st.mtimeMs, st.ino, 1, 2, 3] },
      'missing stat': { ...good, stats: [5, st.mtimeMs, st.ino, 1, 2] },
      'numeric path': { ...good, paths: ['f.bin', 7] },
      'duplicate path': { ...good, paths: ['f.bin', 'f.bin'] },
      'oids as array': { ...good, oids: [OID.slice(3), OID2.slice(3)] },
      'no paths': { ...good, paths: undefined },
      null: null,
    };
    for (const [name, body] of Object.entries(bad)) {
      await writeFile(stateFile(), JSON.stringify(body));
      const sc = await StatCache.load(root);
      expect(sc.lookup('f.bin', st), name).toBeUndefined();
      // A damaged file is replaced on the next save even when nothing new was recorded.
      await sc.save();
      expect(JSON.parse(await readFile(stateFile(), 'utf8')), name).toMatchObject({ version: 2, paths: [] });
    }
    // Malformed directory entries are dropped one by one.
    await writeFile(stateFile(), JSON.stringify({ ...good, dirs: { a: ['fp', OID, ''], b: ['fp', 'b3:abc', ''], c: ['fp', OID], d: 7, e: ['fp', OID, 7] } }));
    const sc = await StatCache.load(root);
    expect(sc.lookup('f.bin', st)).toBe(OID);
    expect(['a', 'b', 'c', 'd', 'e'].map((d) => sc.dir(d)?.tree)).toEqual([OID, undefined, undefined, undefined, undefined]);
  });

  it('does not trust an entry whose file is not older than the state file, until saved again', async () => {
    const sc = await StatCache.load(root);
    const st = await stat(file);
    sc.record('f.bin', st, OID);
    await sc.save();
    expect((await StatCache.load(root)).lookup('f.bin', st)).toBe(OID);
    // The state written in the same timestamp tick as the file (here: before it): the
    // file may have changed after it was hashed without changing its stat.
    const racy = new Date(st.mtimeMs);
    await utimes(stateFile(), racy, racy);
    const again = await StatCache.load(root);
    expect(again.lookup('f.bin', st)).toBeUndefined();
    // Rehashed and recorded again: saved with a newer state file, trusted again.
    again.record('f.bin', st, OID);
    await again.save();
    expect((await stat(stateFile())).mtimeMs).toBeGreaterThan(st.mtimeMs);
    expect((await StatCache.load(root)).lookup('f.bin', st)).toBe(OID);
  });

  it('remembers what it was told of a directory, and writes only on a change', async () => {
    const sc = await StatCache.load(root);
    expect(sc.dir('d')).toBeUndefined();
    const memo = { fingerprint: 'fp1', tree: OID, cache: '' };
    sc.recordDir('d', memo);
    expect(sc.dir('d')).toEqual(memo);
    expect(sc.dir('e')).toBeUndefined();
    await sc.save();
    const mtime = (await stat(stateFile())).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    sc.recordDir('d', { ...memo });
    await sc.save();
    expect((await stat(stateFile())).mtimeMs).toBe(mtime);
    sc.recordDir('d', { ...memo, cache: 'c' });
    await sc.save();
    expect((await stat(stateFile())).mtimeMs).toBeGreaterThan(mtime);
    expect((await StatCache.load(root)).dir('d')).toEqual({ ...memo, cache: 'c' });
  });

  it('counts a change as settled only before the state file was written', async () => {
    const sc = await StatCache.load(root);
    expect(sc.settled(Date.now())).toBe(true); // no state file yet
    sc.record('f.bin', await stat(file), OID);
    await sc.save();
    const written = (await stat(stateFile())).mtimeMs;
    const loaded = await StatCache.load(root);
    expect(loaded.settled(written - 1)).toBe(true);
    expect(loaded.settled(written)).toBe(false);
    expect(loaded.settled(written + 1000)).toBe(false);
  });

  it('does not record a file with a whole-second mtime modified in the last two seconds', async () => {
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    await utimes(file, now, now);
    const st = await stat(file);
    expect(st.mtimeMs % 1000).toBe(0);
    const sc = await StatCache.load(root);
    sc.record('f.bin', st, OID);
    expect(sc.lookup('f.bin', st)).toBeUndefined();
    // An old whole-second mtime is safe to record.
    const old = new Date('2024-01-02T03:04:05Z');
    await utimes(file, old, old);
    const st2 = await stat(file);
    sc.record('f.bin', st2, OID);
    expect(sc.lookup('f.bin', st2)).toBe(OID);
  });
});
