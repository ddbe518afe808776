import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Backend, OpOptions } from '../backend/backend.js';
import { DirectoryBackend } from '../backend/directory.js';
import { writeConfigFile } from '../config/config.js';
import { ConflictError, PointerParseError } from '../errors.js';
import { Remote, remoteKeys } from '../remote/remote.js';
import { Cache } from '../store/cache.js';
import { commitAll, gitSync, makeGitRepo } from '../testing/git-fixture.js';
import { seededBytes } from '../testing/seeded.js';
import { fetchObjects } from '../transfer/fetch.js';
import { pathExists } from '../util/fs-atomic.js';
import { add } from './add.js';
import { gc, gcWith, type GcObject, type GcResult } from './gc.js';
import { init } from './init.js';
import { openRepo, type Repo } from './repo.js';
import type { ReachScope } from './reachable.js';
import { push } from './sync.js';

const SMALL = { min: 1024, avg: 4096, max: 16384 };

let dir: string;
let remoteDir: string;
let repo: Repo;

/** `backend`, with the keys it removes recorded in order. */
function recordRemovals(backend: Backend): { backend: Backend; removed: string[] } {
  const removed: string[] = [];
  const wrapped = new Proxy(backend, {
    get(target, prop) {
      if (prop === 'remove') return (key: string, opts?: OpOptions) => (removed.push(key), target.remove(key, opts));
      const v: unknown = Reflect.get(target, prop);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { backend: wrapped, removed };
}

beforeEach(async () => {
  dir = await makeGitRepo('gc');
  remoteDir = path.join(dir, '..', `${path.basename(dir)}-remote`);
  await init({ dir, remote: remoteDir });
  await writeConfigFile(path.join(dir, '.cpv', 'config.local'), { chunker: SMALL });
  commitAll(dir, 'init cpv');
  repo = await openRepo({ cwd: dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(remoteDir, { recursive: true, force: true });
});

async function put(rel: string, bytes: Uint8Array): Promise<void> {
  const abs = path.join(dir, rel);
  await mkdir(path.dirname(abs), { recursive: true });
  await writeFile(abs, bytes);
}

/** Write and `cpv add` a path; returns its oid. */
async function track(rel: string, bytes?: Uint8Array): Promise<string> {
  if (bytes) await put(rel, bytes);
  return (await add(repo, { cwd: dir, paths: [rel] })).items[0]!.oid;
}

/** Stop tracking a path (pointer and data gone from the workspace). */
async function untrack(rel: string): Promise<void> {
  await rm(path.join(dir, rel), { recursive: true, force: true });
  await rm(path.join(dir, `${rel}.cpv`), { force: true });
}

function oids(objects: readonly GcObject[], kind: GcObject['kind']): string[] {
  return objects.filter((o) => o.kind === kind).map((o) => o.oid).sort();
}

async function remoteKeyList(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of new DirectoryBackend(remoteDir).list(prefix)) out.push(o.key);
  return out.sort();
}

/** The model: v2 changes 3 KB in the middle of v1, so the two share most chunks. */
const V1 = seededBytes(1, 80_000);
function v2(): Uint8Array {
  const b = Uint8Array.from(V1);
  b.set(seededBytes(9, 3000), 40_000);
  return b;
}

/** Fetch a file into a fresh cache from the remote and return its bytes (verified by fetch). */
async function fetchFresh(oid: string, size: number): Promise<Buffer> {
  const cache = new Cache(path.join(dir, '..', `${path.basename(dir)}-fresh-${Math.random().toString(16).slice(2)}`));
  await cache.init();
  const remote = await Remote.fromBackend('origin', new DirectoryBackend(remoteDir), cache);
  try {
    await fetchObjects(cache, remote, [{ oid, type: 'file', size, path: 'x' }], { jobs: 2 });
    return await readFile(cache.filePath(oid));
  } finally {
    await rm(cache.dir, { recursive: true, force: true });
  }
}

describe('gc: reachability', () => {
  it('keeps the workspace and HEAD by default; branches, tags and all commits widen the scope', async () => {
    const v1 = await track('model.bin', V1);
    commitAll(dir, 'model v1');
    gitSync(dir, ['tag', 'v1']);
    gitSync(dir, ['checkout', '--quiet', '-b', 'exp']);
    const extra = await track('extra.bin', seededBytes(5, 20_000));
    commitAll(dir, 'extra on a branch');
    gitSync(dir, ['checkout', '--quiet', 'main']);
    await rm(path.join(dir, 'extra.bin'));
    const v15 = await track('model.bin', seededBytes(15, 30_000));
    commitAll(dir, 'model v1.5');
    const cur = await track('model.bin', v2());
    commitAll(dir, 'model v2');
    const uncommitted = await track('new.bin', seededBytes(6, 5000));

    const plan = async (scope: ReachScope): Promise<string[]> =>
      oids((await gc(repo, { scope, dryRun: true })).cache.removed, 'file');
    expect(await plan({})).toEqual([v1, v15, extra].sort());
    expect(await plan({ allTags: true })).toEqual([v15, extra].sort());
    expect(await plan({ allBranches: true })).toEqual([v15]);
    expect(await plan({ allTags: true, allBranches: true })).toEqual([v15]);
    expect(await plan({ allCommits: true })).toEqual([]);
    // Dry runs delete nothing.
    for (const oid of [v1, v15, extra, cur, uncommitted]) expect(await repo.cache.hasFile(oid)).toBe(true);

    const r = await gc(repo, {});
    expect(r).toMatchObject({ dryRun: false, cancelled: false, scope: { allBranches: false, allTags: false, allCommits: false } });
    expect(r.commits).toBe(1);
    expect(oids(r.cache.removed, 'file')).toEqual([v1, v15, extra].sort());
    // Multi-chunk files lose their manifests with them, before the files themselves.
    expect(oids(r.cache.removed, 'manifest')).toEqual([v1, v15, extra].sort());
    const kinds = r.cache.removed.map((o) => o.kind);
    expect(kinds.lastIndexOf('manifest')).toBeLessThan(kinds.indexOf('file'));
    expect(r.cache.bytes).toBe(r.cache.removed.reduce((n, o) => n + o.size, 0));
    for (const oid of [v1, v15, extra]) {
      expect(await repo.cache.hasFile(oid)).toBe(false);
      expect(await pathExists(repo.cache.manifestPath(oid))).toBe(false);
    }
    for (const oid of [cur, uncommitted]) expect(await repo.cache.verifyFile(oid)).toBe(true);
    expect((await gc(repo, { dryRun: true })).cache.removed).toEqual([]);
  });

  it('a directory keeps its tree and every file in it; a replaced version loses only what it alone had', async () => {
    const shared = seededBytes(20, 30_000);
    await put('data/keep.bin', shared);
    await put('data/a.txt', seededBytes(21, 100));
    const t1 = await track('data');
    commitAll(dir, 'data v1');
    const oldA = (await repo.cache.readTree(t1)).find((e) => e.path === 'a.txt')!.oid;
    await put('data/a.txt', seededBytes(22, 100));
    const t2 = await track('data');
    commitAll(dir, 'data v2');
    const r = await gc(repo, {});
    expect(oids(r.cache.removed, 'tree')).toEqual([t1]);
    expect(oids(r.cache.removed, 'file')).toEqual([oldA]);
    for (const e of await repo.cache.readTree(t2)) expect(await repo.cache.verifyFile(e.oid)).toBe(true);
    expect(r.cache.removed[0]!.kind).toBe('tree');
  });

  it('refuses when a pointer in scope cannot be read, deleting nothing', async () => {
    const v1 = await track('model.bin', V1);
    commitAll(dir, 'v1');
    await writeFile(path.join(dir, 'model.bin.cpv'), 'version: 99\n');
    const broken = commitAll(dir, 'broken pointer');
    gitSync(dir, ['checkout', '--quiet', 'HEAD~1', '--', 'model.bin.cpv']);
    commitAll(dir, 'fixed pointer');
    const old = await track('old.bin', seededBytes(40, 3000));
    await untrack('old.bin');
    const err = await gc(repo, { scope: { allCommits: true } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PointerParseError);
    expect((err as PointerParseError).file).toBe(`${broken.slice(0, 12)}:model.bin.cpv`);
    expect(await repo.cache.hasFile(old)).toBe(true);
    // HEAD's pointer is fine: the default scope works.
    const r = await gc(repo, {});
    expect(oids(r.cache.removed, 'file')).toEqual([old]);
    expect(await repo.cache.hasFile(v1)).toBe(true);
  });

  it('leaves a shared cache (cache.dir outside the repository) alone', async () => {
    const shared = path.join(dir, '..', `${path.basename(dir)}-shared-cache`);
    await writeConfigFile(path.join(dir, '.cpv', 'config.local'), { chunker: SMALL, cache: { dir: shared } });
    repo = await openRepo({ cwd: dir });
    const v1 = await track('model.bin', V1);
    await track('model.bin', v2());
    try {
      const r = await gc(repo, {});
      expect(r.cache.skipped).toMatch(/may be shared/);
      expect(r.cache.removed).toEqual([]);
      expect(await repo.cache.hasFile(v1)).toBe(true);
    } finally {
      await rm(shared, { recursive: true, force: true });
    }
  });

  it('a declined confirmation deletes nothing; the plan it is shown is the one carried out', async () => {
    const v1 = await track('model.bin', V1);
    await track('model.bin', v2());
    let shown: GcResult | undefined;
    const no = await gc(repo, { confirm: async (p) => ((shown = p), false) });
    expect(no).toMatchObject({ cancelled: true, dryRun: true });
    expect(oids(shown!.cache.removed, 'file')).toEqual([v1]);
    expect(await repo.cache.hasFile(v1)).toBe(true);
    const yes = await gc(repo, { confirm: async () => true });
    expect(yes.cache.removed).toEqual(shown!.cache.removed);
    expect(await repo.cache.hasFile(v1)).toBe(false);
  });
});

describe('gc --cloud', () => {
  /** v1 and v2 of a model pushed one after the other (v2 dedups against v1's pack), plus an unreachable file and directory. */
  async function history(): Promise<{ v1: string; cur: string; c: string; tree: string; cBytes: Uint8Array }> {
    const v1 = await track('model.bin', V1);
    commitAll(dir, 'v1');
    await push(repo, { cwd: dir, targets: [] });
    const cBytes = seededBytes(7, 40_000);
    const c = await track('c.bin', cBytes);
    await put('d/one.txt', seededBytes(30, 200));
    await put('d/big.bin', seededBytes(31, 30_000));
    const tree = await track('d');
    await push(repo, { cwd: dir, targets: [] });
    await untrack('c.bin');
    await untrack('d');
    const cur = await track('model.bin', v2());
    commitAll(dir, 'v2');
    await push(repo, { cwd: dir, targets: [] });
    return { v1, cur, c, tree, cBytes };
  }

  it('never deletes objects younger than the grace period', async () => {
    const { v1 } = await history();
    const before = await remoteKeyList('');
    const r = await gc(repo, { cloud: true });
    expect(r.remote!.removed).toEqual([]);
    expect(r.graceMs).toBe(7 * 86_400_000);
    expect(oids(r.remote!.young, 'manifest')).toContain(v1);
    expect(r.remote!.young.some((o) => o.kind === 'tree')).toBe(true);
    expect(r.remote!.young.some((o) => o.kind === 'pack')).toBe(true);
    expect(await remoteKeyList('')).toEqual(before);
    // A week later they are old.
    const later = await gc(repo, { cloud: true, dryRun: true, now: Date.now() + 8 * 86_400_000 });
    expect(oids(later.remote!.removed, 'manifest')).toContain(v1);
  });

  it('deletes trees, then manifests, then packs; keeps and reports partly referenced packs; forgets deleted packs', async () => {
    const { v1, cur, c, tree } = await history();
    // The chunks only v1 had: what its pack keeps without use once v1 is gone.
    const v1Chunks = (await repo.cache.readManifest(v1))!.chunks;
    const v2Chunks = new Set((await repo.cache.readManifest(cur))!.chunks.map(([o]) => o));
    const onlyV1 = v1Chunks.filter(([o]) => !v2Chunks.has(o)).reduce((n, [, len]) => n + len, 0);
    expect(onlyV1).toBeGreaterThan(0);
    const m1 = JSON.parse(await readFile(path.join(remoteDir, remoteKeys.manifest(v1)), 'utf8')) as { packs: string[] };
    const mc = JSON.parse(await readFile(path.join(remoteDir, remoteKeys.manifest(c)), 'utf8')) as { packs: string[] };

    const big = await bigOf(tree);
    const backend = recordRemovals(new DirectoryBackend(remoteDir));
    const remote = await Remote.fromBackend('origin', backend.backend, repo.cache);
    const r = await gcWith(repo, remote, { cloud: true, graceMs: 0 });
    const g = r.remote!;
    expect(oids(g.removed, 'tree')).toEqual([tree]);
    expect(oids(g.removed, 'manifest')).toEqual([v1, c, big].sort());
    // c's and d's pack went; v1's pack stays for v2, its v1-only chunks reported reclaimable.
    expect(oids(g.removed, 'pack')).toEqual(mc.packs.sort());
    expect(g.partial).toEqual([{ key: remoteKeys.pack(m1.packs[0]!), pack: m1.packs[0], size: expect.any(Number), reclaimable: onlyV1 }]);
    expect(g.reclaimableBytes).toBe(onlyV1);
    expect(g.unreadable).toEqual([]);

    // Reverse write order, as recorded by the backend.
    expect([...backend.removed].sort()).toEqual(g.removed.map((o) => o.key).sort());
    const rank = (key: string): number => ['trees/', 'manifests/', 'packs/'].findIndex((p) => key.startsWith(p));
    const ranks = backend.removed.map(rank);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    expect(new Set(ranks)).toEqual(new Set([0, 1, 2]));
    for (const key of g.removed.map((o) => o.key)) expect(await pathExists(path.join(remoteDir, key))).toBe(false);
    expect(await pathExists(path.join(remoteDir, remoteKeys.manifest(cur)))).toBe(true);
    expect(await pathExists(path.join(remoteDir, 'cpv-remote.json'))).toBe(true);

    // Dedup knowledge no longer names a deleted pack.
    const known = await remote.knownChunks();
    for (const loc of known.values()) expect(mc.packs).not.toContain(loc.pack);
    expect([...known.values()].some((loc) => loc.pack === m1.packs[0])).toBe(true);
    await remote.close();

    // v2 still pulls from a fresh cache, byte for byte.
    expect((await fetchFresh(cur, 80_000)).equals(Buffer.from(v2()))).toBe(true);
  });

  it('a push after gc re-uploads what was deleted and references no deleted pack', async () => {
    const { c, cBytes } = await history();
    await gc(repo, { cloud: true, graceMs: 0 });
    expect(await pathExists(path.join(remoteDir, remoteKeys.manifest(c)))).toBe(false);
    await track('c.bin', cBytes);
    const pushed = await push(repo, { cwd: dir, targets: ['c.bin'] });
    expect(pushed.chunks).toBeGreaterThan(0);
    expect(pushed.dedupBytes).toBe(0);
    const m = JSON.parse(await readFile(path.join(remoteDir, remoteKeys.manifest(c)), 'utf8')) as { packs: string[] };
    for (const p of m.packs) expect(await pathExists(path.join(remoteDir, remoteKeys.pack(p)))).toBe(true);
    expect((await fetchFresh(c, cBytes.length)).equals(Buffer.from(cBytes))).toBe(true);
  });

  it('another client with stale knowledge of a deleted pack still pushes correctly', async () => {
    // Bob pushes c from his own workspace; Alice's gc does not know his pointer.
    const bobDir = path.join(dir, '..', `${path.basename(dir)}-bob`);
    await mkdir(bobDir);
    try {
      await init({ dir: bobDir, remote: remoteDir, noScm: true });
      await writeConfigFile(path.join(bobDir, '.cpv', 'config.local'), { chunker: SMALL });
      const bob = await openRepo({ cwd: bobDir });
      const cBytes = seededBytes(7, 40_000);
      await writeFile(path.join(bobDir, 'c.bin'), cBytes);
      await add(bob, { cwd: bobDir, paths: ['c.bin'] });
      await push(bob, { cwd: bobDir, targets: [] });
      await track('model.bin', V1);
      commitAll(dir, 'v1');
      await push(repo, { cwd: dir, targets: [] });
      const r = await gc(repo, { cloud: true, graceMs: 0 });
      expect(r.remote!.removed.some((o) => o.kind === 'pack')).toBe(true);

      // Bob's next file shares c's chunks, which his knowledge places in a deleted pack.
      const c2 = Buffer.concat([cBytes, seededBytes(8, 9000)]);
      await writeFile(path.join(bobDir, 'c2.bin'), c2);
      const oid = (await add(bob, { cwd: bobDir, paths: ['c2.bin'] })).items[0]!.oid;
      await push(bob, { cwd: bobDir, targets: ['c2.bin'] });
      const m = JSON.parse(await readFile(path.join(remoteDir, remoteKeys.manifest(oid)), 'utf8')) as { packs: string[] };
      for (const p of m.packs) expect(await pathExists(path.join(remoteDir, remoteKeys.pack(p)))).toBe(true);
      expect((await fetchFresh(oid, c2.length)).equals(c2)).toBe(true);
    } finally {
      await rm(bobDir, { recursive: true, force: true });
    }
  });

  it('spares packs that a record written while gc ran names (a concurrent push)', async () => {
    const { c } = await history();
    const mc = JSON.parse(await readFile(path.join(remoteDir, remoteKeys.manifest(c)), 'utf8')) as { packs: string[]; chunks: Array<[string, number, number, number]>; chunker: unknown };
    const [chunk, length, , offset] = mc.chunks[0]!;
    const backend = new DirectoryBackend(remoteDir);
    const remote = await Remote.fromBackend('origin', backend, repo.cache);
    const r = await gcWith(repo, remote, {
      cloud: true,
      graceMs: 0,
      // After planning: a teammate publishes a file made of c's first chunk, in c's pack.
      confirm: async (plan) => {
        expect(oids(plan.remote!.removed, 'pack')).toContain(mc.packs[0]);
        const body = { format: 'cpv-manifest', version: 1, oid: `b3:${chunk}`, size: length, chunker: mc.chunker, packs: [mc.packs[0]], chunks: [[chunk, length, 0, offset]] };
        await backend.save(remoteKeys.manifest(`b3:${chunk}`), Buffer.from(JSON.stringify(body) + '\n'));
        return true;
      },
    });
    await remote.close();
    expect(r.remote!.spared).toBe(1);
    expect(oids(r.remote!.removed, 'pack')).not.toContain(mc.packs[0]);
    expect(await pathExists(path.join(remoteDir, remoteKeys.pack(mc.packs[0]!)))).toBe(true);
    expect(await fetchFresh(`b3:${chunk}`, length)).toHaveLength(length);
  });

  it('deletes no pack while a kept record cannot be read', async () => {
    const { cur } = await history();
    const file = path.join(remoteDir, remoteKeys.manifest(cur));
    await chmod(file, 0o644);
    await writeFile(file, '{"format":"cpv-manifest","version":1,');
    const r = await gc(repo, { cloud: true, graceMs: 0 });
    expect(r.remote!.unreadable.map((u) => u.key)).toEqual([remoteKeys.manifest(cur)]);
    expect(r.remote!.unreadable[0]!.reason).toMatch(/not valid JSON/);
    expect(oids(r.remote!.removed, 'pack')).toEqual([]);
    expect(oids(r.remote!.removed, 'manifest').length).toBeGreaterThan(0);
    expect((await remoteKeyList('packs/')).length).toBe(r.remote!.kept.packs);
  });

  it('takes the repository lock, unless a dry run', async () => {
    await history();
    const lock = path.join(dir, '.cpv', 'tmp', 'lock');
    const { spawn } = await import('node:child_process');
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await writeFile(lock, JSON.stringify({ format: 'cpv-lock', version: 1, pid: other.pid, hostname: (await import('node:os')).hostname(), started: new Date().toISOString(), command: 'push', token: 'x' }));
      expect(await gc(repo, { cloud: true, graceMs: 0 }).catch((e: unknown) => e)).toBeInstanceOf(ConflictError);
      expect((await gc(repo, { cloud: true, graceMs: 0, dryRun: true })).remote!.removed.length).toBeGreaterThan(0);
    } finally {
      other.kill();
    }
  });
});

describe('gc --cloud: paged manifests', () => {
  /** Over 256 chunks: a version 2 manifest. v2 changes a few bytes at a seeded place. */
  const P1 = seededBytes(50, 1_500_000);
  const p2 = (): Uint8Array => {
    const b = Uint8Array.from(P1);
    b.set(seededBytes(51, 300), 500_000 + (seededBytes(52, 2).reduce((x, y) => x * 256 + y, 0) % 500_000));
    return b;
  };
  const pagesOf = async (oid: string): Promise<string[]> => {
    const root = JSON.parse(await readFile(path.join(remoteDir, remoteKeys.manifest(oid)), 'utf8')) as { version: number; pages: Array<[string, number, number]> };
    expect(root.version).toBe(2);
    return root.pages.map(([p]) => p);
  };
  const packsOfPages = async (pages: readonly string[]): Promise<string[]> => {
    const out = new Set<string>();
    for (const p of pages) for (const pack of (JSON.parse(await readFile(path.join(remoteDir, remoteKeys.page(p)), 'utf8')) as { packs: string[] }).packs) out.add(pack);
    return [...out].sort();
  };
  /** Set every remote object's modification time `days` days back. */
  const age = async (days: number, keys?: readonly string[]): Promise<void> => {
    const { utimes } = await import('node:fs/promises');
    const t = new Date(Date.now() - days * 86_400_000);
    for (const k of keys ?? (await remoteKeyList(''))) await utimes(path.join(remoteDir, k), t, t);
  };

  /** v1 then v2 of a paged model (v2 shares most pages), and an unreachable paged file c. */
  async function pagedHistory(): Promise<{ v1: string; cur: string; c: string }> {
    const v1 = await track('model.bin', P1);
    commitAll(dir, 'v1');
    await push(repo, { cwd: dir, targets: [] });
    const c = await track('c.bin', seededBytes(53, 1_200_000));
    await push(repo, { cwd: dir, targets: [] });
    await untrack('c.bin');
    const cur = await track('model.bin', p2());
    commitAll(dir, 'v2');
    await push(repo, { cwd: dir, targets: [] });
    return { v1, cur, c };
  }

  it('deletes the pages only unreachable manifests name, in the order trees, manifests, pages, packs', async () => {
    const { v1, cur, c } = await pagedHistory();
    const [pv1, pcur, pc] = [await pagesOf(v1), await pagesOf(cur), await pagesOf(c)];
    const onlyV1 = pv1.filter((p) => !pcur.includes(p));
    const cPacks = await packsOfPages(pc);
    expect(onlyV1.length).toBeGreaterThanOrEqual(1);
    expect(onlyV1.length).toBeLessThanOrEqual(2);
    const backend = recordRemovals(new DirectoryBackend(remoteDir));
    const remote = await Remote.fromBackend('origin', backend.backend, repo.cache);
    const r = await gcWith(repo, remote, { cloud: true, graceMs: 0 });
    await remote.close();
    const g = r.remote!;
    expect(oids(g.removed, 'manifest')).toEqual([v1, c].sort());
    expect(oids(g.removed, 'page')).toEqual([...new Set([...onlyV1, ...pc])].sort());
    // c was pushed on its own: its packs hold only its chunks. v1's pack stays for v2.
    expect(oids(g.removed, 'pack')).toEqual(cPacks);
    expect(g.partial.length).toBe(1);
    expect(g.kept.pages).toBe(new Set(pcur).size);
    expect(g.unreadable).toEqual([]);
    const rank = (key: string): number => ['trees/', 'manifests/', 'pages/', 'packs/'].findIndex((p) => key.startsWith(p));
    const ranks = backend.removed.map(rank);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    expect(new Set(ranks)).toEqual(new Set([1, 2, 3]));
    expect((await remoteKeyList('pages/')).sort()).toEqual(pcur.map((p) => remoteKeys.page(p)).sort());
    // Every pack the kept pages name is there, and v2 pulls from a fresh cache.
    for (const p of await packsOfPages(pcur)) expect(await pathExists(path.join(remoteDir, remoteKeys.pack(p)))).toBe(true);
    expect((await fetchFresh(cur, P1.length)).equals(Buffer.from(p2()))).toBe(true);
  });

  it('keeps young pages and the packs they name, even with no manifest naming them', async () => {
    const { c } = await pagedHistory();
    const pc = await pagesOf(c);
    const cPacks = await packsOfPages(pc);
    // As after a push interrupted before its root: c's pages are there, its manifest is not.
    await rm(path.join(remoteDir, remoteKeys.manifest(c)));
    await age(30);
    await age(0, pc.map((p) => remoteKeys.page(p)));
    const r = await gc(repo, { cloud: true, graceMs: 7 * 86_400_000 });
    expect(oids(r.remote!.removed, 'page').filter((p) => pc.includes(p))).toEqual([]);
    expect(oids(r.remote!.young, 'page')).toEqual(expect.arrayContaining([...new Set(pc)]));
    for (const p of cPacks) expect(await pathExists(path.join(remoteDir, remoteKeys.pack(p)))).toBe(true);
    // Once old, they go, and so does the pack only they named.
    await age(30, pc.map((p) => remoteKeys.page(p)));
    const later = await gc(repo, { cloud: true, graceMs: 7 * 86_400_000 });
    expect(oids(later.remote!.removed, 'page')).toEqual(expect.arrayContaining([...new Set(pc)]));
    expect(oids(later.remote!.removed, 'pack').length).toBeGreaterThan(0);
  });

  it('spares pages and packs that a manifest or page written while gc ran names', async () => {
    const { c } = await pagedHistory();
    const pc = await pagesOf(c);
    const root = await readFile(path.join(remoteDir, remoteKeys.manifest(c)), 'utf8');
    const backend = new DirectoryBackend(remoteDir);
    const remote = await Remote.fromBackend('origin', backend, repo.cache);
    // A teammate publishes, after the plan, a file whose manifest names c's pages (same content).
    const other = `b3:${'7'.repeat(64)}`;
    const r = await gcWith(repo, remote, {
      cloud: true,
      graceMs: 0,
      confirm: async (plan) => {
        expect(oids(plan.remote!.removed, 'page')).toEqual(expect.arrayContaining(pc));
        await backend.save(remoteKeys.manifest(other), Buffer.from(root.replace(c, other)));
        return true;
      },
    });
    const cPacks = await packsOfPages(pc);
    expect(r.remote!.spared).toBe(new Set(pc).size + cPacks.length);
    for (const p of pc) expect(await pathExists(path.join(remoteDir, remoteKeys.page(p)))).toBe(true);
    for (const p of cPacks) expect(await pathExists(path.join(remoteDir, remoteKeys.pack(p)))).toBe(true);
    expect((await remote.loadManifest(other)).pages).toEqual(pc);
    await remote.close();
  });

  it('deletes no page and no pack while a kept manifest names a missing page', async () => {
    const { cur } = await pagedHistory();
    const pcur = await pagesOf(cur);
    await rm(path.join(remoteDir, remoteKeys.page(pcur[0]!)));
    const r = await gc(repo, { cloud: true, graceMs: 0 });
    expect(r.remote!.unreadable.map((u) => u.key)).toEqual([remoteKeys.manifest(cur)]);
    expect(r.remote!.unreadable[0]!.reason).toMatch(/names page [0-9a-f]{12} .* which is not on the remote/);
    expect(oids(r.remote!.removed, 'page')).toEqual([]);
    expect(oids(r.remote!.removed, 'pack')).toEqual([]);
  });
});

/** The oid of `big.bin` in tree `tree` (a multi-chunk file: it has a manifest of its own). */
async function bigOf(tree: string): Promise<string> {
  return (await repo.cache.readTree(tree)).find((x) => x.path === 'big.bin')!.oid;
}
