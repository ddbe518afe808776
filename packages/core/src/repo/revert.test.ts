import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, ConflictError, GitError, NotFoundError, UsageError } from '../errors.js';
import { blake3Hex } from '../hash/blake3.js';
import { commitAll, gitSync, makeGitRepo } from '../testing/git-fixture.js';
import { add } from './add.js';
import { init } from './init.js';
import { openRepo, type Repo } from './repo.js';
import { revert } from './revert.js';
import { push } from './sync.js';

let dir: string;
let repo: Repo;
let v1: string; // commit of model v1
let v2: string; // commit of model v2

const oidOf = async (s: string): Promise<string> => `b3:${await blake3Hex(Buffer.from(s))}`;
const read = (rel: string): Promise<string> => readFile(path.join(dir, rel), 'utf8');
const git = (...args: string[]): string => gitSync(dir, args).trim();
const commits = (): string[] => git('rev-list', 'HEAD').split('\n');

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

beforeEach(async () => {
  dir = await makeGitRepo('revert');
  await init({ dir, remote: path.join(dir, '..', `${path.basename(dir)}-remote`) });
  repo = await openRepo({ cwd: dir });
  await put('model.bin', 'model v1\n');
  await put('data/a.txt', 'data a\n');
  await add(repo, { cwd: dir, paths: ['model.bin'], kind: 'model' });
  await add(repo, { cwd: dir, paths: ['data'], kind: 'data' });
  v1 = commitAll(dir, 'model v1');
  await put('model.bin', 'model v2\n');
  await add(repo, { cwd: dir, paths: ['model.bin'] });
  v2 = commitAll(dir, 'model v2');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(`${dir}-remote`, { recursive: true, force: true });
});

