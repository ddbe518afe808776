import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ConflictError, GitError, IntegrityError, NotFoundError, UsageError } from '../errors.js';
import { headCommit, requireGit, resolveRev, tagExists } from '../git/git.js';
import { fileAt } from '../git/history.js';
import { POINTER_SUFFIX, type Pointer } from '../pointer/pointer.js';
import { parseRegistry, REGISTRY_FILE, sectionOf, type RegistryKind } from '../registry/registry.js';
import type { FetchResult } from '../transfer/fetch.js';
import type { ProgressEvent } from '../transfer/types.js';
import { pathExists } from '../util/fs-atomic.js';
import { shortOid } from '../util/oid.js';
import { CMD, KIND_WORD, selectArtifacts, type ArtifactRef } from './artifacts.js';
import { readPointer, toRel } from './pointers.js';
import type { Repo } from './repo.js';
import { readRegistry } from './routing.js';
import { fetchItems, pull, type Routed } from './sync.js';
import { pointersAtCommit } from './tags.js';
import { isInside } from './workspace.js';

/**
 * The commit a version names for an artifact: the tag `NAME@VERSION` if it exists
 * (resolved as `refs/tags/…`, never a branch of that name), else VERSION as any git
 * revision (a checkpoint tag, branch, commit). `rev` is the label to show. Throws
 * NotFoundError naming both when neither resolves.
 */
export async function resolveVersion(repo: Repo, name: string, version: string): Promise<{ rev: string; commit: string }> {
  if (!version.startsWith('-')) {
    const tag = `${name}@${version}`;
    if (await tagExists(repo.root, tag)) return { rev: tag, commit: await resolveRev(repo.root, `refs/tags/${tag}`) };
    try {
      return { rev: version, commit: await resolveRev(repo.root, version) };
    } catch (err) {
      if (!(err instanceof GitError)) throw err;
    }
  }
  throw new NotFoundError(`no version ${JSON.stringify(version)} of ${name}: neither tag ${name}@${version} nor revision ${version} exists`, {
    hint: `list versions with \`cpv model list ${name}\` (or \`cpv data list ${name}\`); fetch tags with \`git fetch --tags\``,
    data: { name, version },
  });
}

/** The pointer of an artifact at a commit (its path from the registry of that commit when it moved). */
export async function pointerAtVersion(repo: Repo, ref: ArtifactRef, commit: string): Promise<{ path: string; pointer: Pointer } | undefined> {
  const top = await requireGit(repo.root);
  const pointers = await pointersAtCommit(repo, top, commit);
  const here = pointers.get(ref.path);
  if (here) return { path: ref.path, pointer: here };
  const prefix = toRel(top, repo.root);
  const text = await fileAt(top, commit, prefix ? `${prefix}/${REGISTRY_FILE}` : REGISTRY_FILE);
  const then = text === undefined ? undefined : parseRegistry(text, `${commit.slice(0, 12)}:${REGISTRY_FILE}`)[sectionOf(ref.kind)][ref.name];
  const p = then ? pointers.get(then.path) : undefined;
  return p && then ? { path: then.path, pointer: p } : undefined;
}

