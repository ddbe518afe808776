import { lstat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, join, resolve, sep } from 'node:path';
import pLimit from 'p-limit';
import { ConflictError, NotFoundError, UsageError } from '../errors.js';
import { isValidArtifactName, isValidMetaKey, POINTER_SUFFIX, type ArtifactKind, type MetaValue, type Pointer } from '../pointer/pointer.js';
import type { TreeEntry } from '../store/tree.js';
import { relPathProblem, serializeTree } from '../store/tree.js';
import { blake3Hex } from '../hash/blake3.js';
import { toFileOid } from '../util/oid.js';
import { pathExists } from '../util/fs-atomic.js';
import type { ProgressEvent } from '../transfer/types.js';
import { findTracking, hasGlob, ignoreInGit, readPointer, toRel, writePointer } from './pointers.js';
import type { Repo } from './repo.js';
import { readRegistry } from './routing.js';
import { REGISTRY_FILE } from '../registry/registry.js';
import { withRepoLock } from './lock.js';
import { StatCache } from './state.js';
import { assertRealParent, hashFile, isInside, listDirFiles, statTracked } from './workspace.js';

export interface AddOptions {
  /** Directory the paths are relative to. */
  cwd: string;
  paths: readonly string[];
  kind?: ArtifactKind;
  name?: string;
  meta?: Record<string, MetaValue>;
  /**
   * Experiment parameters and metrics of this version (flat maps). Given: they replace
   * the pointer's. Not given: kept while the content is unchanged, dropped when it
   * changes (they described the old content).
   */
  params?: Record<string, MetaValue>;
  metrics?: Record<string, MetaValue>;
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

/** What `add` did (or would do) for one path. */
export interface AddedItem {
  path: string;
  pointerPath: string;
  type: 'file' | 'dir';
  oid: string;
  size: number;
  files?: number;
  /** 'new': not tracked before; 'modified': new content; 'unchanged': pointer already right. */
  status: 'new' | 'modified' | 'unchanged';
  /** Bytes newly stored in the cache. */
  storedBytes: number;
}

export interface AddResult {
  items: AddedItem[];
  /** Files to stage in git (pointers and changed .gitignore files), relative to the root. */
  gitAdd: string[];
}

/**
 * Track files and directories: store their content in the cache (chunked and hashed),
 * write `PATH.cpv` pointers and git-ignore the paths. Paths may be globs. Re-adding an
 * unchanged path reads nothing (the stat cache knows it). With `dryRun`, hashes and
 * reports but writes nothing.
 *
 * Throws UsageError for paths outside the repo, inside `.cpv`/`.git`, pointer files or
 * paths inside an already tracked directory; NotFoundError for a missing path;
 * ConflictError when a file changes while it is being added, or when another cpv
 * process holds the repository lock (taken unless `dryRun`).
 */
export async function add(repo: Repo, opts: AddOptions): Promise<AddResult> {
  return withRepoLock(repo.root, { command: 'add', skip: opts.dryRun }, () => addLocked(repo, opts));
}

async function addLocked(repo: Repo, opts: AddOptions): Promise<AddResult> {
  checkValues('metadata', opts.meta);
  checkValues('parameter', opts.params);
  checkValues('metric', opts.metrics);
  if (opts.name !== undefined && !isValidArtifactName(opts.name)) {
    throw new UsageError(`invalid name ${JSON.stringify(opts.name)}`, { hint: 'use letters, digits, ".", "_", "-", optionally "team/name"' });
  }
  const abss = await expandPaths(repo, opts.cwd, opts.paths);
  if (opts.name !== undefined && abss.length > 1) throw new UsageError('--name needs exactly one path');
  // A path registered as a model or dataset (`cpv model init`) is recorded under its
  // registry name and kind, so that everything routing by name agrees.
  const registry = await readRegistry(repo);
  const registered = new Map<string, { name: string; kind: ArtifactKind }>();
  for (const [kind, section] of [['model', registry.models], ['data', registry.data]] as const) {
    for (const [name, e] of Object.entries(section)) registered.set(e.path, { name, kind });
  }
  const optsFor = (abs: string): AddOptions => {
    const reg = registered.get(toRel(repo.root, abs));
    if (!reg) return opts;
    if (opts.name !== undefined && opts.name !== reg.name) {
      throw new UsageError(`${toRel(repo.root, abs)} is registered as ${reg.kind} ${reg.name}; it cannot be named ${opts.name}`, { hint: `drop --name, or change ${REGISTRY_FILE}` });
    }
    return { ...opts, name: reg.name, kind: opts.kind ?? reg.kind };
  };
  const perPath = abss.map((abs) => ({ abs, opts: optsFor(abs) }));
  const state = await StatCache.load(repo.root);
  const done: Array<{ item: AddedItem; pointer: Pointer; changed: boolean }> = [];
  const gitAdd = new Set<string>();
  try {
    // Paths in parallel (and files inside directories in parallel too): per-file
    // syscalls dominate for many small files.
    const limit = pLimit(Math.max(1, Math.min(4, repo.config.jobs)));
    const results = await Promise.all(perPath.map((p) => limit(() => (opts.signal?.throwIfAborted(), addOne(repo, p.abs, state, p.opts)))));
    done.push(...results);
    if (!opts.dryRun) {
      // One durability point for every object, before any pointer names them.
      await repo.cache.sync();
      for (const d of done) {
        if (d.changed) await writePointer(repo, d.item.pointerPath, d.pointer);
        gitAdd.add(d.item.pointerPath);
      }
      for (const changed of await ignoreInGit(repo, done.map((d) => d.item.path))) gitAdd.add(changed);
    }
  } finally {
    if (!opts.dryRun) await state.save();
  }
  const items = done.map((d) => d.item);
  return { items, gitAdd: [...gitAdd] };
}

async function expandPaths(repo: Repo, cwd: string, paths: readonly string[]): Promise<string[]> {
  if (paths.length === 0) throw new UsageError('nothing to add', { hint: 'name files or directories, e.g. `cpv add model.safetensors data/`' });
  const out: string[] = [];
  for (const p of paths) {
    // A name with glob characters that exists literally (`w[v2].bin`) means itself.
    if (hasGlob(p) && !(await pathExists(resolve(cwd, p)))) {
      // Loaded on first use: most commands never expand a glob, and start-up counts.
      const { default: fg } = await import('fast-glob');
      const matches = await fg(p, { cwd, dot: false, onlyFiles: false, absolute: true, ignore: ['**/.git/**', '**/.cpv/**', `**/*${POINTER_SUFFIX}`] });
      if (matches.length === 0) throw new NotFoundError(`no file matches ${JSON.stringify(p)}`);
      out.push(...matches.map((m) => resolve(m)).sort());
    } else {
      out.push(resolve(cwd, p.replace(/\/+$/, '') || p));
    }
  }
  const unique = [...new Set(out)];
  for (const p of unique) {
    const outer = unique.find((q) => p.startsWith(q + sep));
    if (outer) throw new UsageError(`${toRel(repo.root, p)} is inside ${toRel(repo.root, outer)}, which is added in the same command`, { hint: 'add the directory alone' });
  }
  return unique;
}

async function addOne(repo: Repo, abs: string, state: StatCache, opts: AddOptions): Promise<{ item: AddedItem; pointer: Pointer; changed: boolean }> {
  const rel = toRel(repo.root, abs);
  if (!isInside(repo.root, abs) || abs === repo.root) throw new UsageError(`${rel || abs} is not inside the repository ${repo.root}`, { hint: 'add paths inside the repository' });
  const top = rel.split('/')[0];
  if (top === '.git' || top === '.cpv') throw new UsageError(`${rel} is inside ${top}/; cpv cannot track it`);
  if (abs.endsWith(POINTER_SUFFIX)) throw new UsageError(`${rel} is a cpv pointer file`, { hint: `add the tracked path instead: cpv add ${rel.slice(0, -POINTER_SUFFIX.length)}` });
  // The pointer and .gitignore are written next to the path: its directory must
  // really be inside the repository (not reached through a symbolic link that leaves
  // it or leads into .git or .cpv).
  await assertRealParent(repo, abs, rel);
  // The name goes into a pointer and a .gitignore line: it must be one cpv can record.
  const name = basename(abs);
  const problem = relPathProblem(name);
  if (problem) throw new UsageError(`cannot track ${JSON.stringify(rel)}: ${problem}`, { hint: 'rename the file' });
  const parent = await findTracking(repo, join(abs, '..'));
  if (parent) throw new UsageError(`${rel} is inside ${parent.ref.path}, which cpv already tracks`, { hint: `run \`cpv add ${parent.ref.path}\` to record changes inside it` });
  let lst: Stats;
  try {
    lst = await lstat(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${rel} does not exist`, { hint: 'check the path' });
    throw err;
  }
  const pointerRel = rel + POINTER_SUFFIX;
  let previous: Pointer | undefined;
  try {
    previous = (await readPointer(repo, pointerRel)).pointer;
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  const progress = (path: string, total: number) => {
    let done = 0;
    return (n: number) => {
      done += n;
      opts.onProgress?.({ phase: 'hash', done, total, path });
    };
  };

  let pointer: Pointer;
  let storedBytes = 0;
  if (lst.isDirectory()) {
    const files = await listDirFiles(repo, abs);
    const total = files.reduce((n, f) => n + f.st.size, 0);
    const onBytes = progress(rel, total);
    // Files in parallel: small-file cost is dominated by per-file syscalls and fsync.
    const limit = pLimit(repo.config.jobs);
    const entries: TreeEntry[] = await Promise.all(
      files.map((f) =>
        limit(async () => {
          opts.signal?.throwIfAborted();
          const r = await storeFile(repo, f.abs, `${rel}/${f.path}`, f.st, state, opts, onBytes);
          storedBytes += r.stored;
          return { path: f.path, oid: r.oid, size: f.st.size, mode: f.mode };
        }),
      ),
    );
    // Objects first, durably: the tree names them.
    if (!opts.dryRun) await repo.cache.sync();
    const oid = opts.dryRun
      ? toFileOid(await blake3Hex(Buffer.from(serializeTree(entries))))
      : (await repo.cache.writeTree(entries)).oid;
    pointer = base(previous, opts, basename(abs), 'dir', oid, total);
    pointer.files = entries.length;
  } else {
    const st = await statTracked(repo, abs);
    if (!st || !st.isFile()) throw new UsageError(`${rel} is not a regular file or directory`);
    const r = await storeFile(repo, abs, rel, st, state, opts, progress(rel, st.size));
    storedBytes = r.stored;
    pointer = base(previous, opts, basename(abs), 'file', r.oid, st.size);
  }
  const changed = previous === undefined || JSON.stringify(previous) !== JSON.stringify(pointer);
  const item: AddedItem = {
    path: rel,
    pointerPath: pointerRel,
    type: pointer.type,
    oid: pointer.oid,
    size: pointer.size,
    ...(pointer.files !== undefined ? { files: pointer.files } : {}),
    status: previous === undefined ? 'new' : previous.oid === pointer.oid ? 'unchanged' : 'modified',
    storedBytes,
  };
  return { item, pointer, changed };
}

function base(previous: Pointer | undefined, opts: AddOptions, name: string, type: 'file' | 'dir', oid: string, size: number): Pointer {
  const p: Pointer = { version: 1, kind: opts.kind ?? previous?.kind ?? 'other', path: name, type, oid, size };
  const n = opts.name ?? previous?.name;
  if (n !== undefined) p.name = n;
  const meta = { ...previous?.meta, ...opts.meta };
  if (Object.keys(meta).length > 0) p.meta = meta;
  const same = previous?.oid === oid && previous.type === type;
  for (const section of ['params', 'metrics'] as const) {
    const values = opts[section] ?? (same ? previous[section] : undefined);
    if (values && Object.keys(values).length > 0) p[section] = values;
  }
  return p;
}

/** Reject keys and values a pointer could not hold. Throws UsageError. */
export function checkValues(what: string, values: Record<string, MetaValue> | undefined): void {
  for (const [k, v] of Object.entries(values ?? {})) {
    if (!isValidMetaKey(k)) throw new UsageError(`invalid ${what} key ${JSON.stringify(k)}`, { hint: 'keys start with a letter or "_" and use letters, digits, "_", "." or "-"' });
    if (typeof v === 'number' && !Number.isFinite(v)) throw new UsageError(`${what} ${k} must be a finite number`);
    if (typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'boolean') throw new UsageError(`${what} ${k} must be a string, number or boolean`);
  }
}

/**
 * Put one workspace file in the cache unless the stat cache and the cache say it is
 * there already. The stat is re-checked after copying, so a file that changes while it
 * is added is reported instead of being recorded under the wrong oid.
 */
async function storeFile(repo: Repo, abs: string, rel: string, st: Stats, state: StatCache, opts: AddOptions, onBytes: (n: number) => void): Promise<{ oid: string; stored: number }> {
  const known = state.lookup(rel, st);
  if (known && (await repo.cache.hasFile(known))) {
    onBytes(st.size);
    return { oid: known, stored: 0 };
  }
  if (opts.dryRun) {
    const oid = known ?? (await hashFile(abs, onBytes));
    return { oid, stored: (await repo.cache.hasFile(oid)) ? 0 : st.size };
  }
  const r = await repo.cache.ingestFile(abs, repo.config.chunker, { signal: opts.signal, onProgress: onBytes, size: st.size });
  const after = await statTracked(repo, abs);
  if (!after || after.size !== st.size || after.mtimeMs !== st.mtimeMs || r.size !== st.size) {
    throw new ConflictError(`${rel} changed while it was being added`, { hint: 'run the command again once the file is no longer being written' });
  }
  state.record(rel, st, r.oid);
  return { oid: r.oid, stored: r.existed ? 0 : r.size };
}
