import { ConfigError, ConflictError, NotFoundError } from '../errors.js';
import { configPaths, isValidRemoteName, readConfigFile, writeConfigFile, type ConfigFile, type RemoteConfig } from '../config/config.js';
import { isSecretOption, parseRemoteOption, remoteOption, schemeOf } from '../remote/options.js';
import { parseS3Url } from '../backend/s3-url.js';
import type { Repo } from './repo.js';

/** A remote as listed to users. */
export interface RemoteInfo {
  name: string;
  url: string;
  default: boolean;
  /** Which file defines it. */
  scope: 'config' | 'local';
}

export interface RemoteEditOptions {
  /** Write to `.cpv/config.local` (git-ignored) instead of `.cpv/config`. */
  local?: boolean;
  dryRun?: boolean;
}

async function edit(repo: Repo, local: boolean | undefined, dryRun: boolean | undefined, fn: (f: ConfigFile) => void): Promise<void> {
  const path = local ? configPaths(repo.root).local : configPaths(repo.root).committed;
  const file = await readConfigFile(path);
  const before = JSON.stringify(file);
  fn(file);
  // The local file holds credentials: its owner alone may read it.
  if (!dryRun && JSON.stringify(file) !== before) await writeConfigFile(path, file, { private: local === true });
}

/**
 * Register a remote. Throws ConfigError for a bad name or URL, ConflictError if the
 * name exists and not `force`.
 */
export async function remoteAdd(
  repo: Repo,
  name: string,
  url: string,
  opts: RemoteEditOptions & { makeDefault?: boolean; force?: boolean; options?: Record<string, string | undefined> } = {},
): Promise<RemoteInfo> {
  if (!isValidRemoteName(name)) throw new ConfigError(`invalid remote name ${JSON.stringify(name)}`, { hint: 'use letters, digits, ".", "_", "-"' });
  if (url.trim() === '') throw new ConfigError('remote URL is empty', { hint: 'give a directory path or a file:// URL' });
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^(file|s3):\/\//i.test(url)) {
    throw new ConfigError(`unsupported remote URL ${JSON.stringify(url)}`, { hint: 'use s3://bucket/prefix, a directory path or a file:// URL' });
  }
  if (schemeOf(url) === 's3') parseS3Url(url);
  const settings: Record<string, string | number | boolean> = {};
  const secrets: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(opts.options ?? {})) {
    if (v === undefined) continue;
    (isSecretOption(k) ? secrets : settings)[k] = parseRemoteOption(url, k, v);
  }
  if (repo.config.remotes[name] && !opts.force) throw new ConflictError(`remote "${name}" already exists (${repo.config.remotes[name]!.url})`, { hint: `remove it first with \`cpv remote remove ${name}\`, or pass --force` });
  await edit(repo, opts.local, opts.dryRun, (f) => {
    f.remotes = { ...f.remotes, [name]: { url, ...settings } };
    if (opts.makeDefault) f.core = { ...f.core, remote: name };
  });
  if (Object.keys(secrets).length > 0) {
    // Credentials never go into a committed file.
    await edit(repo, true, opts.dryRun, (f) => {
      f.remotes = { ...f.remotes, [name]: { ...f.remotes?.[name], ...secrets } as RemoteConfig };
    });
  }
  return { name, url, default: opts.makeDefault === true || repo.config.remote === name, scope: opts.local ? 'local' : 'config' };
}

/** Every configured remote, with the default marked. */
export async function remoteList(repo: Repo): Promise<RemoteInfo[]> {
  const local = await readConfigFile(configPaths(repo.root).local);
  return Object.entries(repo.config.remotes)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, r]) => ({ name, url: r.url, default: repo.config.remote === name, scope: local.remotes?.[name] ? 'local' : 'config' }));
}

/** Remove a remote from the file(s) that define it; clears it as default. Throws NotFoundError. */
export async function remoteRemove(repo: Repo, name: string, opts: RemoteEditOptions = {}): Promise<void> {
  if (!repo.config.remotes[name]) throw new NotFoundError(`no remote named "${name}"`, { hint: 'see `cpv remote list`' });
  const paths = configPaths(repo.root);
  const defined = [await readConfigFile(paths.committed), await readConfigFile(paths.local)].some((f) => f.remotes?.[name]);
  if (!defined) {
    throw new ConfigError(`remote "${name}" is defined in your user configuration, not in this repository`, { hint: 'edit ~/.config/cpv/config to remove it' });
  }
  for (const local of [false, true]) {
    await edit(repo, local, opts.dryRun, (f) => {
      if (f.remotes?.[name]) delete f.remotes[name];
      if (f.core?.remote === name) delete f.core.remote;
    });
  }
}

/** Make `name` the default remote. Throws NotFoundError for an unknown remote. */
export async function remoteDefault(repo: Repo, name: string, opts: RemoteEditOptions = {}): Promise<void> {
  if (!repo.config.remotes[name]) throw new NotFoundError(`no remote named "${name}"`, { hint: 'add it with `cpv remote add NAME URL`' });
  await edit(repo, opts.local, opts.dryRun, (f) => {
    f.core = { ...f.core, remote: name };
  });
}

/**
 * Set (or with `value` undefined, unset) one option of a remote: `url` or any of
 * REMOTE_OPTIONS. Secrets always go to `.cpv/config.local`. Returns the file written.
 * Throws NotFoundError for an unknown remote, ConfigError for a bad option or value.
 */
export async function remoteModify(repo: Repo, name: string, key: string, value: string | undefined, opts: RemoteEditOptions = {}): Promise<{ file: string }> {
  const current = repo.config.remotes[name];
  if (!current) throw new NotFoundError(`no remote named "${name}"`, { hint: 'see `cpv remote list`' });
  let parsed: string | number | boolean | undefined;
  if (key === 'url') {
    if (value === undefined) throw new ConfigError('a remote needs a url', { hint: `remove the remote with \`cpv remote remove ${name}\`` });
    if (schemeOf(value) === 's3') parseS3Url(value);
    parsed = value;
  } else if (value !== undefined) parsed = parseRemoteOption(current.url, key, value);
  else remoteOption(current.url, key);
  const local = opts.local || isSecretOption(key);
  const paths = configPaths(repo.root);
  await edit(repo, local, opts.dryRun, (f) => {
    const r = { ...(f.remotes?.[name] ?? (local ? {} : { url: current.url })) } as Record<string, unknown>;
    if (parsed === undefined) delete r[key];
    else r[key] = parsed;
    f.remotes = { ...f.remotes, [name]: r as RemoteConfig };
  });
  return { file: local ? paths.local : paths.committed };
}
