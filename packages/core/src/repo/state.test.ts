import { mkdir, mkdtemp, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
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
    await sc.save();
    expect(JSON.parse(await readFile(stateFile(), 'utf8'))).toEqual({
      version: 1,
      files: { 'f.bin': [5, st.mtimeMs, st.ino, OID], 'dir/x': [5, st.mtimeMs, st.ino, OID2] },
    });
    const loaded = await StatCache.load(root);
    expect(loaded.lookup('f.bin', st)).toBe(OID);
    expect(loaded.lookup('dir/x', st)).toBe(OID2);
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
    await writeFile(stateFile(), '{"version":1,"files":{"f.bin":[5,');
    expect((await StatCache.load(root)).lookup('f.bin', st)).toBeUndefined();
    await writeFile(stateFile(), JSON.stringify({ version: 2, files: { 'f.bin': [5, st.mtimeMs, st.ino, OID] } }));
    expect((await StatCache.load(root)).lookup('f.bin', st)).toBeUndefined();
  });

  it('drops malformed entries one by one and keeps the good ones', async () => {
    await mkdir(path.dirname(stateFile()), { recursive: true });
    const st = await stat(file);
    const stamp = [5, st.mtimeMs, st.ino];
    const files: Record<string, unknown> = {
      good: [...stamp, OID],
      'sha256 oid': [...stamp, 'sha256:abc'],
      'short oid': [...stamp, 'b3:abc'],
      'uppercase oid': [...stamp, 'b3:' + 'A'.repeat(64)],
      'numeric oid': [...stamp, 7],
      'string size': ['5', st.mtimeMs, st.ino, OID],
      'three fields': stamp,
      'five fields': [...stamp, OID, 'x'],
      'an object': { size: 5 },
      null: null,
    };
    await writeFile(stateFile(), JSON.stringify({ version: 1, files }));
    const sc = await StatCache.load(root);
    for (const name of Object.keys(files)) expect(sc.lookup(name, st), name).toBe(name === 'good' ? OID : undefined);
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
