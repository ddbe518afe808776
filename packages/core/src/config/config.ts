import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { ConfigError } from '../errors.js';
import { DEFAULT_CHUNKER, validateChunkerParams, type ChunkerParams } from '../chunk/fastcdc.js';
import { writeAtomic } from '../util/fs-atomic.js';

/** How checkout materializes a cached file in the workspace, in order of preference. */
export type LinkMode = 'reflink' | 'hardlink' | 'symlink' | 'copy';
export const LINK_MODES: readonly LinkMode[] = ['reflink', 'hardlink', 'symlink', 'copy'];

/** A configured remote. */
export interface RemoteConfig {
  url: string;
  [option: string]: string | number | boolean;
}

/** The typed, merged configuration core operations receive. */
export interface RepoConfig {
  chunker: ChunkerParams;
  /** Default remote name, if any. */
  remote: string | undefined;
  link: LinkMode[];
  packSize: number;
  jobs: number;
  /** Absolute cache directory. */
  cacheDir: string;
  remotes: Record<string, RemoteConfig>;
}

/** The raw YAML shape of a config file (every key optional). */
export interface ConfigFile {
  version?: number;
  chunker?: Partial<ChunkerParams>;
  core?: { remote?: string; link?: LinkMode[]; pack_size?: number; jobs?: number };
  cache?: { dir?: string };
  remotes?: Record<string, RemoteConfig>;
}

export const CONFIG_VERSION = 1;
export const DEFAULT_PACK_SIZE = 32 * 1024 * 1024;
const MIN_PACK_SIZE = 1024 * 1024;
const MAX_PACK_SIZE = 1024 * 1024 * 1024;
export const DEFAULT_LINK: LinkMode[] = ['reflink', 'copy'];

/** Paths of the config files of a repo rooted at `root`. */
export function configPaths(root: string): { committed: string; local: string } {
  return { committed: join(root, '.cpv', 'config'), local: join(root, '.cpv', 'config.local') };
}

/** Remote names: what git allows for remote names, roughly. */
export function isValidRemoteName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name);
}

/**
 * Read one config file. Absent → `{}`. Throws ConfigError naming the file for bad
 * YAML or an unknown version; never returns partial garbage.
 */
