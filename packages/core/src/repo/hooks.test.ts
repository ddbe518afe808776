import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gitSync, setIdentity } from '../testing/git-fixture.js';
import { ConflictError, UsageError } from '../errors.js';
import { writeConfigFile } from '../config/config.js';
import { blake3Hex } from '../hash/blake3.js';
import { seededBytes } from '../testing/seeded.js';
import { add } from './add.js';
import { hookScript, installHooks, isCpvHook, parsePushedRefs, prePush, restoreWorkspace, HOOK_MARKER, type HookRunner } from './hooks.js';
import { init } from './init.js';
import { openRepo, type Repo } from './repo.js';
import { createTag, verifyTag } from './tags.js';

let base: string;
let dir: string;
let remoteDir: string;
let origin: string;
let repo: Repo;

const ZERO = '0'.repeat(40);

const git = gitSync;

/** Run git without throwing: exit code and stderr. */
function gitResult(cwd: string, args: readonly string[]): { status: number; stderr: string } {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
  return { status: r.status ?? -1, stderr: r.stderr };
}

async function put(rel: string, bytes: Uint8Array | string): Promise<void> {
  const abs = path.join(dir, rel);
  await mkdir(path.dirname(abs), { recursive: true });
  await writeFile(abs, bytes);
}

async function expectReject<T>(p: Promise<unknown>, cls: new (...a: never[]) => T): Promise<T> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(cls);
  return err as T;
}

