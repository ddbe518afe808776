import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { parse } from 'yaml';
import { NotFoundError, UsageError } from '../errors.js';
import { requireGit } from '../git/git.js';
import type { MetaValue } from '../pointer/pointer.js';
import { teamOf } from '../registry/registry.js';
import type { Repo } from './repo.js';
import { pointersAtCommit } from './tags.js';
import { versionTags } from './version-tags.js';

/** Experiment values files larger than this are refused (they are small YAML/JSON). */
const MAX_VALUES_FILE = 1024 * 1024;

/**
 * Parse `key=value` pairs and YAML/JSON files into one flat map, later specs winning.
 * A spec with `=` (and no file of that name) is a pair: `true`/`false` become
 * booleans, decimal numbers numbers, anything else a string. Otherwise the spec is a
 * file (relative to `cwd`) holding a mapping; nested keys are joined with "." and
 * list items get their index (`layers.0`). Throws UsageError naming the file for a
 * missing, unreadable or malformed file, or a value that is not a scalar.
 */
export async function loadValues(cwd: string, specs: readonly string[], what = 'params'): Promise<Record<string, MetaValue>> {
  const out: Record<string, MetaValue> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const file = resolve(cwd, spec);
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (eq > 0 && (code === 'ENOENT' || code === 'ENAMETOOLONG')) {
        out[spec.slice(0, eq)] = scalarOf(spec.slice(eq + 1));
        continue;
      }
      throw new UsageError(`--${what} ${spec}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { hint: `give a YAML or JSON file, or key=value (e.g. --${what} lr=0.001)` });
    }
    if (Buffer.byteLength(text) > MAX_VALUES_FILE) throw new UsageError(`${spec} is larger than ${MAX_VALUES_FILE} bytes`, { hint: `--${what} takes a small YAML or JSON file of ${what}` });
    let doc: unknown;
    try {
      doc = extname(file) === '.json' ? JSON.parse(text) : parse(text, { strict: true, uniqueKeys: true, maxAliasCount: 0 });
    } catch (err) {
      throw new UsageError(`${spec}: invalid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`, { hint: `fix ${spec}` });
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`${spec}: expected a mapping of names to values`, { hint: 'e.g. `lr: 0.001` and `epochs: 10`, one per line' });
    flatten(doc as Record<string, unknown>, '', out, spec);
  }
  return out;
}

function scalarOf(v: string): MetaValue {
  if (v === 'true') return true;
  if (v === 'false') return false;
  return v.trim() !== '' && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v.trim()) ? Number(v) : v;
}

function flatten(o: Record<string, unknown> | unknown[], prefix: string, out: Record<string, MetaValue>, file: string): void {
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object') {
      if (v instanceof Date) out[key] = v.toISOString();
      else flatten(v as Record<string, unknown>, key, out, file);
    } else if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) out[key] = v;
    else if (v === null) out[key] = 'null';
    else throw new UsageError(`${file}: ${key} is ${typeof v === 'number' ? String(v) : typeof v}; values are strings, finite numbers or booleans`, { hint: `fix ${file}` });
  }
}

/** One row of the experiment table: an artifact of a version tag with its params and metrics. */
export interface ExpRow {
  tag: string;
  date: string;
  commit: string;
  /** The artifact (a model, else a dataset) the values belong to. */
  name: string;
  kind: string;
  params: Record<string, MetaValue>;
  metrics: Record<string, MetaValue>;
  /** The tag's own metadata. */
  meta: Record<string, MetaValue>;
}

/**
 * The params and metrics recorded with version tags (all of them, oldest first, or
 * the given tags in that order): one row per bound model (per dataset when the tag
 * binds no model) that has params or metrics; a tag with none still gets a row for its
 * first artifact. `team` keeps tags binding that team's artifacts. Read-only. Throws
 * NotFoundError for a tag that is not a version tag.
 */
export async function expShow(repo: Repo, opts: { tags?: readonly string[]; team?: string } = {}): Promise<ExpRow[]> {
  const top = await requireGit(repo.root);
  const all = await versionTags(repo);
  const byName = new Map(all.map((t) => [t.name, t]));
  const chosen = opts.tags && opts.tags.length > 0 ? opts.tags.map((n) => byName.get(n) ?? missingTag(n)) : all.filter((t) => t.block);
  const rows: ExpRow[] = [];
  for (const t of chosen) {
    if (!t.block || !t.commit) throw new NotFoundError(`tag ${t.name} cannot be read: ${t.error ?? 'it names no commit'}`);
    const arts = t.block.artifacts.filter((a) => opts.team === undefined || teamOf(a.name) === opts.team);
    if (arts.length === 0) continue;
    const pointers = await pointersAtCommit(repo, top, t.commit);
    const models = arts.filter((a) => a.kind === 'model');
    const candidates = models.length > 0 ? models : arts;
    const withValues = candidates.filter((a) => pointers.get(a.path)?.params || pointers.get(a.path)?.metrics);
    for (const a of withValues.length > 0 ? withValues : candidates.slice(0, 1)) {
      const p = pointers.get(a.path);
      rows.push({ tag: t.name, date: t.date, commit: t.commit, name: a.name, kind: a.kind, params: p?.params ?? {}, metrics: p?.metrics ?? {}, meta: t.block.meta ?? {} });
    }
  }
  return rows;
}

function missingTag(name: string): never {
  throw new NotFoundError(`no version tag ${JSON.stringify(name)}`, { hint: 'list them with `cpv tag list` or `cpv checkpoint list`; fetch tags with `git fetch --tags`', data: { tag: name } });
}

/** One parameter or metric across the compared versions. */
export interface ExpCompareRow {
  section: 'params' | 'metrics';
  key: string;
  /** One value per compared column; null where that version has none. */
  values: Array<MetaValue | null>;
  /** Whether the values are not all equal. */
  differs: boolean;
  /** Metrics with numbers: each value minus the first column's (null where not numeric). */
  delta?: Array<number | null>;
}

export interface ExpCompareResult {
  /** Column labels: the tag, or `tag:name` when a tag has several rows. */
  columns: string[];
  rows: ExpCompareRow[];
}

/**
 * Params and metrics of two or more version tags side by side, every key of any of
 * them, with whether it differs and, for numeric metrics, the change against the
 * first. Read-only. Throws UsageError for fewer than two tags.
 */
export async function expCompare(repo: Repo, opts: { tags: readonly string[]; team?: string }): Promise<ExpCompareResult> {
  if (opts.tags.length < 2) throw new UsageError('compare needs at least two tags', { hint: 'e.g. cpv exp compare v1 v2' });
  const rows = await expShow(repo, { tags: opts.tags, team: opts.team });
  const perTag = new Map<string, number>();
  for (const r of rows) perTag.set(r.tag, (perTag.get(r.tag) ?? 0) + 1);
  const columns = rows.map((r) => (perTag.get(r.tag)! > 1 ? `${r.tag}:${r.name}` : r.tag));
  const out: ExpCompareRow[] = [];
  for (const section of ['params', 'metrics'] as const) {
    const keys = [...new Set(rows.flatMap((r) => Object.keys(r[section])))].sort();
    for (const key of keys) {
      const values = rows.map((r) => (key in r[section] ? r[section][key]! : null));
      const differs = values.some((v) => v !== values[0]);
      const row: ExpCompareRow = { section, key, values, differs };
      const base = values[0];
      if (section === 'metrics' && typeof base === 'number' && values.some((v) => typeof v === 'number')) {
        row.delta = values.map((v) => (typeof v === 'number' ? roundDelta(v - base) : null));
      }
      out.push(row);
    }
  }
  return { columns, rows: out };
}

/** Differences without binary floating-point noise (0.93 - 0.91 = 0.02, not 0.020000000000000018). */
function roundDelta(d: number): number {
  return Number.parseFloat(d.toPrecision(12));
}
