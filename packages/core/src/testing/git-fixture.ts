/**
 * Real git repositories in temp directories for unit tests. Every repository gets its
 * own identity and no signing, so tests never depend on the developer's git config.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Run git in `cwd` (with `input` on stdin, if given); returns stdout, throws with stderr on failure. */
export function gitSync(cwd: string, args: readonly string[], input?: string): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', input, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' }, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Configure a commit identity (and no signing) in the repository at `dir`. */
export function setIdentity(dir: string, name = 'Test User', email = `${name.toLowerCase().replace(/\W+/g, '.')}@example.com`): void {
  gitSync(dir, ['config', 'user.name', name]);
  gitSync(dir, ['config', 'user.email', email]);
  gitSync(dir, ['config', 'commit.gpgsign', 'false']);
  gitSync(dir, ['config', 'tag.gpgsign', 'false']);
}

/** A fresh temp directory (real path) holding a new git repository on branch main. */
export async function makeGitRepo(prefix: string): Promise<string> {
  const dir = await realpath(await mkdtemp(path.join(tmpdir(), `cpv-${prefix}-`)));
  gitSync(dir, ['init', '--quiet', '--initial-branch=main']);
  setIdentity(dir);
  return dir;
}

/** Stage everything and commit; returns the new commit id. */
export function commitAll(dir: string, message: string): string {
  gitSync(dir, ['add', '-A']);
  gitSync(dir, ['commit', '--quiet', '-m', message]);
  return gitSync(dir, ['rev-parse', 'HEAD']).trim();
}
