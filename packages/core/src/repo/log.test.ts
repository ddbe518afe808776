import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotFoundError, PointerParseError } from '../errors.js';
import { blake3Hex } from '../hash/blake3.js';
import { commitAll, gitSync, makeGitRepo } from '../testing/git-fixture.js';
import { add } from './add.js';
import { init } from './init.js';
import { log } from './log.js';
import { openRepo, type Repo } from './repo.js';

let dir: string;
let repo: Repo;
let c1: string; // model v1 + data v1
let c2: string; // data v2 only
let c3: string; // model v2

const oidOf = async (s: string): Promise<string> => `b3:${await blake3Hex(Buffer.from(s))}`;
const git = (...args: string[]): string => gitSync(dir, args).trim();

async function put(rel: string, content: string): Promise<void> {
  await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
  await writeFile(path.join(dir, rel), content);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

/** The tree oid of the one-file directory `data/` holding `a.txt` with `content`. */
async function treeOid(content: string): Promise<string> {
  return oidOf(`cpv-tree 1\n644 ${Buffer.byteLength(content)} ${(await oidOf(content)).slice(3)} a.txt\n`);
}

beforeEach(async () => {
  dir = await makeGitRepo('log');
  await init({ dir });
  repo = await openRepo({ cwd: dir });
  await put('model.bin', 'model v1\n');
  await put('data/a.txt', 'data v1\n');
  await add(repo, { cwd: dir, paths: ['model.bin'], kind: 'model', meta: { epochs: 3 } });
  await add(repo, { cwd: dir, paths: ['data'], kind: 'data' });
  c1 = commitAll(dir, 'first model');
  git('tag', 'v1');
  await put('data/a.txt', 'data v2\n');
  await add(repo, { cwd: dir, paths: ['data'] });
  c2 = commitAll(dir, 'more data');
  await put('model.bin', 'model v2\n');
  await add(repo, { cwd: dir, paths: ['model.bin'], meta: { epochs: 5 } });
  c3 = commitAll(dir, 'second model');
  git('tag', '-a', '-m', 'release 2', 'v2');
  git('tag', 'latest');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('log', () => {
  it('lists the versions of a model newest first, with tags, pointer fields and lineage', async () => {
    const r = await log(repo, { cwd: dir, targets: ['model.bin'] });
    expect(r.items).toHaveLength(1);
    const item = r.items[0]!;
    expect(item.path).toBe('model.bin');
    expect(item.pointerPath).toBe('model.bin.cpv');
    expect(item.versions.map((v) => v.commit)).toEqual([c3, c1]);
    const [newest, oldest] = item.versions as [(typeof item.versions)[0], (typeof item.versions)[0]];
    expect(newest).toMatchObject({
      subject: 'second model',
      author: 'Test User',
      email: 'test.user@example.com',
      tags: ['latest', 'v2'],
      kind: 'model',
      type: 'file',
      oid: await oidOf('model v2\n'),
      size: 9,
      meta: { epochs: 5 },
    });
    expect(newest.date).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(oldest).toMatchObject({ subject: 'first model', tags: ['v1'], oid: await oidOf('model v1\n'), meta: { epochs: 3 } });
    // Which data each model version was committed with.
    expect(newest.data).toEqual([{ path: 'data', oid: await treeOid('data v2\n') }]);
    expect(oldest.data).toEqual([{ path: 'data', oid: await treeOid('data v1\n') }]);
  });

  it('lists every pointer in HEAD by default; data versions carry no lineage', async () => {
    const r = await log(repo, { cwd: dir, targets: [] });
    expect(r.items.map((i) => i.path)).toEqual(['data', 'model.bin']);
    const data = r.items[0]!;
    expect(data.versions.map((v) => [v.commit, v.oid, v.type, v.files])).toEqual([
      [c2, await treeOid('data v2\n'), 'dir', 1],
      [c1, await treeOid('data v1\n'), 'dir', 1],
    ]);
    expect(data.versions.every((v) => v.data === undefined)).toBe(true);
  });

  it('limits the versions per path with maxCount', async () => {
    const r = await log(repo, { cwd: dir, targets: ['model.bin.cpv'], maxCount: 1 });
    expect(r.items[0]!.versions.map((v) => v.commit)).toEqual([c3]);
  });

  it('resolves a path inside a tracked directory, and from a subdirectory, to that directory', async () => {
    const r = await log(repo, { cwd: path.join(dir, 'data'), targets: ['a.txt'] });
    expect(r.items.map((i) => i.path)).toEqual(['data']);
  });

  it('shows a deletion, and a path tracked only in the past', async () => {
    git('rm', '--quiet', 'model.bin.cpv');
    const c4 = commitAll(dir, 'drop the model');
    const r = await log(repo, { cwd: dir, targets: ['model.bin'] });
    expect(r.items[0]!.versions.map((v) => [v.commit, v.deleted ?? false, v.oid])).toEqual([
      [c4, true, undefined],
      [c3, false, await oidOf('model v2\n')],
      [c1, false, await oidOf('model v1\n')],
    ]);
    // Not in HEAD any more: the default listing leaves it out.
    expect((await log(repo, { cwd: dir, targets: [] })).items.map((i) => i.path)).toEqual(['data']);
  });

  it('throws NotFoundError for a path git never recorded', async () => {
    const err = await rejection(log(repo, { cwd: dir, targets: ['nothing.bin'] }));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toContain('nothing.bin has no history');
  });

  it('throws PointerParseError naming the commit for a malformed pointer in history', async () => {
    await writeFile(path.join(dir, 'model.bin.cpv'), 'version: 1\nkind: model\npath: model.bin\n');
    const bad = commitAll(dir, 'broken pointer');
    const err = await rejection(log(repo, { cwd: dir, targets: ['model.bin'] }));
    expect(err).toBeInstanceOf(PointerParseError);
    expect((err as PointerParseError).file).toBe(`${bad.slice(0, 12)}:model.bin.cpv`);
  });

  it('works in a cpv repository below the git top level', async () => {
    const sub = path.join(dir, 'ml');
    await mkdir(sub);
    await init({ dir: sub });
    const inner = await openRepo({ cwd: sub });
    await writeFile(path.join(sub, 'w.bin'), 'weights\n');
    await add(inner, { cwd: sub, paths: ['w.bin'], kind: 'model' });
    await writeFile(path.join(sub, 'd.bin'), 'data\n');
    await add(inner, { cwd: sub, paths: ['d.bin'], kind: 'data' });
    const c = commitAll(dir, 'nested');
    const r = await log(inner, { cwd: sub, targets: [] });
    expect(r.items.map((i) => i.path)).toEqual(['d.bin', 'w.bin']);
    expect(r.items[1]!.versions).toEqual([expect.objectContaining({ commit: c, oid: await oidOf('weights\n'), data: [{ path: 'd.bin', oid: await oidOf('data\n') }] })]);
  });

  it('returns nothing in a repository without commits', async () => {
    const empty = await makeGitRepo('log-empty');
    try {
      await init({ dir: empty });
      expect(await log(await openRepo({ cwd: empty }), { cwd: empty, targets: [] })).toEqual({ items: [] });
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
