import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { NotARepoError } from '../errors.js';
import { configPaths, envOverrides, mergeConfig, readConfigFile, type ConfigOverrides, type RepoConfig } from '../config/config.js';
import { Cache } from '../store/cache.js';
import { assertNoSecrets } from '../remote/options.js';

/** An open cpv repository: where it is, its merged config and its cache. */
export interface Repo {
  /** Absolute path of the directory holding `.cpv/`. */
  root: string;
  config: RepoConfig;
  cache: Cache;
}

/** Options every repo-level operation accepts. */
export interface RepoOptions {
  /** Directory to start looking for `.cpv/` from (the caller's working directory). */
  cwd: string;
  /** Environment to read `CPV_*` overrides from (the CLI passes process.env). */
  env?: Record<string, string | undefined>;
  /** Flag overrides (highest precedence). */
  overrides?: ConfigOverrides;
  /** User-level config file, e.g. `$XDG_CONFIG_HOME/cpv/config`; none when undefined. */
  userConfig?: string;
}

/**
 * Find the repo root: the nearest ancestor of `start` (inclusive) with `.cpv/config`.
 * Throws NotARepoError naming `start` when there is none.
 */
export async function findRepoRoot(start: string): Promise<string> {
  let dir = resolve(start);
  for (;;) {
    try {
      if ((await stat(join(dir, '.cpv', 'config'))).isFile()) return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new NotARepoError(resolve(start));
    dir = parent;
  }
}

/**
 * Open the repository containing `opts.cwd`: find the root, merge config layers
 * (flags > env > config.local > config > user config > defaults) and prepare the cache.
 * Throws NotARepoError or ConfigError.
 */
export async function openRepo(opts: RepoOptions): Promise<Repo> {
  const root = await findRepoRoot(opts.cwd);
  const paths = configPaths(root);
  const committed = await readConfigFile(paths.committed);
  assertNoSecrets(committed.remotes, paths.committed);
  const layers = [opts.userConfig ? await readConfigFile(opts.userConfig) : {}, committed, await readConfigFile(paths.local)];
  // An override left undefined (an unset flag) must not hide the environment's value.
  const flags = Object.fromEntries(Object.entries(opts.overrides ?? {}).filter(([, v]) => v !== undefined)) as ConfigOverrides;
  const config = mergeConfig(root, layers, { ...envOverrides(opts.env ?? {}), ...flags });
  const cache = new Cache(config.cacheDir);
  await cache.init();
  return { root, config, cache };
}
