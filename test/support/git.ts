import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { childEnv } from './cpv.js';

/** Run git in `cwd` with the sandboxed environment; returns stdout, throws with stderr on failure. */
export async function git(cwd: string, args: readonly string[]): Promise<string> {
  const r = await execa('git', args, { cwd, env: childEnv(), extendEnv: false, reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(' ')} exited ${r.exitCode} in ${cwd}\n${r.stderr}`);
  return String(r.stdout);
}

/** Create a bare repository (branch `main`) at `path` to act as everyone's origin. */
export async function makeOrigin(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  await git(path, ['init', '--quiet', '--bare', '--initial-branch=main']);
  return path;
}

/**
 * Clone `origin` into `dest` and configure an identity there, so commits work
 * without any global git config.
 */
export async function cloneRepo(origin: string, dest: string, name = 'Test User'): Promise<string> {
  await git(join(dest, '..'), ['-c', 'init.defaultBranch=main', 'clone', '--quiet', origin, dest]);
  await git(dest, ['config', 'user.name', name]);
  await git(dest, ['config', 'user.email', `${name.toLowerCase().replace(/\W+/g, '.')}@example.com`]);
  await git(dest, ['config', 'commit.gpgsign', 'false']);
  return dest;
}

/** Stage everything (`git add -A`) and commit. Returns the new commit id. */
export async function commitAll(cwd: string, message: string): Promise<string> {
  await git(cwd, ['add', '-A']);
  await git(cwd, ['commit', '--quiet', '-m', message]);
  return (await git(cwd, ['rev-parse', 'HEAD'])).trim();
}

/** Push the current branch to origin (setting upstream). */
export async function pushGit(cwd: string): Promise<void> {
  await git(cwd, ['push', '--quiet', '-u', 'origin', 'HEAD']);
}

/** Fast-forward the current branch from origin. */
export async function pullGit(cwd: string): Promise<void> {
  await git(cwd, ['pull', '--quiet', '--ff-only']);
}

/** Paths git reports in `git status --porcelain` (untracked and modified), sorted. */
export async function gitDirty(cwd: string): Promise<string[]> {
  const out = await git(cwd, ['status', '--porcelain', '--untracked-files=all']);
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.slice(3))
    .sort();
}

/** Whether git ignores `path` (relative to `cwd`). */
export async function isIgnored(cwd: string, path: string): Promise<boolean> {
  const r = await execa('git', ['check-ignore', '--quiet', path], { cwd, env: childEnv(), extendEnv: false, reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0 && r.exitCode !== 1) throw new Error(`git check-ignore ${path} failed: ${r.stderr}`);
  return r.exitCode === 0;
}
