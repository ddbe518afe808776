// The bad-input corpus (fixtures/bad/, indexed by fixtures/bad/cases.json): malformed
// pointers, configs, tree listings, remote manifests and version tags, plus cases
// built here because they cannot sanely be committed (huge files, names that are not
// UTF-8, symbolic links that leave the repository). Each goes through the real CLI in
// its own copy of a small repository, and must be refused: the expected exit code, an
// error that says what is wrong and names the file (and line), a hint, no stack trace,
// and nothing written anywhere (the repository, its cache, the remote, the
// directory hostile paths aim at).
import { chmod, cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cpvJson, objectPath, readPointerFile, REPO_ROOT, runCpv, useHome } from './support/cpv.js';
import { cloneRepo, commitAll, git, makeOrigin, pushGit } from './support/git.js';
import { randomBytes } from './support/model.js';
import { makeTempDir, removeTempDir, snapshotTree } from './support/fsutil.js';
import { blake3Hex } from './support/remote-check.js';

const FIXTURES = join(REPO_ROOT, 'fixtures', 'bad');
const KiB = 1024;

type Category = 'pointer' | 'config' | 'tree' | 'manifest' | 'tag' | 'generated';

/** One entry of cases.json; category defaults fill what a case leaves out. */
interface BadCase {
  /** Fixture path relative to fixtures/bad, or `generated/<name>` for a case built here. */
  id: string;
  why: string;
  /** Substring the error message must contain. */
  error: string;
  /** Substring that names the file (and line) in the message; computed here for trees, manifests and tags. */
  where?: string;
  exit: number;
  /** Where the fixture goes, relative to the repository (pointers and configs). */
  install?: string;
  /** Commands to run, each of which must refuse. */
  run: string[][];
  /** Drop model.bin's object from the cache first (so a command would have to fetch it). */
  uncached?: boolean;
}

interface Index {
  defaults: Record<Exclude<Category, 'generated'>, Partial<BadCase>>;
  cases: Array<Partial<BadCase> & { id: string; why: string; error: string }>;
}

const index = JSON.parse(readFileSync(join(FIXTURES, 'cases.json'), 'utf8')) as Index;
const categoryOf = (id: string): Category => id.split('/')[0] as Category;
const cases: BadCase[] = index.cases.map((c) => {
  const cat = categoryOf(c.id);
  return { ...(cat === 'generated' ? {} : index.defaults[cat]), ...c } as BadCase;
});

/** The default chunker, as manifests carry it (docs/format.md). */
const CHUNKER = { algorithm: 'fastcdc-v1', gear: 'cpv-gear-v1', min: 16384, avg: 65536, max: 262144, align: 'tensors' };