beforeEach(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-hooks-')));
  dir = path.join(base, 'work');
  remoteDir = path.join(base, 'remote');
  origin = path.join(base, 'origin.git');
  await mkdir(dir);
  git(base, ['init', '--quiet', '--bare', '--initial-branch=main', origin]);
  git(dir, ['init', '--quiet', '--initial-branch=main']);
  setIdentity(dir, 'Tess Ter', 'tess@example.com');
  git(dir, ['remote', 'add', 'origin', origin]);
  await init({ dir, remote: remoteDir });
  await writeConfigFile(path.join(dir, '.cpv', 'config.local'), { chunker: { min: 1024, avg: 4096, max: 16384 } });
  git(dir, ['add', '.cpv']);
  git(dir, ['commit', '--quiet', '-m', 'init cpv']);
  repo = await openRepo({ cwd: dir });
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

/**
 * A stand-in for cpv that the hook scripts run (`/bin/sh FAKE hook NAME ARGS`): it
 * appends its arguments and standard input to `log`, and exits with the code in
 * `exit` (0 if absent).
 */
async function fakeRunner(): Promise<{ runner: HookRunner; log: string; exitFile: string }> {
  const log = path.join(base, 'fake.log');
  const exitFile = path.join(base, 'fake.exit');
  const script = path.join(base, 'fake-cpv.sh');
  await writeFile(script, `echo "args: $*" >> '${log}'\nsed 's/^/stdin: /' >> '${log}'\n[ -f '${exitFile}' ] && exit "$(cat '${exitFile}')"\nexit 0\n`);
  return { runner: { node: '/bin/sh', script }, log, exitFile };
}

async function readLog(file: string): Promise<string> {
  return readFile(file, 'utf8').catch(() => '');
}

describe('hookScript', () => {
  it('is a marked POSIX sh script that runs the recorded cpv, else cpv from PATH', () => {
    const text = hookScript('pre-push', { runner: { node: "/opt/no'de", script: '/opt/cpv/bin/run.js' } });
    expect(text.startsWith('#!/bin/sh\n')).toBe(true);
    expect(text).toContain(`${HOOK_MARKER}: pre-push`);
    expect(isCpvHook(text)).toBe(true);
    expect(text).toContain(`'/opt/no'\\''de' '/opt/cpv/bin/run.js' "$@"`);
    expect(text).toContain('command -v cpv');
    expect(text).toContain('cpv_stdin | cpv_run hook pre-push "$@"');
    expect(hookScript('post-checkout')).toContain('if [ "$3" = 1 ]; then');
    expect(hookScript('post-merge', { cpvDir: 'ml/models' })).toContain("cd -- 'ml/models'");
    expect(isCpvHook('#!/bin/sh\necho mine\n')).toBe(false);
    for (const name of ['pre-push', 'post-checkout', 'post-merge'] as const) {
      expect(spawnSync('sh', ['-n'], { input: hookScript(name, { runner: { node: '/n', script: '/s' }, cpvDir: 'a b' }) }).status).toBe(0);
    }
  });
});

describe('parsePushedRefs', () => {
  it('parses git pre-push input lines, skipping blanks', () => {
    const a = 'a'.repeat(40);
    expect(parsePushedRefs(`refs/heads/main ${a} refs/heads/main ${ZERO}\n\n(delete) ${ZERO} refs/tags/old ${a}\n`)).toEqual([
      { localRef: 'refs/heads/main', localSha: a, remoteRef: 'refs/heads/main', remoteSha: ZERO },
      { localRef: '(delete)', localSha: ZERO, remoteRef: 'refs/tags/old', remoteSha: a },
    ]);
    expect(parsePushedRefs('')).toEqual([]);
    expect(() => parsePushedRefs('refs/heads/main xyz refs/heads/main 0')).toThrow(UsageError);
  });
});

describe('installHooks', () => {
  it('installs three hooks, is idempotent, and chains a foreign hook', async () => {
    const hooks = path.join(dir, '.git', 'hooks');
    await mkdir(hooks, { recursive: true });
    await writeFile(path.join(hooks, 'pre-push'), '#!/bin/sh\necho mine\n', { mode: 0o755 });
    const r = await installHooks(repo, { runner: { node: '/n', script: '/s' } });
    expect(r.hooksDir).toBe(hooks);
    expect(r.hooks.map((h) => [h.name, h.action])).toEqual([
      ['pre-push', 'chained'],
      ['post-checkout', 'created'],
      ['post-merge', 'created'],
    ]);
    expect(await readFile(path.join(hooks, 'pre-push.pre-cpv'), 'utf8')).toBe('#!/bin/sh\necho mine\n');
    expect(isCpvHook(await readFile(path.join(hooks, 'pre-push'), 'utf8'))).toBe(true);
    expect((await stat(path.join(hooks, 'post-merge'))).mode & 0o777).toBe(0o755);

    const again = await installHooks(repo, { runner: { node: '/n', script: '/s' } });
    expect(again.hooks.map((h) => h.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(again.hooks[0]!.chained).toBe(path.join(hooks, 'pre-push.pre-cpv'));
    const moved = await installHooks(repo, { runner: { node: '/n2', script: '/s' } });
    expect(moved.hooks.map((h) => h.action)).toEqual(['updated', 'updated', 'updated']);
    expect(await readFile(path.join(hooks, 'pre-push.pre-cpv'), 'utf8')).toBe('#!/bin/sh\necho mine\n');
  });

  it('will not lose a foreign hook: refuses when its .pre-cpv slot is taken, unless --force', async () => {
    const hooks = path.join(dir, '.git', 'hooks');
    await mkdir(hooks, { recursive: true });
    await writeFile(path.join(hooks, 'post-merge'), '#!/bin/sh\necho new\n', { mode: 0o755 });
    await writeFile(path.join(hooks, 'post-merge.pre-cpv'), '#!/bin/sh\necho old\n', { mode: 0o755 });
    const err = await expectReject(installHooks(repo, {}), ConflictError);
    expect(err.hint).toContain('--force');
    expect(await readFile(path.join(hooks, 'post-merge'), 'utf8')).toBe('#!/bin/sh\necho new\n');
    expect(await readFile(path.join(hooks, 'pre-push'), 'utf8').catch(() => 'absent')).toBe('absent');
    const dry = await installHooks(repo, { force: true, dryRun: true });
    expect(dry.hooks.find((h) => h.name === 'post-merge')?.action).toBe('overwritten');
    expect(await readFile(path.join(hooks, 'post-merge'), 'utf8')).toBe('#!/bin/sh\necho new\n');
    await installHooks(repo, { force: true });
    expect(isCpvHook(await readFile(path.join(hooks, 'post-merge'), 'utf8'))).toBe(true);
    expect(await readFile(path.join(hooks, 'post-merge.pre-cpv'), 'utf8')).toBe('#!/bin/sh\necho old\n');
  });

  it('honours core.hooksPath', async () => {
    git(dir, ['config', 'core.hooksPath', 'tools/hooks']);
    const r = await installHooks(repo, {});
    expect(r.hooksDir).toBe(path.join(dir, 'tools', 'hooks'));
    expect(isCpvHook(await readFile(path.join(dir, 'tools', 'hooks', 'pre-push'), 'utf8'))).toBe(true);
  });
});

describe('the installed scripts, run by git', () => {
  it('pre-push passes arguments and input to the chained hook, then to cpv; either failing stops the push', async () => {
    const { runner, log, exitFile } = await fakeRunner();
    const hooks = path.join(dir, '.git', 'hooks');
    const chainedLog = path.join(base, 'chained.log');
    await mkdir(hooks, { recursive: true });
    await writeFile(path.join(hooks, 'pre-push'), `#!/bin/sh\necho "chained: $*" >> '${chainedLog}'\ncat >> '${chainedLog}'\n`, { mode: 0o755 });
    await installHooks(repo, { runner });
    const head = git(dir, ['rev-parse', 'HEAD']).trim();

    git(dir, ['push', '--quiet', 'origin', 'main']);
    const line = `refs/heads/main ${head} refs/heads/main ${ZERO}`;
    expect(await readLog(chainedLog)).toBe(`chained: origin ${origin}\n${line}\n`);
    expect(await readLog(log)).toBe(`args: hook pre-push origin ${origin}\nstdin: ${line}\n`);

    git(dir, ['tag', 't1']);
    await writeFile(exitFile, '3');
    const refused = gitResult(dir, ['push', 'origin', 't1']);
    expect(refused.status).not.toBe(0);
    expect(git(dir, ['ls-remote', '--tags', 'origin'])).toBe('');

    await rm(exitFile);
    await writeFile(path.join(hooks, 'pre-push.pre-cpv'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    expect(gitResult(dir, ['push', 'origin', 't1']).status).not.toBe(0);
    expect(git(dir, ['ls-remote', '--tags', 'origin'])).toBe('');
  });

  it('post-checkout runs cpv on branch checkouts only and never fails the checkout', async () => {
    const { runner, log, exitFile } = await fakeRunner();
    await installHooks(repo, { runner });
    const first = git(dir, ['rev-parse', 'HEAD']).trim();
    await put('notes.txt', 'n');
    git(dir, ['add', 'notes.txt']);
    git(dir, ['commit', '--quiet', '-m', 'notes']);
    const second = git(dir, ['rev-parse', 'HEAD']).trim();

    git(dir, ['checkout', '--quiet', first]);
    expect(await readLog(log)).toBe(`args: hook post-checkout ${second} ${first} 1\n`);
    await writeFile(path.join(dir, 'notes.txt'), 'x');
    git(dir, ['checkout', second, '--', 'notes.txt']); // a file checkout: no cpv
    expect((await readLog(log)).split('\n').filter(Boolean)).toHaveLength(1);

    await writeFile(exitFile, '5');
    const r = gitResult(dir, ['checkout', '--quiet', 'main']);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('cpv: warning');
  });
});

describe('prePush', () => {
  beforeEach(async () => {
    await put('model.bin', seededBytes(1, 60_000));
    await put('data/sub/big.bin', seededBytes(2, 50_000));
    await add(repo, { cwd: dir, paths: ['model.bin'], kind: 'model' });
    await add(repo, { cwd: dir, paths: ['data'], kind: 'data' });
  });

  it('uploads what a pushed version tag binds and proves it', async () => {
    await createTag(repo, { cwd: dir, name: 'v1' });
    const tagObject = git(dir, ['rev-parse', 'v1']).trim();
    const r = await prePush(repo, { gitRemote: 'origin', input: `refs/tags/v1 ${tagObject} refs/tags/v1 ${ZERO}\n` });
    expect(r.ok).toBe(true);
    expect(r.refs).toEqual([{ ref: 'refs/tags/v1', kind: 'version', ok: true, items: 2, unavailable: [], missing: [] }]);
    expect(r.upload?.uploaded).toBe(2);
    expect((await verifyTag(repo, { name: 'v1' })).ok).toBe(true);
  });

  it('uploads the pointers of a pushed commit; deletions and pointer-less commits need no remote', async () => {
    git(dir, ['add', '-A']);
    git(dir, ['commit', '--quiet', '-m', 'track']);
    const head = git(dir, ['rev-parse', 'HEAD']).trim();
    const r = await prePush(repo, { gitRemote: 'origin', input: `refs/heads/main ${head} refs/heads/main ${ZERO}\n(delete) ${ZERO} refs/heads/gone ${head}\n` });
    expect(r.refs).toMatchObject([{ ref: 'refs/heads/main', kind: 'commit', ok: true, items: 2 }]);
    expect(r.upload?.uploaded).toBe(2);

    const first = git(dir, ['rev-list', '--max-parents=0', 'HEAD']).trim();
    await writeConfigFile(path.join(dir, '.cpv', 'config.local'), { chunker: { min: 1024, avg: 4096, max: 16384 }, remotes: { origin: { url: '/dev/null/unreachable' } } });
    const unreachable = await openRepo({ cwd: dir });
    const none = await prePush(unreachable, { gitRemote: 'origin', input: `refs/heads/old ${first} refs/heads/old ${ZERO}\n` });
    expect(none).toMatchObject({ ok: true, refs: [{ items: 0, ok: true }] });
    expect(none.remote).toBeUndefined();
  });

  it('refuses a ref whose content is neither cached nor on the remote', async () => {
    const v1 = await createTag(repo, { cwd: dir, name: 'v1', models: ['model.bin'] });
    await rm(repo.cache.filePath(v1.artifacts[0]!.oid));
    const tagObject = git(dir, ['rev-parse', 'v1']).trim();
    const r = await prePush(repo, { gitRemote: 'origin', input: `refs/tags/v1 ${tagObject} refs/tags/v1 ${ZERO}\n` });
    expect(r.ok).toBe(false);
    expect(r.refs[0]!.unavailable.map((u) => u.path)).toEqual(['model.bin']);
  });
});

describe('restoreWorkspace', () => {
  it('restores what it can, and warns (never throws) about unsaved changes and uncached content', async () => {
    const v1Bytes = seededBytes(1, 60_000);
    await put('model.bin', v1Bytes);
    await put('other.bin', 'other v1');
    await put('third.bin', 'third v1');
    await add(repo, { cwd: dir, paths: ['model.bin', 'other.bin', 'third.bin'] });
    const v1 = await createTag(repo, { cwd: dir, name: 'v1' });
    await put('model.bin', seededBytes(2, 60_000));
    await put('other.bin', 'other v2');
    await put('third.bin', 'third v2');
    await add(repo, { cwd: dir, paths: ['model.bin', 'other.bin', 'third.bin'] });
    await createTag(repo, { cwd: dir, name: 'v2' });

    git(dir, ['checkout', '--quiet', 'v1']);
    await writeFile(path.join(dir, 'other.bin'), 'unsaved edit');
    await rm(repo.cache.filePath(v1.artifacts.find((a) => a.path === 'third.bin')!.oid));
    const r = await restoreWorkspace(repo);
    expect(await blake3Hex(await readFile(path.join(dir, 'model.bin')))).toBe(await blake3Hex(v1Bytes));
    expect(await readFile(path.join(dir, 'other.bin'), 'utf8')).toBe('unsaved edit');
    expect(await readFile(path.join(dir, 'third.bin'), 'utf8')).toBe('third v2');
    expect(r.items.map((i) => i.path)).toEqual(['model.bin']);
    expect(r.warnings.map((w) => w.path)).toEqual(['other.bin', 'third.bin']);
    expect(r.warnings[0]!.message).toContain('would overwrite');
    expect(r.warnings[1]!.hint).toContain('cpv pull');
  });
});