describe('revert', () => {
  it('makes a new commit whose pointer equals the one at REV, and checks the content out', async () => {
    const r = await revert(repo, { cwd: dir, targets: ['model.bin'], to: 'HEAD~1' });
    expect(r.commit).toBe(git('rev-parse', 'HEAD'));
    expect(r.revCommit).toBe(v1);
    expect(r.reverted).toEqual([{ path: 'model.bin', pointerPath: 'model.bin.cpv', type: 'file', kind: 'model', from: await oidOf('model v2\n'), to: await oidOf('model v1\n'), changed: true }]);
    expect(await read('model.bin.cpv')).toBe(gitSync(dir, ['show', `${v1}:model.bin.cpv`]));
    expect(await read('model.bin')).toBe('model v1\n');
    // History is not rewritten: the new commit sits on top of both old ones.
    expect(commits()).toEqual([r.commit, v2, v1]);
    expect(git('log', '-1', '--format=%s')).toBe('cpv: revert model.bin to HEAD~1');
    expect(git('log', '-1', '--format=%b')).toContain(v1);
    expect(git('show', '--name-only', '--format=', 'HEAD')).toBe('model.bin.cpv');
    expect(git('status', '--porcelain')).toBe('');
  });

  it('accepts the pointer file as target and a custom message, and commits only the pointers', async () => {
    await put('notes.txt', 'staged but unrelated\n');
    git('add', 'notes.txt');
    const r = await revert(repo, { cwd: dir, targets: ['model.bin.cpv'], to: v1.slice(0, 10), message: 'back to the first model' });
    expect(git('log', '-1', '--format=%B')).toBe('back to the first model');
    expect(git('show', '--name-only', '--format=', r.commit!)).toBe('model.bin.cpv');
    // The unrelated staged file stays staged, out of the commit.
    expect(git('status', '--porcelain')).toBe('A  notes.txt');
  });

  it('is idempotent: reverting to the same revision again commits nothing', async () => {
    const first = await revert(repo, { cwd: dir, targets: ['model.bin'], to: v1 });
    const again = await revert(repo, { cwd: dir, targets: ['model.bin'], to: v1 });
    expect(again.commit).toBeUndefined();
    expect(again.reverted[0]!.changed).toBe(false);
    expect(commits()).toEqual([first.commit, v2, v1]);
  });

  it('with commit: false writes the pointers and checks out, but does not commit', async () => {
    const r = await revert(repo, { cwd: dir, targets: ['model.bin'], to: v1, commit: false });
    expect(r.commit).toBeUndefined();
    expect(commits()).toEqual([v2, v1]);
    expect(await read('model.bin')).toBe('model v1\n');
    expect(await read('model.bin.cpv')).toBe(gitSync(dir, ['show', `${v1}:model.bin.cpv`]));
    expect(git('status', '--porcelain')).toBe('M model.bin.cpv');
  });

  it('with dryRun reports and changes nothing', async () => {
    const before = await read('model.bin.cpv');
    const r = await revert(repo, { cwd: dir, targets: ['model.bin'], to: v1, dryRun: true });
    expect(r.reverted[0]).toMatchObject({ path: 'model.bin', changed: true, to: await oidOf('model v1\n') });
    expect(r.fetchNeeded).toEqual([]);
    expect(r.checkout).toBeUndefined();
    expect(await read('model.bin.cpv')).toBe(before);
    expect(await read('model.bin')).toBe('model v2\n');
    expect(commits()).toEqual([v2, v1]);
  });

  it('refuses to overwrite workspace data that is not saved in the cache, unless force', async () => {
    await put('model.bin', 'unsaved work\n');
    const err = await rejection(revert(repo, { cwd: dir, targets: ['model.bin'], to: v1 }));
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).message).toContain('model.bin');
    expect(await read('model.bin')).toBe('unsaved work\n');
    expect(commits()).toEqual([v2, v1]);
    expect(git('status', '--porcelain')).toBe('');

    await revert(repo, { cwd: dir, targets: ['model.bin'], to: v1, force: true });
    expect(await read('model.bin')).toBe('model v1\n');
  });

  it('refuses unsaved files inside a tracked directory', async () => {
    await put('data/a.txt', 'data a, edited\n');
    await add(repo, { cwd: dir, paths: ['data'] });
    commitAll(dir, 'data v2');
    await put('data/new.txt', 'not added\n');
    const err = await rejection(revert(repo, { cwd: dir, targets: ['data'], to: v1 }));
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).data.paths).toEqual(['data/new.txt']);
  });

  it('refuses when the pointer file has uncommitted edits, unless force', async () => {
    await put('model.bin', 'model v3, added but not committed\n');
    await add(repo, { cwd: dir, paths: ['model.bin'] });
    const edited = await read('model.bin.cpv');
    const err = await rejection(revert(repo, { cwd: dir, targets: ['model.bin'], to: v1 }));
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).message).toMatch(/uncommitted.*model\.bin\.cpv/);
    expect(await read('model.bin.cpv')).toBe(edited);

    const r = await revert(repo, { cwd: dir, targets: ['model.bin'], to: v1, force: true });
    expect(r.reverted[0]!.from).toBe(await oidOf('model v3, added but not committed\n'));
    expect(await read('model.bin')).toBe('model v1\n');
    expect(git('status', '--porcelain')).toBe('');
  });

  it('throws GitError for an unknown revision', async () => {
    const err = await rejection(revert(repo, { cwd: dir, targets: ['model.bin'], to: 'no-such-tag' }));
    expect(err).toBeInstanceOf(GitError);
    expect((err as GitError).message).toContain('no-such-tag');
  });

  it('throws NotFoundError naming the path and the revision when the path is not tracked there', async () => {
    await put('extra.bin', 'extra\n');
    await add(repo, { cwd: dir, paths: ['extra.bin'] });
    commitAll(dir, 'extra');
    const err = await rejection(revert(repo, { cwd: dir, targets: ['extra.bin'], to: 'HEAD~2' }));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toBe('extra.bin is not tracked at HEAD~2');
  });

  it('needs at least one path, and refuses a path inside a tracked directory', async () => {
    expect(await rejection(revert(repo, { cwd: dir, targets: [], to: v1 }))).toBeInstanceOf(UsageError);
    const err = await rejection(revert(repo, { cwd: dir, targets: ['data/a.txt'], to: v1 }));
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toContain('inside the tracked directory data');
  });

  it('restores a path that exists only at REV, with its .gitignore entry', async () => {
    git('rm', '--quiet', 'model.bin.cpv');
    await rm(path.join(dir, 'model.bin'));
    await writeFile(path.join(dir, '.gitignore'), (await read('.gitignore')).replace('/model.bin\n', ''));
    const gone = commitAll(dir, 'drop the model');
    const r = await revert(repo, { cwd: dir, targets: ['model.bin'], to: v1 });
    expect(r.reverted[0]!.from).toBeUndefined();
    expect(await read('model.bin')).toBe('model v1\n');
    expect((await read('.gitignore')).split('\n')).toContain('/model.bin');
    expect(commits()).toEqual([r.commit, gone, v2, v1]);
    expect(git('show', '--name-only', '--format=', 'HEAD').split('\n').sort()).toEqual(['.gitignore', 'model.bin.cpv']);
    expect(git('status', '--porcelain')).toBe('');
  });

  it('reverts a tracked directory as a whole', async () => {
    await put('data/a.txt', 'data a, edited\n');
    await put('data/b.txt', 'data b\n');
    await add(repo, { cwd: dir, paths: ['data'] });
    commitAll(dir, 'data v2');
    await revert(repo, { cwd: dir, targets: ['data/'], to: v1 });
    expect(await read('data/a.txt')).toBe('data a\n');
    await expect(read('data/b.txt')).rejects.toThrow();
  });

  it('works in a cpv repository below the git top level, from a subdirectory', async () => {
    const sub = path.join(dir, 'ml');
    await mkdir(path.join(sub, 'runs'), { recursive: true });
    await init({ dir: sub });
    const inner = await openRepo({ cwd: sub });
    await writeFile(path.join(sub, 'w.bin'), 'weights 1\n');
    await add(inner, { cwd: sub, paths: ['w.bin'], kind: 'model' });
    const w1 = commitAll(dir, 'weights 1');
    await writeFile(path.join(sub, 'w.bin'), 'weights 2\n');
    await add(inner, { cwd: sub, paths: ['w.bin'] });
    commitAll(dir, 'weights 2');
    const r = await revert(inner, { cwd: path.join(sub, 'runs'), targets: ['../w.bin'], to: w1 });
    expect(r.reverted.map((i) => i.path)).toEqual(['w.bin']);
    expect(await read('ml/w.bin')).toBe('weights 1\n');
    expect(git('show', '--name-only', '--format=', r.commit!)).toBe('ml/w.bin.cpv');
    expect(git('status', '--porcelain')).toBe('');
  });

  it('fetches content the cache lacks from the default remote first', async () => {
    await push(repo, { cwd: dir, targets: [] });
    // Push sent v2 only; push v1 too, then forget it locally.
    git('checkout', '--quiet', v1, '--', 'model.bin.cpv');
    await push(repo, { cwd: dir, targets: ['model.bin'] });
    git('checkout', '--quiet', 'HEAD', '--', 'model.bin.cpv');
    await rm(repo.cache.filePath(await oidOf('model v1\n')), { force: true });

    const r = await revert(repo, { cwd: dir, targets: ['model.bin'], to: v1 });
    expect(r.fetchNeeded).toEqual(['model.bin']);
    expect(r.fetch?.files).toBe(1);
    expect(await read('model.bin')).toBe('model v1\n');
  });

  it('puts the pointers back and commits nothing when the content cannot be fetched', async () => {
    await rm(repo.cache.filePath(await oidOf('model v1\n')), { force: true });
    const before = await read('model.bin.cpv');
    // The configured remote directory was never pushed to: nothing to fetch from.
    const err = await rejection(revert(repo, { cwd: dir, targets: ['model.bin'], to: v1 }));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toContain('is not on remote "origin"');
    expect(await read('model.bin.cpv')).toBe(before);
    expect(await read('model.bin')).toBe('model v2\n');
    expect(commits()).toEqual([v2, v1]);
  });

  it("puts the pointers back when checkout refuses (the current version's only copy is in the workspace)", async () => {
    await rm(repo.cache.filePath(await oidOf('model v2\n')), { force: true });
    const before = await read('model.bin.cpv');
    const err = await rejection(revert(repo, { cwd: dir, targets: ['model.bin'], to: v1 }));
    expect(err).toBeInstanceOf(ConflictError);
    expect(await read('model.bin.cpv')).toBe(before);
    expect(await read('model.bin')).toBe('model v2\n');
    expect(commits()).toEqual([v2, v1]);
    expect(git('status', '--porcelain')).toBe('');
  });

  it('throws ConfigError, changing nothing, when content is missing and no remote is configured', async () => {
    await writeFile(path.join(dir, '.cpv', 'config'), (await read('.cpv/config')).replace(/core:[\s\S]*$/, ''));
    repo = await openRepo({ cwd: dir });
    await rm(repo.cache.filePath(await oidOf('model v1\n')), { force: true });
    const err = await rejection(revert(repo, { cwd: dir, targets: ['model.bin'], to: v1, commit: false }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(await read('model.bin')).toBe('model v2\n');
  });
});
