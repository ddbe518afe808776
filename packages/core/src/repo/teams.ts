import { ConflictError, ConfigError, UsageError } from '../errors.js';
import { isValidTeamName, type TeamEntry } from '../registry/registry.js';
import { relPathProblem } from '../store/tree.js';
import { remoteAdd } from './remotes.js';
import type { Repo } from './repo.js';
import { readRegistry, writeRegistry } from './routing.js';

export interface TeamAddOptions {
  team: string;
  /** An existing cpv remote for the team's objects. */
  remote?: string;
  /**
   * A prefix for the team's objects: creates the remote `TEAM` at the URL of `remote`
   * (default: the default remote) plus `/PREFIX`, with the same options.
   */
  prefix?: string;
  description?: string;
  /** Change the remote of a team that already has artifacts (their versions stay where they were pushed). */
  force?: boolean;
  dryRun?: boolean;
}

export interface TeamAddResult {
  team: string;
  entry: TeamEntry;
  /** The remote created for a prefix. */
  createdRemote?: { name: string; url: string };
  dryRun: boolean;
}

/**
 * Declare a team in `.cpv/registry.yaml`: artifacts named `TEAM/name` then go to the
 * team's remote (push, pull, tags, hooks), while every team shares one local cache.
 * Throws UsageError for a bad team name or prefix, ConfigError for an unknown remote,
 * ConflictError when a remote named like the team exists with another URL.
 */
export async function teamAdd(repo: Repo, opts: TeamAddOptions): Promise<TeamAddResult> {
  if (!isValidTeamName(opts.team)) throw new UsageError(`invalid team name ${JSON.stringify(opts.team)}`, { hint: 'use letters, digits, ".", "_", "-"' });
  const reg = await readRegistry(repo);
  let remote = opts.remote;
  let createdRemote: TeamAddResult['createdRemote'];
  if (remote !== undefined && !repo.config.remotes[remote]) {
    throw new ConfigError(`unknown remote "${remote}"`, { hint: 'add it with `cpv remote add NAME URL` first' });
  }
  const before = reg.teams[opts.team]?.remote;
  const target = opts.prefix !== undefined ? opts.team : (remote ?? before);
  const members = [...Object.keys(reg.models), ...Object.keys(reg.data)].filter((n) => n.startsWith(`${opts.team}/`));
  if (target !== before && members.length > 0 && !opts.force) {
    throw new ConflictError(
      `team ${opts.team} already has ${members.length} artifact(s) (${members.slice(0, 3).join(', ')}${members.length > 3 ? ', …' : ''}) whose versions are on ${before ? `remote ${before}` : 'the default remote'}; after this change they would be looked for on ${target ? `remote ${target}` : 'the default remote'} only`,
      { hint: `pass --force, then copy the current versions with \`cpv push -r ${target ?? 'DEFAULT'}\` (older versions stay reachable with -r ${before ?? 'the default remote'})`, data: { team: opts.team, members } },
    );
  }
  if (opts.prefix !== undefined) {
    const prefix = opts.prefix.replace(/^\/+|\/+$/g, '');
    const problem = relPathProblem(prefix);
    if (problem) throw new UsageError(`--prefix ${JSON.stringify(opts.prefix)}: ${problem}`, { hint: 'e.g. --prefix teams/vision' });
    const baseName = remote ?? repo.config.remote;
    const base = baseName === undefined ? undefined : repo.config.remotes[baseName];
    if (!base) throw new ConfigError('--prefix needs a remote to extend: no default remote is set', { hint: 'pass --remote NAME, or set a default with `cpv remote default NAME`' });
    const url = `${base.url.replace(/\/+$/, '')}/${prefix}`;
    const existing = repo.config.remotes[opts.team];
    if (existing && existing.url !== url) {
      throw new ConflictError(`a remote named "${opts.team}" exists with another URL (${existing.url})`, { hint: `remove it with \`cpv remote remove ${opts.team}\`, or use --remote ${opts.team}` });
    }
    if (!existing) {
      const options: Record<string, string> = {};
      for (const [k, v] of Object.entries(base)) if (k !== 'url') options[k] = String(v);
      await remoteAdd(repo, opts.team, url, { options, dryRun: opts.dryRun });
      createdRemote = { name: opts.team, url };
    }
    remote = opts.team;
  }
  const entry: TeamEntry = { ...reg.teams[opts.team], ...(remote !== undefined ? { remote } : {}), ...(opts.description !== undefined ? { description: opts.description } : {}) };
  reg.teams[opts.team] = entry;
  if (!opts.dryRun) await writeRegistry(repo, reg);
  return { team: opts.team, entry, ...(createdRemote ? { createdRemote } : {}), dryRun: opts.dryRun === true };
}

/** Teams: those declared in the registry and those only named by artifacts, with counts. */
export async function teamList(repo: Repo): Promise<Array<{ team: string; remote?: string; description?: string; models: number; data: number }>> {
  const reg = await readRegistry(repo);
  const teams = new Map<string, { team: string; remote?: string; description?: string; models: number; data: number }>();
  const get = (t: string) => teams.get(t) ?? teams.set(t, { team: t, models: 0, data: 0 }).get(t)!;
  for (const [t, e] of Object.entries(reg.teams)) Object.assign(get(t), e);
  for (const [kind, section] of [['models', reg.models], ['data', reg.data]] as const) {
    for (const name of Object.keys(section)) {
      const i = name.indexOf('/');
      if (i > 0) get(name.slice(0, i))[kind]++;
    }
  }
  return [...teams.values()].sort((a, b) => (a.team < b.team ? -1 : 1));
}
