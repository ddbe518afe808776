import { ConfigError, ConflictError, NotFoundError } from '../errors.js';
import { configPaths, isValidRemoteName, readConfigFile, writeConfigFile, type ConfigFile } from '../config/config.js';
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
  if (!dryRun && JSON.stringify(file) !== before) await writeConfigFile(path, file);
}

/**
 * Register a remote. Throws ConfigError for a bad name or URL, ConflictError if the
 * name exists and not `force`.
 */
export async function remoteAdd(repo: Repo, name: string, url: string, opts: RemoteEditOptions & { makeDefault?: boolean; force?: boolean } = {}): Promise<RemoteInfo> {
  if (!isValidRemoteName(name)) throw new ConfigError(`invalid remote name ${JSON.stringify(name)}`, { hint: 'use letters, digits, ".", "_", "-"' });
  if (url.trim() === '') throw new ConfigError('remote URL is empty', { hint: 'give a directory path or a file:// URL' });
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^file:\/\//i.test(url)) {
    throw new ConfigError(`unsupported remote URL ${JSON.stringify(url)}`, { hint: 'use a directory path or a file:// URL' });
  }
  if (repo.config.remotes[name] && !opts.force) throw new ConflictError(`remote "${name}" already exists (${repo.config.remotes[name]!.url})`, { hint: `remove it first with \`cpv remote remove ${name}\`, or pass --force` });
  await edit(repo, opts.local, opts.dryRun, (f) => {
    f.remotes = { ...f.remotes, [name]: { url } };
    if (opts.makeDefault) f.core = { ...f.core, remote: name };
  });
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
