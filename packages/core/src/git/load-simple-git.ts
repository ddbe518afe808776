import type { simpleGit as SimpleGitFactory } from 'simple-git';

let loaded: Promise<typeof SimpleGitFactory> | undefined;

/**
 * simple-git's factory, imported on first use: loading it costs a noticeable part of
 * cpv's start-up, and commands such as `status` never run git. Idempotent.
 */
export function loadSimpleGit(): Promise<typeof SimpleGitFactory> {
  loaded ??= import('simple-git').then((m) => m.simpleGit);
  return loaded;
}