export async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let v: unknown;
  try {
    v = parse(text, { strict: true, uniqueKeys: true, maxAliasCount: 0 });
  } catch (err) {
    throw new ConfigError(`${path}: invalid YAML: ${(err as Error).message.split('\n')[0]}`, { hint: `fix ${path} by hand or restore it with git`, cause: err });
  }
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${path}: expected a YAML mapping`, { hint: `fix ${path}` });
  const file = v as ConfigFile;
  checkShape(file, path);
  if (file.version !== undefined && file.version !== CONFIG_VERSION) {
    throw new ConfigError(`${path}: unsupported config version ${JSON.stringify(file.version)}`, { hint: 'upgrade cpv' });
  }
  return file;
}

/**
 * Write a config file atomically: mode 0644, or 0600 with `private` (a file that may
 * hold credentials, such as `.cpv/config.local`: readable by its owner only).
 */
export async function writeConfigFile(path: string, file: ConfigFile, opts: { private?: boolean } = {}): Promise<void> {
  const ordered: ConfigFile = { version: CONFIG_VERSION };
  if (file.chunker) ordered.chunker = file.chunker;
  if (file.core && Object.keys(file.core).length > 0) ordered.core = file.core;
  if (file.cache && Object.keys(file.cache).length > 0) ordered.cache = file.cache;
  if (file.remotes && Object.keys(file.remotes).length > 0) ordered.remotes = file.remotes;
  await writeAtomic(path, Buffer.from(stringify(ordered, { lineWidth: 0 }), 'utf8'), { mode: opts.private ? 0o600 : 0o644 });
}

/** Overrides that the caller (the CLI) resolved from flags and the environment. */
export interface ConfigOverrides {
  remote?: string;
  cacheDir?: string;
  jobs?: number;
  link?: LinkMode[];
}

/**
 * Read environment overrides (`CPV_REMOTE`, `CPV_CACHE_DIR`, `CPV_JOBS`, `CPV_LINK`)
 * from an env object the caller passes. Throws ConfigError on bad values.
 */
export function envOverrides(env: Record<string, string | undefined>): ConfigOverrides {
  const o: ConfigOverrides = {};
  if (env.CPV_REMOTE) o.remote = env.CPV_REMOTE;
  if (env.CPV_CACHE_DIR) o.cacheDir = env.CPV_CACHE_DIR;
  if (env.CPV_JOBS) o.jobs = parseJobs(env.CPV_JOBS, 'CPV_JOBS');
  if (env.CPV_LINK) o.link = parseLinkList(env.CPV_LINK.split(','), 'CPV_LINK');
  return o;
}

/** Validate a jobs count. */
export function parseJobs(v: string | number, what: string): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new ConfigError(`${what}: jobs must be an integer from 1 to 256, got ${JSON.stringify(v)}`);
  return n;
}

/** Validate a link preference list. */
export function parseLinkList(v: unknown, what: string): LinkMode[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((m) => LINK_MODES.includes(m as LinkMode))) {
    throw new ConfigError(`${what}: link must be a non-empty list of ${LINK_MODES.join(', ')}`, { hint: 'e.g. `link: [reflink, copy]`' });
  }
  return v as LinkMode[];
}

/**
 * Merge user, committed and local config files with overrides into a RepoConfig
 * (precedence: overrides > local > committed > user > defaults). Throws ConfigError
 * on invalid values, naming the setting.
 */
export function mergeConfig(root: string, layers: ConfigFile[], overrides: ConfigOverrides = {}): RepoConfig {
  let chunker: Partial<ChunkerParams> | undefined;
  let remote: string | undefined;
  let link: LinkMode[] | undefined;
  let packSize: number | undefined;
  let jobs: number | undefined;
  let cacheDir: string | undefined;
  const remotes: Record<string, RemoteConfig> = {};
  for (const layer of layers) {
    if (layer.chunker) chunker = { ...chunker, ...layer.chunker };
    if (layer.core?.remote !== undefined) remote = layer.core.remote;
    if (layer.core?.link !== undefined) link = parseLinkList(layer.core.link, 'core.link');
    if (layer.core?.pack_size !== undefined) packSize = layer.core.pack_size;
    if (layer.core?.jobs !== undefined) jobs = parseJobs(layer.core.jobs, 'core.jobs');
    if (layer.cache?.dir !== undefined) cacheDir = layer.cache.dir;
    for (const [name, r] of Object.entries(layer.remotes ?? {})) {
      remotes[name] = { ...remotes[name], ...r } as RemoteConfig;
    }
  }
  if (overrides.remote !== undefined) remote = overrides.remote;
  if (overrides.link !== undefined) link = overrides.link;
  if (overrides.jobs !== undefined) jobs = overrides.jobs;
  if (overrides.cacheDir !== undefined) cacheDir = overrides.cacheDir;

  let params: ChunkerParams;
  try {
    params = validateChunkerParams({ ...DEFAULT_CHUNKER, ...chunker });
  } catch (err) {
    throw new ConfigError(`chunker: ${(err as Error).message}`, { hint: 'restore the chunker section written by `cpv init`', cause: err });
  }
  if (packSize !== undefined && (!Number.isSafeInteger(packSize) || packSize < MIN_PACK_SIZE || packSize > MAX_PACK_SIZE)) {
    throw new ConfigError(`core.pack_size must be between 1 MiB and 1 GiB, got ${packSize}`);
  }
  for (const [name, r] of Object.entries(remotes)) {
    if (!isValidRemoteName(name)) throw new ConfigError(`remote name ${JSON.stringify(name)} is not valid`);
    if (typeof r?.url !== 'string' || r.url.length === 0) throw new ConfigError(`remote "${name}" has no url`, { hint: `set it with \`cpv remote add ${name} URL\`` });
  }
  const dir = cacheDir ?? join('.cpv', 'cache');
  return {
    chunker: params,
    remote,
    link: link ?? DEFAULT_LINK,
    packSize: packSize ?? DEFAULT_PACK_SIZE,
    jobs: jobs ?? 8,
    cacheDir: isAbsolute(dir) ? dir : resolve(root, dir),
    remotes,
  };
}

