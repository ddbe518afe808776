import { isMap, LineCounter, parseDocument, stringify, visit } from 'yaml';
import { FormatError } from '../errors.js';
import { isValidRemoteName } from '../config/config.js';
import { isValidArtifactName } from '../pointer/pointer.js';
import { relPathProblem } from '../store/tree.js';

/** Where the registry lives, relative to the repository root (committed). */
export const REGISTRY_FILE = '.cpv/registry.yaml';
/** The registry format version this build writes and the only one it reads. */
export const REGISTRY_VERSION = 1;
const MAX_REGISTRY_BYTES = 4 * 1024 * 1024;

/** The kinds the registry names: models and datasets. */
export type RegistryKind = 'model' | 'data';
export const REGISTRY_KINDS: readonly RegistryKind[] = ['model', 'data'];

/** A registered model or dataset. */
export interface RegistryEntry {
  /** Tracked path relative to the repository root, `/`-separated. */
  path: string;
  description?: string;
}

/** A team: the first component of `team/name`. */
export interface TeamEntry {
  /** The cpv remote that holds the team's objects (default: the default remote). */
  remote?: string;
  description?: string;
}

/** `.cpv/registry.yaml`: the names a team gives its models and datasets. */
export interface Registry {
  version: number;
  teams: Record<string, TeamEntry>;
  models: Record<string, RegistryEntry>;
  data: Record<string, RegistryEntry>;
}

export function emptyRegistry(): Registry {
  return { version: REGISTRY_VERSION, teams: {}, models: {}, data: {} };
}

/** The registry section holding a kind. */
export function sectionOf(kind: RegistryKind): 'models' | 'data' {
  return kind === 'model' ? 'models' : 'data';
}

/** The team of `team/name`, undefined for a plain name. */
export function teamOf(name: string): string | undefined {
  const i = name.indexOf('/');
  return i < 0 ? undefined : name.slice(0, i);
}

/** Team names: one component of an artifact name. */
export function isValidTeamName(team: string): boolean {
  return !team.includes('/') && isValidArtifactName(team);
}

const TOP_KEYS = new Set(['version', 'teams', 'models', 'data']);
const ENTRY_KEYS = new Set(['path', 'description']);
const TEAM_KEYS = new Set(['remote', 'description']);

/**
 * Parse registry text. Pure. Throws FormatError naming `file` for invalid YAML,
 * an unknown version or key, a bad name, path or remote, or one path registered twice.
 */
export function parseRegistry(text: string, file: string): Registry {
  const fail = (reason: string, line?: number): never => {
    throw new FormatError(`${file}${line === undefined ? '' : `:${line}`}: ${reason}`, {
      hint: `fix ${file} (or restore it with \`git checkout -- ${file}\`); it is written by \`cpv model init\` and \`cpv data init\``,
      data: { file, ...(line === undefined ? {} : { line }) },
    });
  };
  if (Buffer.byteLength(text, 'utf8') > MAX_REGISTRY_BYTES) fail(`larger than ${MAX_REGISTRY_BYTES} bytes`);
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false, strict: true, schema: 'core' });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    fail(`invalid YAML: ${e.message.split('\n')[0]}`, e.pos ? lc.linePos(e.pos[0]).line : undefined);
  }
  let alias = false;
  visit(doc, {
    Alias() {
      alias = true;
      return visit.BREAK;
    },
  });
  if (alias) fail('YAML aliases (*name) are not allowed');
  if (doc.contents === null) return emptyRegistry();
  if (!isMap(doc.contents)) fail('expected a mapping with keys version, teams, models, data', 1);
  const js = doc.toJS({ maxAliasCount: 0 }) as Record<string, unknown>;
  for (const k of Object.keys(js)) if (!TOP_KEYS.has(k)) fail(`unknown key "${k}" (expected version, teams, models, data)`);
  if (js.version !== REGISTRY_VERSION) fail(`unsupported version ${JSON.stringify(js.version ?? null)} (this cpv reads version ${REGISTRY_VERSION}; upgrade cpv if the file is newer)`);
  const reg = emptyRegistry();
  const mapping = (v: unknown, what: string): Record<string, unknown> => {
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) fail(`${what} must be a mapping`);
    return v as Record<string, unknown>;
  };
  const fields = (v: unknown, what: string, allowed: Set<string>): Record<string, unknown> => {
    const m = mapping(v, what);
    for (const k of Object.keys(m)) if (!allowed.has(k)) fail(`${what}: unknown key "${k}" (expected ${[...allowed].join(', ')})`);
    for (const k of ['description', 'remote', 'path']) if (m[k] !== undefined && typeof m[k] !== 'string') fail(`${what}.${k} must be a string`);
    return m;
  };
  for (const [team, v] of Object.entries(mapping(js.teams, 'teams'))) {
    if (!isValidTeamName(team)) fail(`invalid team name ${JSON.stringify(team)} (letters, digits, ".", "_", "-")`);
    const f = fields(v, `teams.${team}`, TEAM_KEYS);
    if (f.remote !== undefined && !isValidRemoteName(f.remote as string)) fail(`teams.${team}.remote: invalid remote name ${JSON.stringify(f.remote)}`);
    reg.teams[team] = { ...(f.remote !== undefined ? { remote: f.remote as string } : {}), ...(f.description !== undefined ? { description: f.description as string } : {}) };
  }
  const seen = new Map<string, string>();
  for (const kind of REGISTRY_KINDS) {
    const section = sectionOf(kind);
    for (const [name, v] of Object.entries(mapping(js[section], section))) {
      if (!isValidArtifactName(name)) fail(`${section}: invalid name ${JSON.stringify(name)} (letters, digits, ".", "_", "-", optionally "team/name")`);
      const f = fields(v, `${section}.${name}`, ENTRY_KEYS);
      if (typeof f.path !== 'string') fail(`${section}.${name}: missing "path"`);
      const problem = relPathProblem(f.path as string);
      if (problem) fail(`${section}.${name}.path ${JSON.stringify(f.path)}: ${problem}; paths are relative to the repository root`);
      if ((f.path as string).split('/')[0] === '.cpv' || (f.path as string).split('/')[0] === '.git') fail(`${section}.${name}.path ${JSON.stringify(f.path)} is inside .cpv or .git`);
      const other = seen.get(f.path as string);
      if (other) fail(`${f.path} is registered twice (${other} and ${section}.${name})`);
      seen.set(f.path as string, `${section}.${name}`);
      reg[section][name] = { path: f.path as string, ...(f.description !== undefined ? { description: f.description as string } : {}) };
    }
  }
  // `NAME@VERSION` tags and `--version` lookups are by name alone: one name, one artifact.
  for (const name of Object.keys(reg.models)) if (reg.data[name]) fail(`${name} is both a model and a dataset; names are shared by models and data`);
  return reg;
}

/** Registry text with sorted names: stable diffs, easy merges. Inverse of parseRegistry. */
export function serializeRegistry(reg: Registry): string {
  const sorted = <T>(o: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const out: Record<string, unknown> = { version: REGISTRY_VERSION };
  if (Object.keys(reg.teams).length > 0) out.teams = sorted(reg.teams);
  if (Object.keys(reg.models).length > 0) out.models = sorted(reg.models);
  if (Object.keys(reg.data).length > 0) out.data = sorted(reg.data);
  return '# cpv registry: model and dataset names (cpv model init / cpv data init). Commit this file.\n' + stringify(out, { lineWidth: 0 });
}