describe('bad input is refused with a clear error, and nothing is written', () => {
  let root: string;
  let base: string; // a repository with model.bin and data/ tracked, committed and pushed
  let baseRemote: string;
  let modelOid: string;
  let modelSize: number;
  let dataOid: string;

  /** A case's own copy of the repository and the remote, and an `outside` directory that hostile paths aim at. */
  const caseDirs = async (c: BadCase) => {
    const dir = join(root, 'cases', c.id.replace(/[^\w-]+/g, '_'));
    const repo = join(dir, 'repo');
    const remote = join(dir, 'remote');
    const outside = join(dir, 'outside');
    await cp(base, repo, { recursive: true, preserveTimestamps: true });
    await cp(baseRemote, remote, { recursive: true, preserveTimestamps: true });
    await mkdir(outside);
    await writeFile(join(outside, 'secret.bin'), 'not yours\n');
    // The copy uses its own remote (config.local overrides the committed url).
    await writeFile(join(repo, '.cpv', 'config.local'), `remotes:\n  origin:\n    url: ${remote}\n`);
    return { dir, repo, remote, outside };
  };

  /** Fill a fixture's placeholders (ASCII), leaving any other byte as it is. */
  const fill = (bytes: Buffer, vars: Record<string, string>): Buffer =>
    Buffer.from(bytes.toString('latin1').replace(/@([A-Z_]+)@/g, (m, k: string) => vars[k] ?? m), 'latin1');

  /**
   * Run each command of `runs` in `repo`: every one must exit with `exit`, say `error`,
   * name `where`, give a hint and no stack trace, and leave everything under `dir` (the
   * repository, its cache, the remote, the outside directory) and the rest of the test's
   * temp root exactly as it was.
   */
  const expectRefused = async (c: BadCase, dir: string, repo: string, where: string, runs = c.run): Promise<void> => {
    // The stat cache (.cpv/tmp) is scratch space cpv may rewrite, and git refreshes its index.
    const everything = () => snapshotTree(dir, { exclude: (rel) => rel === 'repo/.git/index' || rel === 'repo/.cpv/tmp' });
    const before = await everything();
    const elsewhere = await snapshotTree(root, { exclude: ['cases'] });
    for (const args of runs) {
      const r = await runCpv(repo, args);
      const what = `cpv ${args.join(' ')} (${c.id}: ${c.why})\n${r.stderr}`;
      expect(r.exitCode, what).toBe(c.exit);
      expect(r.stderr, what).toContain(c.error);
      expect(r.stderr, what).toContain(where);
      expect(r.stderr, what).toMatch(/\n {2}hint: \S/);
      expect(r.stderr, what).not.toMatch(/internal error|\n\s+at \S+ \(|\n\s+at \S+:\d+:\d+/);
      expect(r.stdout, what).toBe('');
    }
    expect(await everything()).toEqual(before);
    expect(await snapshotTree(root, { exclude: ['cases'] })).toEqual(elsewhere);
  };

  /** Remove model.bin from the workspace (and from the cache too when asked): a command that took the bad input would write it. */
  const withoutModel = async (repo: string, uncached?: boolean): Promise<void> => {
    await rm(join(repo, 'model.bin'));
    if (uncached) {
      await rm(objectPath(join(repo, '.cpv', 'cache', 'files'), modelOid));
      await rm(objectPath(join(repo, '.cpv', 'cache', 'manifests'), modelOid), { force: true });
    }
  };

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('bad-input');
    useHome(join(root, 'home'));
    const origin = await makeOrigin(join(root, 'origin.git'));
    baseRemote = join(root, 'remote');
    base = await cloneRepo(origin, join(root, 'base'));
    await cpvJson(base, ['init', '--remote', baseRemote]);
    await writeFile(join(base, 'model.bin'), randomBytes(61, 300 * KiB));
    await mkdir(join(base, 'data'));
    for (const [i, n] of ['a', 'b', 'c'].entries()) await writeFile(join(base, 'data', `${n}.bin`), randomBytes(62 + i, (i + 1) * KiB));
    await cpvJson(base, ['add', 'model.bin', '--kind', 'model']);
    await cpvJson(base, ['add', 'data', '--kind', 'data']);
    await commitAll(base, 'Track model.bin and data');
    await pushGit(base);
    await cpvJson(base, ['push']);
    const p = await readPointerFile(join(base, 'model.bin.cpv'));
    modelOid = p.oid!;
    modelSize = Number(p.size);
    dataOid = (await readPointerFile(join(base, 'data.cpv'))).oid!;
    await mkdir(join(root, 'cases'));
  });
  afterAll(() => removeTempDir(root));

  it('the corpus has at least 50 cases, and every fixture file is in the index', () => {
    expect(cases.length).toBeGreaterThanOrEqual(50);
    const indexed = new Set(cases.map((c) => c.id));
    for (const dir of ['pointer', 'config', 'tree', 'manifest', 'tag']) {
      for (const f of readdirSync(join(FIXTURES, dir))) expect(indexed.has(`${dir}/${f}`), `${dir}/${f} is not in cases.json`).toBe(true);
    }
    for (const c of cases) expect(c.error.length, `${c.id} has no expected error`).toBeGreaterThan(0);
  });

  const of = (cat: Category) => cases.filter((c) => categoryOf(c.id) === cat);

  it.concurrent.for(of('pointer'))('pointer $id: $why', async (c) => {
    const { dir, repo, outside } = await caseDirs(c);
    const vars = { OID: modelOid, SIZE: String(modelSize), SIZE_PLUS_ONE: String(modelSize + 1), OUTSIDE: outside, DATA_OID: dataOid };
    await writeFile(join(repo, c.install!), fill(await readFile(join(FIXTURES, c.id)), vars));
    await withoutModel(repo, c.uncached);
    await expectRefused(c, dir, repo, c.where ?? c.install!);
  });

  it.concurrent.for(of('config'))('config $id: $why', async (c) => {
    const { dir, repo, remote } = await caseDirs(c);
    await writeFile(join(repo, c.install!), fill(await readFile(join(FIXTURES, c.id)), { REMOTE: remote }));
    await expectRefused(c, dir, repo, c.where ?? `${repo}/${c.install}`);
  });

  it.concurrent.for(of('tree'))('tree listing $id: $why', async (c) => {
    const { dir, repo, remote } = await caseDirs(c);
    const bytes = await readFile(join(FIXTURES, c.id));
    const lines = bytes.toString('utf8').split('\n').length - 2;
    /** Point data.cpv at a tree with this oid. */
    const pointAt = async (oid: string) =>
      writeFile(join(repo, 'data.cpv'), `version: 1\nkind: data\npath: data\ntype: dir\noid: ${oid}\nsize: 3\nfiles: ${lines}\n`);
    await rm(join(repo, 'data'), { recursive: true });

    // On the remote: a tree index whose listing hashes to the oid the pointer names.
    // JSON carries text, so a listing that is not UTF-8 arrives with U+FFFD in it.
    const text = bytes.toString('utf8');
    const remoteOid = `b3:${await blake3Hex(Buffer.from(text, 'utf8'))}`;
    const indexFile = objectPath(join(remote, 'trees'), remoteOid);
    await mkdir(join(indexFile, '..'), { recursive: true });
    await writeFile(indexFile, JSON.stringify({ format: 'cpv-tree-index', version: 1, oid: remoteOid, tree: text, packs: [], entries: Array(Math.max(lines, 0)).fill(null) }) + '\n');
    await pointAt(remoteOid);
    await expectRefused(c, dir, repo, `remote tree ${remoteOid.slice(0, 15)} on origin`, [['pull', 'data']]);

    // In the cache: the listing's exact bytes under their own hash.
    const cacheOid = `b3:${await blake3Hex(bytes)}`;
    const cached = objectPath(join(repo, '.cpv', 'cache', 'trees'), cacheOid);
    await mkdir(join(cached, '..'), { recursive: true });
    await writeFile(cached, bytes);
    await chmod(cached, 0o444);
    await pointAt(cacheOid);
    await expectRefused(c, dir, repo, `tree ${cacheOid.slice(0, 15)}`, [['checkout', 'data']]);
  });

  it.concurrent.for(of('manifest'))('remote manifest $id: $why', async (c) => {
    const { dir, repo, remote } = await caseDirs(c);
    const vars = { OID: modelOid, SIZE: String(modelSize), SIZE_MINUS_ONE: String(modelSize - 1), CHUNKER: JSON.stringify(CHUNKER) };
    const file = objectPath(join(remote, 'manifests'), modelOid);
    await chmod(file, 0o644);
    await writeFile(file, fill(await readFile(join(FIXTURES, c.id)), vars));
    await withoutModel(repo, true);
    await expectRefused(c, dir, repo, `remote manifest ${modelOid.slice(0, 15)} on origin`);
  });

  it.concurrent.for(of('tag'))('version tag $id: $why', async (c) => {
    const { dir, repo } = await caseDirs(c);
    const message = join(dir, 'message.txt');
    await writeFile(message, fill(await readFile(join(FIXTURES, c.id)), { OID: modelOid, SIZE: String(modelSize) }));
    await git(repo, ['tag', '-a', 'v-bad', '--cleanup=verbatim', '-F', message]);
    await rm(message);
    await expectRefused(c, dir, repo, c.where ?? 'version tag "v-bad"');
  });

  /** Cases built here: what they set up in a case's copy. */
  const generated: Record<string, (d: Awaited<ReturnType<typeof caseDirs>>) => Promise<void>> = {
    'generated/pointer-huge': async ({ repo }) => {
      await writeFile(join(repo, 'model.bin.cpv'), (await readFile(join(repo, 'model.bin.cpv'), 'utf8')) + '# padding\n'.repeat(100_000));
      await withoutModel(repo);
    },
    'generated/pointer-name-not-utf8': async ({ repo }) => {
      await writeFile(Buffer.concat([Buffer.from(join(repo, 'caf')), Buffer.from([0xe9]), Buffer.from('.bin.cpv')]), await readFile(join(repo, 'model.bin.cpv')));
    },
    'generated/pointer-symlink-out': async ({ repo, outside }) => {
      await writeFile(join(outside, 'model.bin.cpv'), await readFile(join(repo, 'model.bin.cpv')));
      await rm(join(repo, 'model.bin.cpv'));
      await symlink(join(outside, 'model.bin.cpv'), join(repo, 'model.bin.cpv'));
      await withoutModel(repo);
    },
    'generated/checkout-through-symlinked-dir': async ({ repo, outside }) => {
      await writeFile(join(outside, 'model.bin.cpv'), await readFile(join(repo, 'model.bin.cpv')));
      await symlink(outside, join(repo, 'link'));
    },
    'generated/add-through-symlinked-dir': async ({ repo, outside }) => {
      await symlink(outside, join(repo, 'link'));
    },
    'generated/add-symlink-out': async ({ repo, outside }) => {
      await symlink(join(outside, 'secret.bin'), join(repo, 'evil.bin'));
    },
    'generated/add-dir-with-symlink-out': async ({ repo, outside }) => {
      await mkdir(join(repo, 'more'));
      await writeFile(join(repo, 'more', 'ok.bin'), 'fine\n');
      await symlink(join(outside, 'secret.bin'), join(repo, 'more', 'leak.bin'));
    },
    'generated/add-name-not-utf8': async ({ repo }) => {
      await mkdir(join(repo, 'raw'));
      await writeFile(Buffer.concat([Buffer.from(join(repo, 'raw', 'caf')), Buffer.from([0xe9]), Buffer.from('.bin')]), 'latin-1 name\n');
    },
    'generated/tag-block-huge': async ({ dir, repo }) => {
      const art = `  - name: model.bin\n    kind: model\n    path: model.bin\n    type: file\n    oid: ${modelOid}\n    size: ${modelSize}\n`;
      const message = join(dir, 'message.txt');
      await writeFile(message, `Huge\n\n-----BEGIN CPV VERSION-----\nversion: 1\nartifacts:\n${art}${'# padding\n'.repeat(500_000)}-----END CPV VERSION-----\n`);
      await git(repo, ['tag', '-a', 'v-bad', '--cleanup=verbatim', '-F', message]);
      await rm(message);
    },
  };

  it('every generated case has a builder, and every builder a case', () => {
    expect(Object.keys(generated).sort()).toEqual(of('generated').map((c) => c.id).sort());
  });

  it.concurrent.for(of('generated'))('$id: $why', async (c) => {
    const d = await caseDirs(c);
    await generated[c.id]!(d);
    const here = (s: string) => s.replace('@OUTSIDE@', d.outside);
    await expectRefused({ ...c, error: here(c.error) }, d.dir, d.repo, here(c.where ?? ''));
  });
});