export interface ArtifactDownloadOptions {
  cwd: string;
  kind: RegistryKind;
  names: readonly string[];
  team?: string;
  /** A version: `NAME@VERSION` tag or any git revision. Default: the workspace's pointer. */
  version?: string;
  /**
   * Directory to write into (`OUT/<base name>`). Default: the tracked path itself
   * without a version; with a version, the current directory.
   */
  out?: string;
  /** Replace an existing output (never a tracked path), or discard unsaved workspace changes. */
  force?: boolean;
  remote?: string;
  jobs?: number;
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

export interface DownloadedArtifact extends ArtifactRef {
  /** The revision read, when a version was asked for. */
  rev?: string;
  commit?: string;
  type: 'file' | 'dir';
  oid: string;
  size: number;
  files?: number;
  /** Where the content was written, relative to `cwd`. */
  dest: string;
}

export interface ArtifactDownloadResult {
  items: DownloadedArtifact[];
  fetch: Routed<FetchResult>;
  dryRun: boolean;
}

/**
 * Bring artifacts back, verified: without a version or `out`, like `cpv pull` of
 * their paths; otherwise the pointer of the version (from git) is fetched into the
 * cache and its content written to `OUT/<base name>`, every file re-hashed on the
 * way, through a temporary name. Never writes over a tracked path. Throws
 * NotFoundError, ConflictError (output exists; pass force), IntegrityError.
 */
export async function artifactDownload(repo: Repo, opts: ArtifactDownloadOptions): Promise<ArtifactDownloadResult> {
  const refs = selectArtifacts(await readRegistry(repo), opts.kind, opts.names, opts.team);
  if (refs.length === 0) throw new NotFoundError(`no ${KIND_WORD[opts.kind]} is registered${opts.team ? ` for team ${opts.team}` : ''}`);
  if (opts.version === undefined && opts.out === undefined) {
    const r = await pull(repo, { cwd: repo.root, targets: refs.map((x) => x.path), remote: opts.remote, jobs: opts.jobs, dryRun: opts.dryRun, force: opts.force, signal: opts.signal, onProgress: opts.onProgress });
    const items: DownloadedArtifact[] = [];
    for (const x of refs) {
      const { pointer: p } = await readPointer(repo, x.path + POINTER_SUFFIX);
      items.push({ ...x, type: p.type, oid: p.oid, size: p.size, ...(p.files !== undefined ? { files: p.files } : {}), dest: toRel(opts.cwd, join(repo.root, x.path)) || '.' });
    }
    return {
      items,
      fetch: r.fetch,
      dryRun: opts.dryRun === true,
    };
  }
  const head = await headCommit(repo.root);
  const chosen: Array<{ ref: ArtifactRef; rev?: string; commit?: string; pointer: Pointer; dest: string }> = [];
  for (const ref of refs) {
    let at: { path: string; pointer: Pointer } | undefined;
    let rev: string | undefined;
    let commit: string | undefined;
    if (opts.version !== undefined) {
      ({ rev, commit } = await resolveVersion(repo, ref.name, opts.version));
      at = await pointerAtVersion(repo, ref, commit);
      if (!at) throw new NotFoundError(`${ref.name} is not tracked at ${opts.version} (commit ${commit.slice(0, 12)})`, { hint: `list its versions with \`cpv ${CMD[opts.kind]} list ${ref.name}\``, data: { name: ref.name, rev } });
    } else {
      if (!head) throw new NotFoundError('the repository has no commits');
      at = await pointerAtVersion(repo, ref, head);
      if (!at) throw new NotFoundError(`${ref.name} has no committed version`, { hint: `upload one with \`cpv ${CMD[opts.kind]} upload ${ref.name}\`` });
    }
    const outDir = resolve(opts.cwd, opts.out ?? '.');
    const dest = join(outDir, basename(at.path));
    await checkDestination(repo, opts.cwd, outDir, dest, opts.kind, ref.name, opts.force === true);
    chosen.push({ ref, ...(rev ? { rev } : {}), ...(commit ? { commit } : {}), pointer: at.pointer, dest });
  }
  const seen = new Set<string>();
  for (const c of chosen) {
    if (seen.has(c.dest)) throw new UsageError(`two artifacts would be written to ${toRel(opts.cwd, c.dest)}`, { hint: 'download them one at a time, each with its own --out' });
    seen.add(c.dest);
  }
  const fetched = await fetchItems(
    repo,
    chosen.map((c) => ({ oid: c.pointer.oid, type: c.pointer.type, size: c.pointer.size, path: c.ref.path, name: c.ref.name })),
    { remote: opts.remote, jobs: opts.jobs, dryRun: opts.dryRun, signal: opts.signal, onProgress: opts.onProgress },
  );
  if (!opts.dryRun) for (const c of chosen) await exportContent(repo, c.pointer, c.dest);
  return {
    items: chosen.map((c) => ({
      ...c.ref,
      ...(c.rev ? { rev: c.rev } : {}),
      ...(c.commit ? { commit: c.commit } : {}),
      type: c.pointer.type,
      oid: c.pointer.oid,
      size: c.pointer.size,
      ...(c.pointer.files !== undefined ? { files: c.pointer.files } : {}),
      dest: toRel(opts.cwd, c.dest) || '.',
    })),
    fetch: fetched,
    dryRun: opts.dryRun === true,
  };
}

/**
 * Refuse outputs that would lose something: an existing one without `force`; one
 * holding the repository or the current directory; a tracked path or anything inside
 * one; anything inside `.cpv`/`.git`; an output directory that is a file. Runs for
 * every artifact before anything is fetched or written.
 */
async function checkDestination(repo: Repo, cwd: string, outDir: string, dest: string, kind: RegistryKind, name: string, force: boolean): Promise<void> {
  const outStat = await stat(outDir).catch(() => undefined);
  if (outStat && !outStat.isDirectory()) throw new UsageError(`--out ${outDir} is not a directory`, { hint: 'give a directory to write into (it is created if missing)' });
  if (isInside(dest, repo.root) || isInside(dest, cwd)) {
    throw new UsageError(`${name} would be written to ${dest}, which holds the repository or the current directory`, { hint: 'choose another --out' });
  }
  if (isInside(repo.root, dest)) checkInsideRepo(repo, dest, kind, name);
  if (await pathExists(dest)) {
    if (!force) throw new ConflictError(`${dest} exists`, { hint: 'pass --force to replace it, or choose another --out', data: { path: dest } });
    if (await pathExists(join(dest, '.git'))) throw new UsageError(`${dest} is a git repository; a download never replaces one`, { hint: 'choose another --out' });
  }
}

/** Refuse a destination inside `.cpv`/`.git`, or a tracked path or anything inside one. */
function checkInsideRepo(repo: Repo, dest: string, kind: RegistryKind, name: string): void {
  const rel = toRel(repo.root, dest);
  const top = rel.split('/')[0];
  if (top === '.cpv' || top === '.git') throw new UsageError(`cannot write ${name} into ${top}`, { hint: 'choose another --out' });
  // A tracked path (or anything inside one) is the workspace's, owned by checkout.
  for (let cur = dest; isInside(repo.root, cur) && cur !== repo.root; cur = dirname(cur)) {
    if (existsSync(cur + POINTER_SUFFIX)) {
      throw new ConflictError(`${toRel(repo.root, cur)} is a tracked path; a download of another version does not write over it`, {
        hint: `choose another --out, or switch the workspace with \`cpv ${CMD[kind]} revert ${name} --to VERSION\``,
        data: { path: toRel(repo.root, cur) },
      });
    }
  }
}

/**
 * Write the content of a pointer from the cache to `dest`: every file re-hashed
 * against its oid first, staged next to `dest` and renamed into place (a directory
 * as a whole). Throws NotFoundError when an object is not cached, IntegrityError
 * when one is corrupt; nothing is left at `dest` then.
 */
export async function exportContent(repo: Repo, p: Pick<Pointer, 'type' | 'oid'>, dest: string): Promise<void> {
  const stage = `${dest}.cpv-tmp-${randomBytes(4).toString('hex')}`;
  await ensureDir(dirname(dest));
  try {
    if (p.type === 'file') await exportFile(repo, p.oid, stage, dest);
    else {
      const entries = await repo.cache.readTree(p.oid);
      await mkdir(stage);
      for (const e of entries) {
        const to = join(stage, ...e.path.split('/'));
        await mkdir(dirname(to), { recursive: true });
        await exportFile(repo, e.oid, to, `${dest}/${e.path}`);
        if (e.mode & 0o111) await chmod(to, 0o755);
      }
    }
    await rm(dest, { recursive: true, force: true });
    await rename(stage, dest);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

async function exportFile(repo: Repo, oid: string, to: string, shown: string): Promise<void> {
  if (!(await repo.cache.hasFile(oid))) {
    throw new NotFoundError(`${shown}: object ${shortOid(oid)} is not in the cache`, { hint: 'run the download again; if it persists, run `cpv fetch`' });
  }
  if (!(await repo.cache.verifyFile(oid))) {
    throw new IntegrityError(`cache object ${shortOid(oid)} for ${shown} is corrupt (${repo.cache.filePath(oid)})`, { hint: `delete ${repo.cache.filePath(oid)} and download again`, data: { oid } });
  }
  await copyFile(repo.cache.filePath(oid), to);
  await chmod(to, 0o644);
}

/**
 * `mkdir -p` that walks up to the nearest existing directory itself (recursive mkdir
 * never returns for some paths under /proc). Throws UsageError naming the directory.
 */
async function ensureDir(dir: string): Promise<void> {
  const missing: string[] = [];
  let cur = dir;
  for (;;) {
    const st = await stat(cur).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
    if (st) {
      if (!st.isDirectory()) throw new UsageError(`${cur} is not a directory`, { hint: 'choose another --out' });
      break;
    }
    missing.push(cur);
    if (dirname(cur) === cur) break;
    cur = dirname(cur);
  }
  for (const d of missing.reverse()) {
    try {
      await mkdir(d);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new UsageError(`cannot create ${d}: ${code ?? (err as Error).message}`, { hint: 'choose another --out' });
    }
  }
}
