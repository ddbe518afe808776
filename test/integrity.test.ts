// Corrupt bytes anywhere (remote packs, remote trees, the local cache) must be caught
// before they reach the workspace: the command fails with an integrity error, and the
// workspace and the cache's final names hold nothing unverified.
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cpvJson, cpvJsonResult, objectPath, readPointerFile, runCpv, useHome, type ErrorJson, type PullJson } from './support/cpv.js';
import { cloneRepo, commitAll, makeOrigin, pushGit } from './support/git.js';
import { b3sum, writeDataset, writeModel } from './support/model.js';
import { flipByte, listFiles, makeTempDir, removeTempDir, snapshotTree } from './support/fsutil.js';

const MiB = 1024 * 1024;

describe('integrity: corruption is detected and never reaches the workspace', () => {
  let root: string;
  let origin: string;
  let remote: string;
  let modelOid: string;
  let dataOid: string;
  let dataset: string[];
  let clones = 0;

  /** A fresh clone of origin (pointers only, empty cache). */
  const freshClone = async (): Promise<string> => cloneRepo(origin, join(root, `clone-${++clones}`), `User ${clones}`);
  /** Everything in a clone except git's and cpv's own directories. */
  const workspace = (dir: string) => snapshotTree(dir, { exclude: ['.git', '.cpv'] });

  /**
   * Every object under a cache's `files/` must hash to its name: an object that fails
   * verification never gets a final name. Returns the oids present.
   */
  const verifiedCacheFiles = async (clone: string): Promise<string[]> => {
    const dir = join(clone, '.cpv', 'cache', 'files');
    const oids: string[] = [];
    for (const rel of await listFiles(dir)) {
      const hex = rel.replace('/', '');
      expect(await b3sum(join(dir, rel)), `cache object ${rel}`).toBe(hex);
      oids.push(`b3:${hex}`);
    }
    return oids;
  };

  /** Replace a read-only remote object's bytes for the duration of `fn`, then restore them. */
  const tampered = async (file: string, edit: (bytes: Buffer) => Buffer, fn: () => Promise<void>): Promise<void> => {
    const original = await readFile(file);
    await chmod(file, 0o644);
    await writeFile(file, edit(Buffer.from(original)));
    try {
      await fn();
    } finally {
      await writeFile(file, original);
      await chmod(file, 0o444);
    }
  };

  beforeAll(async () => {
    assertBuilt();
    root = await makeTempDir('integrity');
    useHome(join(root, 'home'));
    origin = await makeOrigin(join(root, 'origin.git'));
    remote = join(root, 'remote');
    const a = await cloneRepo(origin, join(root, 'a'), 'Alice');
    await cpvJson(a, ['init', '--remote', remote]);
    await writeModel(join(a, 'model.safetensors'), { seed: 11, tensors: 16, bytes: 4 * MiB });
    dataset = await writeDataset(join(a, 'data'), { seed: 12, files: 20 });
    await cpvJson(a, ['add', 'model.safetensors', '--kind', 'model']);
    await cpvJson(a, ['add', 'data', '--kind', 'data']);
    modelOid = (await readPointerFile(join(a, 'model.safetensors.cpv'))).oid!;
    dataOid = (await readPointerFile(join(a, 'data.cpv'))).oid!;
    await commitAll(a, 'Add model and data');
    await pushGit(a);
    await cpvJson(a, ['push']);
  });
  afterAll(() => removeTempDir(root));

  it('a corrupt pack fails the pull with exit code 4 naming the pack; nothing unverified is written', async () => {
    // Flip a byte in the middle of one of the model's chunks, located through its remote manifest.
    const manifest = JSON.parse(await readFile(objectPath(join(remote, 'manifests'), modelOid), 'utf8')) as {
      packs: string[];
      chunks: Array<[string, number, number, number]>;
    };
    expect(manifest.chunks.length).toBeGreaterThan(1);
    const [, length, packIndex, offset] = manifest.chunks[Math.floor(manifest.chunks.length / 2)]!;
    const pack = manifest.packs[packIndex]!;
    const packFile = objectPath(join(remote, 'packs'), pack);

    const c = await freshClone();
    const before = await workspace(c);
    await flipByte(packFile, offset + Math.floor(length / 2));
    try {
      const r = await runCpv(c, ['pull']);
      expect(r.exitCode).toBe(4);
      expect(r.stderr).toMatch(/corrupt|integrity/i);
      expect(r.stderr).toContain(pack.slice(0, 12));
      expect(r.stdout).toBe('');

      // The workspace is exactly as the clone left it: no model, no data, no temp files.
      expect(await workspace(c)).toEqual(before);
      expect(existsSync(join(c, 'model.safetensors'))).toBe(false);
      // No object for the model under its final name; whatever else is cached verifies.
      const cached = await verifiedCacheFiles(c);
      expect(cached).not.toContain(modelOid);
      expect(existsSync(objectPath(join(c, '.cpv', 'cache', 'files'), modelOid))).toBe(false);
      // A failure that cpv handled (as opposed to a crash) cleans up its temp files too.
      expect(await listFiles(join(c, '.cpv', 'cache', 'tmp'))).toEqual([]);

      const j = await cpvJsonResult<ErrorJson>(c, ['pull']);
      expect(j.exitCode).toBe(4);
      expect(j.json.error.code).toBe('INTEGRITY');
      expect(j.json.error.message).toContain(pack.slice(0, 12));
      expect(await workspace(c)).toEqual(before);
    } finally {
      await flipByte(packFile, offset + Math.floor(length / 2)); // flip back
      await chmod(packFile, 0o444);
    }

    // With the pack repaired, the same clone pulls correct content.
    const ok = await cpvJson<PullJson>(c, ['pull']);
    expect(ok.fetch.files).toBeGreaterThan(0);
    expect(`b3:${await b3sum(join(c, 'model.safetensors'))}`).toBe(modelOid);
    expect(await verifiedCacheFiles(c)).toContain(modelOid);
  });

  it('a corrupt cache object fails checkout with exit code 4 and creates no workspace file', async () => {
    const c = await freshClone();
    await cpvJson<PullJson>(c, ['pull']);
    const object = objectPath(join(c, '.cpv', 'cache', 'files'), modelOid);
    await flipByte(object, 12345);
    await rm(join(c, 'model.safetensors'));
    const before = await workspace(c);

    const r = await runCpv(c, ['checkout']);
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toMatch(/corrupt/i);
    expect(r.stderr).toContain('model.safetensors');
    expect(existsSync(join(c, 'model.safetensors'))).toBe(false);
    expect(await workspace(c)).toEqual(before);

    // The hint's recovery works: drop the bad object, pull again.
    expect(r.stderr).toContain('cpv pull');
    await rm(object, { force: true });
    await cpvJson<PullJson>(c, ['pull']);
    expect(`b3:${await b3sum(join(c, 'model.safetensors'))}`).toBe(modelOid);
  });

  describe('a tampered remote tree fails the pull of the directory with a clear error', () => {
    const treeFile = () => objectPath(join(remote, 'trees'), dataOid);

    /** Pull `data` in a fresh clone; it must fail with `code` and leave no data behind. */
    const pullFails = async (code: string, message: RegExp): Promise<ErrorJson> => {
      const c = await freshClone();
      const before = await workspace(c);
      const r = await cpvJsonResult<ErrorJson>(c, ['pull', 'data']);
      expect(r.exitCode, r.stderr).toBe(4);
      expect(r.json.error.code).toBe(code);
      expect(r.json.error.message).toMatch(message);
      expect(r.stderr).toMatch(message);
      expect(await workspace(c)).toEqual(before);
      expect(existsSync(join(c, 'data'))).toBe(false);
      await verifiedCacheFiles(c);
      return r.json;
    };

    it('listing edited (valid JSON): the tree no longer hashes to its oid', async () => {
      await tampered(
        treeFile(),
        (bytes) => {
          const idx = JSON.parse(bytes.toString('utf8')) as { tree: string };
          // Claim the first file is executable: a plausible, well-formed edit.
          idx.tree = idx.tree.replace(/\n644 /, '\n755 ');
          return Buffer.from(JSON.stringify(idx) + '\n');
        },
        async () => {
          const e = await pullFails('INTEGRITY', /corrupt/i);
          expect(e.error.message).toContain(dataOid.slice(0, 10));
        },
      );
    });

    it('not JSON at all: a format error naming the remote tree', async () => {
      await tampered(
        treeFile(),
        (bytes) => bytes.subarray(0, Math.floor(bytes.length / 2)),
        async () => {
          const e = await pullFails('FORMAT', /remote tree/i);
          expect(e.error.hint).toBeTruthy();
        },
      );
    });

    /** Point every single-chunk file of the tree index 1 byte past where it really is. */
    const shiftLocations = (bytes: Buffer): Buffer => {
      const idx = JSON.parse(bytes.toString('utf8')) as { entries: Array<[number, number] | null> };
      idx.entries = idx.entries.map((l) => (l ? [l[0], l[1] + 1] : l));
      return Buffer.from(JSON.stringify(idx) + '\n');
    };

    it('file locations edited: the chunks read do not match their oids', async () => {
      await tampered(treeFile(), shiftLocations, async () => {
        await pullFails('INTEGRITY', /corrupt/i);
      });
    });

    it('with the tree restored, the directory pulls and verifies', async () => {
      const c = await freshClone();
      await cpvJson<PullJson>(c, ['pull', 'data']);
      expect(await listFiles(join(c, 'data'))).toEqual(dataset);
    });

    it('locations seen in a tampered tree are not trusted later: a push of the same bytes stays pullable', async () => {
      // X pulls while the tree index lies about where files are, and fails.
      const x = await freshClone();
      await tampered(treeFile(), shiftLocations, async () => {
        expect((await runCpv(x, ['pull', 'data'])).exitCode).toBe(4);
      });
      // The remote is repaired; X pulls fine, then tracks a copy of one dataset file and pushes it.
      await cpvJson<PullJson>(x, ['pull', 'data']);
      const sample = dataset[5]!;
      await writeFile(join(x, 'copy.bin'), await readFile(join(x, 'data', ...sample.split('/'))));
      await cpvJson(x, ['add', 'copy.bin']);
      await cpvJson(x, ['push']);
      // Anyone with X's pointer must be able to pull copy.bin from the remote.
      const y = await freshClone();
      await writeFile(join(y, 'copy.bin.cpv'), await readFile(join(x, 'copy.bin.cpv')));
      const r = await runCpv(y, ['pull', 'copy.bin']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(`b3:${await b3sum(join(y, 'copy.bin'))}`).toBe((await readPointerFile(join(x, 'copy.bin.cpv'))).oid);
    });
  });

  describe('a corrupt remote manifest fails the pull, naming the file; nothing is written', () => {
    const manifestFile = () => objectPath(join(remote, 'manifests'), modelOid);
    type Manifest = { size: number; chunks: Array<[string, number, number, number]> };
    const editManifest = (edit: (m: Manifest) => void) => (bytes: Buffer): Buffer => {
      const m = JSON.parse(bytes.toString('utf8')) as Manifest;
      edit(m);
      return Buffer.from(JSON.stringify(m) + '\n');
    };

    it.each([
      // Every bit of one byte flipped: the manifest is no longer valid JSON or names a malformed oid.
      { name: 'a flipped byte', edit: (b: Buffer) => (b.writeUInt8(b[Math.floor(b.length / 2)]! ^ 0xff, Math.floor(b.length / 2)), b), code: ['FORMAT'], names: 'manifest' },
      // Well-formed, but it names another chunk: the bytes read do not match.
      {
        name: 'a chunk oid changed',
        edit: editManifest((m) => (m.chunks[1]![0] = m.chunks[1]![0].replace(/^./, (c) => (c === '0' ? '1' : '0')))),
        code: ['INTEGRITY'],
        names: 'chunk',
      },
      // Well-formed, but a chunk's location points one byte off.
      { name: 'a chunk offset shifted', edit: editManifest((m) => (m.chunks[2]![3] += 1)), code: ['INTEGRITY'], names: 'chunk' },
      // The size no longer matches the pointer, or the chunks.
      { name: 'the size changed', edit: editManifest((m) => (m.size += 1)), code: ['FORMAT', 'INTEGRITY'], names: 'manifest' },
    ])('$name', async ({ edit, code, names }) => {
      const c = await freshClone();
      const before = await workspace(c);
      await tampered(manifestFile(), edit, async () => {
        const r = await cpvJsonResult<ErrorJson>(c, ['pull']);
        expect(r.exitCode, r.stderr).toBe(4);
        expect(code).toContain(r.json.error.code);
        expect(r.json.error.hint).toBeTruthy();
        // Names the damaged record (the model's manifest), or the chunk of model.safetensors it misplaces.
        if (names === 'manifest') expect(r.stderr).toContain(`remote manifest ${modelOid.slice(0, 15)}`);
        else expect(r.stderr).toMatch(/chunk [0-9a-f]{12} of model\.safetensors does not match its hash/);
        expect(r.stderr).not.toContain('internal error');
      });
      expect(await workspace(c)).toEqual(before);
      expect(await verifiedCacheFiles(c)).not.toContain(modelOid);
      expect(await listFiles(join(c, '.cpv', 'cache', 'tmp'))).toEqual([]);
    });
  });

  it('a flipped byte in the listing of a remote tree fails the pull of the directory, naming the tree', async () => {
    const treeFile = objectPath(join(remote, 'trees'), dataOid);
    const c = await freshClone();
    const before = await workspace(c);
    await tampered(
      treeFile,
      (bytes) => {
        // A byte inside the listing of the second file: the JSON stays valid.
        const at = bytes.indexOf(`${dataset[1]}`);
        expect(at).toBeGreaterThan(0);
        bytes.writeUInt8(bytes[at]! ^ 0x01, at);
        return bytes;
      },
      async () => {
        const r = await cpvJsonResult<ErrorJson>(c, ['pull', 'data']);
        expect(r.exitCode, r.stderr).toBe(4);
        expect(r.json.error.code).toBe('INTEGRITY');
        expect(r.stderr).toContain(`remote tree ${dataOid.slice(0, 15)} on origin is corrupt`);
      },
    );
    expect(await workspace(c)).toEqual(before);
    expect(await listFiles(join(c, '.cpv', 'cache', 'trees'))).toEqual([]);
  });

  describe('corrupt objects in the cache', () => {
    it('a cached file: pull fails with exit 4 naming the path and the object, and changes nothing', async () => {
      const c = await freshClone();
      await cpvJson<PullJson>(c, ['pull']);
      await rm(join(c, 'model.safetensors'));
      const object = objectPath(join(c, '.cpv', 'cache', 'files'), modelOid);
      await flipByte(object, 777);
      const before = await workspace(c);
      const r = await cpvJsonResult<ErrorJson>(c, ['pull']);
      expect(r.exitCode, r.stderr).toBe(4);
      expect(r.json.error.code).toBe('INTEGRITY');
      expect(r.stderr).toContain(`cache object ${modelOid.slice(0, 15)} for model.safetensors is corrupt`);
      expect(await workspace(c)).toEqual(before);
      expect(existsSync(join(c, 'model.safetensors'))).toBe(false);
    });

    it('a cached tree: checkout and pull fail with exit 4 naming the tree, and change nothing', async () => {
      const c = await freshClone();
      await cpvJson<PullJson>(c, ['pull', 'data']);
      const tree = objectPath(join(c, '.cpv', 'cache', 'trees'), dataOid);
      await flipByte(tree, 40);
      await rm(join(c, 'data', ...dataset[3]!.split('/')));
      const before = await workspace(c);
      for (const cmd of ['checkout', 'pull']) {
        const r = await cpvJsonResult<ErrorJson>(c, [cmd, 'data']);
        expect(r.exitCode, `${cmd}: ${r.stderr}`).toBe(4);
        expect(r.json.error.code).toBe('INTEGRITY');
        expect(r.stderr).toContain(`cache tree ${dataOid.slice(0, 15)} is corrupt`);
        expect(await workspace(c)).toEqual(before);
      }
      // Dropping the damaged tree lets pull fetch a good one.
      await rm(tree, { force: true });
      await cpvJson<PullJson>(c, ['pull', 'data']);
      expect(await listFiles(join(c, 'data'))).toEqual(dataset);
    });

    it('a cached manifest: push refuses naming it and publishes nothing; pulls stay correct', async () => {
      const c = await freshClone();
      await cpvJson<PullJson>(c, ['pull']);
      await writeModel(join(c, 'tuned.safetensors'), { seed: 13, tensors: 8, bytes: 2 * MiB });
      await cpvJson(c, ['add', 'tuned.safetensors']);
      const tunedOid = (await readPointerFile(join(c, 'tuned.safetensors.cpv'))).oid!;
      const manifest = objectPath(join(c, '.cpv', 'cache', 'manifests'), tunedOid);
      await flipByte(manifest, 30);
      const remoteBefore = await snapshotTree(remote);
      const r = await cpvJsonResult<ErrorJson>(c, ['push']);
      expect(r.exitCode, r.stderr).toBe(4);
      expect(r.json.error.code).toBe('FORMAT');
      expect(r.stderr).toContain(`cache manifest ${tunedOid.slice(0, 15)}`);
      expect(r.json.error.hint).toMatch(/delete it/);
      expect(await snapshotTree(remote)).toEqual(remoteBefore);

      // The model's cached manifest damaged too: a pull that wants its chunks still
      // writes only verified bytes (a damaged record only costs a download).
      await flipByte(objectPath(join(c, '.cpv', 'cache', 'manifests'), modelOid), 30);
      await rm(objectPath(join(c, '.cpv', 'cache', 'files'), modelOid), { force: true });
      await rm(join(c, 'model.safetensors'));
      await cpvJson<PullJson>(c, ['pull', 'model.safetensors']);
      expect(`b3:${await b3sum(join(c, 'model.safetensors'))}`).toBe(modelOid);
    });
  });
});
