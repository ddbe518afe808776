import { ConfigError } from '../errors.js';
import { configPaths, mergeConfig, parseJobs, parseLinkList, readConfigFile, writeConfigFile, type ConfigFile } from '../config/config.js';
import type { Repo } from './repo.js';

/** Settings `cpv config` can read and write, with how to parse a value. */
const SETTINGS: Record<string, { get: (f: ConfigFile) => unknown; set: (f: ConfigFile, v: string | undefined) => void }> = {
  'core.remote': {
    get: (f) => f.core?.remote,
    set: (f, v) => void ((f.core ??= {}).remote = v),
  },
  'core.link': {
    get: (f) => f.core?.link?.join(','),
    set: (f, v) => void ((f.core ??= {}).link = v === undefined ? undefined : parseLinkList(v.split(',').map((s) => s.trim()), 'core.link')),
  },
  'core.jobs': {
    get: (f) => f.core?.jobs,
    set: (f, v) => void ((f.core ??= {}).jobs = v === undefined ? undefined : parseJobs(v, 'core.jobs')),
  },
  'core.pack_size': {
    get: (f) => f.core?.pack_size,
    set: (f, v) => void ((f.core ??= {}).pack_size = v === undefined ? undefined : Number(v)),
  },
  'cache.dir': {
    get: (f) => f.cache?.dir,
    set: (f, v) => void ((f.cache ??= {}).dir = v),
  },
};

/** The names of the settings `configSet` accepts. */
export const SETTING_NAMES = Object.keys(SETTINGS);

function setting(name: string) {
  const s = SETTINGS[name];
  if (!s) throw new ConfigError(`unknown setting "${name}"`, { hint: `settings: ${SETTING_NAMES.join(', ')}; remotes are managed with \`cpv remote\`` });
  return s;
}

function prune(f: ConfigFile): void {
  for (const section of ['core', 'cache'] as const) {
    const o = f[section] as Record<string, unknown> | undefined;
    if (!o) continue;
    for (const [k, v] of Object.entries(o)) if (v === undefined) delete o[k];
    if (Object.keys(o).length === 0) delete f[section];
  }
}

/** The effective value of a setting (after all layers), as the merged config sees it. */
export function configGet(repo: Repo, name: string): string | number | undefined {
  setting(name);
  const c = repo.config;
  const values: Record<string, string | number | undefined> = {
    'core.remote': c.remote,
    'core.link': c.link.join(','),
    'core.jobs': c.jobs,
    'core.pack_size': c.packSize,
    'cache.dir': c.cacheDir,
  };
  return values[name];
}

/**
 * Set (or with `value` undefined, unset) a setting in `.cpv/config`, or in
 * `.cpv/config.local` with `local`. The result is validated as a whole before anything
 * is written: an invalid value throws ConfigError and leaves the files unchanged.
 */
export async function configSet(repo: Repo, name: string, value: string | undefined, opts: { local?: boolean; dryRun?: boolean } = {}): Promise<{ file: string; previous: unknown }> {
  const s = setting(name);
  const paths = configPaths(repo.root);
  const file = opts.local ? paths.local : paths.committed;
  const committed = await readConfigFile(paths.committed);
  const local = await readConfigFile(paths.local);
  const target = opts.local ? local : committed;
  const previous = s.get(target);
  s.set(target, value);
  prune(target);
  if (name === 'core.remote' && value !== undefined && !{ ...committed.remotes, ...local.remotes }[value]) {
    throw new ConfigError(`no remote named "${value}"`, { hint: `add it first with \`cpv remote add ${value} URL\`` });
  }
  mergeConfig(repo.root, [committed, local]); // throws ConfigError on an invalid combination
  if (!opts.dryRun) await writeConfigFile(file, target, { private: opts.local === true });
  return { file, previous };
}