/** Check the types of every known field, so a bad value names its file and key. */
function checkShape(f: ConfigFile, path: string): void {
  const bad = (key: string, want: string): never => {
    throw new ConfigError(`${path}: ${key} must be ${want}`, { hint: `fix ${path} (see \`cpv config --help\`)` });
  };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const known = ['version', 'chunker', 'core', 'cache', 'remotes'];
  for (const k of Object.keys(f)) if (!known.includes(k)) bad(k, `one of the known sections (${known.join(', ')}); "${k}" is not`);
  if (f.chunker !== undefined) {
    if (!isObj(f.chunker)) bad('chunker', 'a mapping');
    try {
      validateChunkerParams({ ...DEFAULT_CHUNKER, ...f.chunker });
    } catch (err) {
      throw new ConfigError(`${path}: chunker: ${(err as Error).message}`, { hint: 'restore the chunker section written by `cpv init`', cause: err });
    }
  }
  if (f.core !== undefined) {
    if (!isObj(f.core)) bad('core', 'a mapping');
    const c = f.core as Record<string, unknown>;
    for (const k of Object.keys(c)) if (!['remote', 'link', 'pack_size', 'jobs'].includes(k)) bad(`core.${k}`, 'a known setting (remote, link, pack_size, jobs)');
    if (c.remote !== undefined && typeof c.remote !== 'string') bad('core.remote', 'a remote name');
    if (c.link !== undefined && (!Array.isArray(c.link) || !c.link.every((m) => typeof m === 'string'))) bad('core.link', 'a list of link modes');
    if (c.link !== undefined && (c.link as unknown[]).length === 0) bad('core.link', 'a non-empty list of link modes');
    for (const m of (c.link as unknown[] | undefined) ?? []) if (!LINK_MODES.includes(m as LinkMode)) bad('core.link', `a list of ${LINK_MODES.join(', ')}; "${String(m)}" is not one`);
    if (c.pack_size !== undefined && (typeof c.pack_size !== 'number' || !Number.isSafeInteger(c.pack_size) || c.pack_size < MIN_PACK_SIZE || c.pack_size > MAX_PACK_SIZE)) {
      bad('core.pack_size', 'a number of bytes from 1 MiB (1048576) to 1 GiB (1073741824)');
    }
    if (c.jobs !== undefined && (typeof c.jobs !== 'number' || !Number.isInteger(c.jobs) || c.jobs < 1 || c.jobs > 256)) bad('core.jobs', 'an integer from 1 to 256');
  }
  if (f.cache !== undefined) {
    if (!isObj(f.cache)) bad('cache', 'a mapping');
    const c = f.cache as Record<string, unknown>;
    for (const k of Object.keys(c)) if (k !== 'dir') bad(`cache.${k}`, 'a known setting (dir)');
    if (c.dir !== undefined && (typeof c.dir !== 'string' || c.dir === '')) bad('cache.dir', 'a directory path');
  }
  if (f.remotes !== undefined) {
    if (!isObj(f.remotes)) bad('remotes', 'a mapping of remote names to settings');
    for (const [name, r] of Object.entries(f.remotes as Record<string, unknown>)) {
      if (!isValidRemoteName(name)) bad(`remotes.${JSON.stringify(name)}`, 'named with letters, digits, ".", "_" and "-"');
      if (!isObj(r)) return bad(`remotes.${name}`, 'a mapping with a url');
      for (const [k, v] of Object.entries(r)) {
        if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') bad(`remotes.${name}.${k}`, 'a string, number or boolean');
      }
      if (r.url !== undefined && typeof r.url !== 'string') bad(`remotes.${name}.url`, 'a string');
    }
  }
}
