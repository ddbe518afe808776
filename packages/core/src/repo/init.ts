import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConflictError } from '../errors.js';
import { DEFAULT_CHUNKER } from '../chunk/fastcdc.js';
import { configPaths, writeConfigFile, type ConfigFile } from '../config/config.js';
import { requireGit } from '../git/git.js';
import { Cache } from '../store/cache.js';
import { pathExists, writeAtomic } from '../util/fs-atomic.js';

export interface InitOptions {
  /** Directory to initialize. */
  dir: string;
  /** Default remote URL, registered as `origin`. */
  remote?: string;
  /** Allow a directory that is not in a git repository. */
  noScm?: boolean;
  /** Re-initialize an existing repository (keeps its remotes). */
  force?: boolean;
  dryRun?: boolean;
}

export interface InitResult {
  root: string;
  /** Files created, relative to root. */
  created: string[];
  /** Whether the directory is in a git work tree. */
  git: boolean;
}

const CPV_GITIGNORE = '/config.local\n/cache/\n/tmp/\n';

/**
 * Create `.cpv/config` (chunker parameters, optional default remote) and
 * `.cpv/.gitignore` in `dir`. Requires a git work tree unless `noScm`. Throws
 * NotAGitRepoError, or ConflictError if already initialized and not `force`.
 */
export async function init(opts: InitOptions): Promise<InitResult> {
  const root = resolve(opts.dir);
  let git = true;
  if (!opts.noScm) await requireGit(root);
  else git = false;
  const paths = configPaths(root);
  if ((await pathExists(paths.committed)) && !opts.force) {
    throw new ConflictError(`${root} is already a cpv repository`, { hint: 'use --force to re-initialize it' });
  }
  const file: ConfigFile = { version: 1, chunker: { ...DEFAULT_CHUNKER } };
  if (opts.remote !== undefined) {
    file.core = { remote: 'origin' };
    file.remotes = { origin: { url: opts.remote } };
  }
  const created = ['.cpv/config', '.cpv/.gitignore'];
  if (opts.dryRun) return { root, created, git };
  await mkdir(join(root, '.cpv'), { recursive: true });
  await writeConfigFile(paths.committed, file);
  await writeAtomic(join(root, '.cpv', '.gitignore'), Buffer.from(CPV_GITIGNORE), { mode: 0o644 });
  await new Cache(join(root, '.cpv', 'cache')).init();
  return { root, created, git };
}
