import { lstat, readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { NotFoundError, PointerParseError, UsageError } from '../errors.js';
import { decodePointer, parsePointer, POINTER_SUFFIX, serializePointer, trackedNameOf, type Pointer } from '../pointer/pointer.js';
import { pathExists, writeAtomic } from '../util/fs-atomic.js';
import type { Repo } from './repo.js';
import { selectEntries } from '../store/tree.js';
import { assertRealParent, isInside } from './workspace.js';

/** A pointer file in the workspace and what it tracks. */
export interface PointerRef {
  /** Pointer path relative to the repo root, `/`-separated (`data/train.cpv`). */
  pointerPath: string;
  /** Tracked path relative to the repo root (`data/train`). */
  path: string;
  /** Absolute tracked path. */
  abs: string;
  pointer: Pointer;
}

/** A resolved command target: a pointer, and for a directory optionally a subset of its files. */
export interface Target extends PointerRef {
  /** Entry paths inside a tracked directory; undefined means all. */
  only?: Set<string>;
}

const SKIP_DIRS = new Set(['.git', '.cpv', 'node_modules']);

/** `/`-separated path relative to root. */
export function toRel(root: string, abs: string): string {
  return relative(root, abs).split(sep).join('/');
}

/**
 * Read and strictly parse a pointer file. Throws PointerParseError naming the file
 * (relative to the repo) and line; NotFoundError if absent.
 */
export async function readPointer(repo: Repo, pointerRel: string): Promise<PointerRef> {
  const abs = join(repo.root, pointerRel);
  let text: string;
  try {
    // Never followed: a link could make a pointer out of any file on the machine.
    const st = await lstat(abs);
    if (st.isSymbolicLink()) throw new PointerParseError(pointerRel, 'is a symbolic link; a pointer must be a regular file', undefined, { hint: `replace ${pointerRel} with the pointer file itself (e.g. \`git checkout -- ${pointerRel}\`)` });
    if (!st.isFile()) throw new PointerParseError(pointerRel, 'not a regular file');
    if (st.size > 64 * 1024) throw new PointerParseError(pointerRel, `pointer is ${st.size} bytes; a pointer is a small YAML file, this is not one`);
    text = decodePointer(await readFile(abs), pointerRel);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`pointer ${pointerRel} does not exist`, { hint: 'track the path with `cpv add PATH`' });
    throw err;
  }
  const pointer = parsePointer(text, pointerRel);
  const path = pointerRel.slice(0, -POINTER_SUFFIX.length);
  return { pointerPath: pointerRel, path, abs: join(repo.root, path), pointer };
}

/** Write a pointer file atomically (0644). */
export async function writePointer(repo: Repo, pointerRel: string, p: Pointer): Promise<void> {
  await writeAtomic(join(repo.root, pointerRel), Buffer.from(serializePointer(p)), { mode: 0o644 });
}

/**
 * Every pointer file in the workspace (skipping `.git`, `.cpv`, `node_modules` and the
 * insides of tracked directories), sorted by path. Invalid pointers throw.
 */
export async function listPointers(repo: Repo): Promise<PointerRef[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const names = new Set(entries.map((e) => e.name));
    for (const e of entries) {
      if (e.isDirectory()) {
        if (SKIP_DIRS.has(e.name) || names.has(e.name + POINTER_SUFFIX)) continue;
        await walk(join(dir, e.name));
      } else if (e.isFile() && trackedNameOf(e.name) !== undefined) {
        // A name that is not valid UTF-8 reads back with U+FFFD in it, and no file
        // has that name: say what is wrong rather than that the pointer is missing.
        if (e.name.includes('\uFFFD') && !(await pathExists(join(dir, e.name)))) {
          throw new PointerParseError(toRel(repo.root, join(dir, e.name)), 'the file name is not valid UTF-8', undefined, { hint: 'rename the pointer (and the file it tracks) to a UTF-8 name, or remove it' });
        }
        found.push(toRel(repo.root, join(dir, e.name)));
      }
    }
  };
  await walk(repo.root);
  found.sort();
  return Promise.all(found.map((p) => readPointer(repo, p)));
}

/**
 * The pointer that tracks `abs` or one of its ancestors, if any: returns the ref and
 * the path inside a tracked directory ('' when `abs` is itself tracked).
 */
export async function findTracking(repo: Repo, abs: string): Promise<{ ref: PointerRef; inner: string } | undefined> {
  let cur = abs;
  while (isInside(repo.root, cur) && cur !== repo.root) {
    const pointerAbs = cur + POINTER_SUFFIX;
    if (await pathExists(pointerAbs)) {
      const ref = await readPointer(repo, toRel(repo.root, pointerAbs));
      return { ref, inner: toRel(cur, abs) };
    }
    cur = dirname(cur);
  }
  return undefined;
}

/**
 * Resolve command targets to pointers. A target may be a tracked path, its `.cpv`
 * pointer, a path inside a tracked directory (selecting those files), or a glob over
 * any of these. No targets means every pointer. Throws UsageError for a path outside
 * the repo and NotFoundError for a path cpv does not track.
 */
export async function resolveTargets(repo: Repo, cwd: string, targets: readonly string[]): Promise<Target[]> {
  if (targets.length === 0) return listPointers(repo);
  const out = new Map<string, Target>();
  const addTarget = (ref: PointerRef, inner: string): void => {
    const had = out.get(ref.pointerPath);
    if (inner === '') {
      out.set(ref.pointerPath, { ...ref });
      return;
    }
    if (had && had.only === undefined) return;
    const only = had?.only ?? new Set<string>();
    only.add(inner);
    out.set(ref.pointerPath, { ...ref, only });
  };
  for (const t of targets) {
    // A name with glob characters that exists literally (`w[v2].bin`) means itself.
    const literal = hasGlob(t) && ((await pathExists(resolve(cwd, t))) || (await pathExists(resolve(cwd, t) + POINTER_SUFFIX)));
    if (hasGlob(t) && !literal) {
      // Globs match tracked paths and pointer paths, relative to cwd, checked out or not.
      const re = globToRegExp(t);
      const all = await listPointers(repo);
      const rels = all.filter((r) => re.test(toRel(cwd, r.abs)) || re.test(toRel(cwd, r.abs) + POINTER_SUFFIX));
      if (rels.length === 0) throw new NotFoundError(`no tracked path matches ${JSON.stringify(t)}`, { hint: 'list tracked paths with `cpv status`' });
      for (const r of rels) addTarget(r, '');
      continue;
    }
    let abs = resolve(cwd, t);
    if (!isInside(repo.root, abs)) throw new UsageError(`${t} is outside the repository ${repo.root}`);
    if (abs.endsWith(POINTER_SUFFIX) && basename(abs) !== POINTER_SUFFIX) abs = abs.slice(0, -POINTER_SUFFIX.length);
    const tracking = await findTracking(repo, abs);
    if (!tracking) throw new NotFoundError(`${t} is not tracked by cpv`, { hint: `track it with \`cpv add ${t}\`` });
    // A pointer found through a symbolic link that leaves the repository is not ours:
    // checkout would write beside it, outside the workspace.
    await assertRealParent(repo, tracking.ref.abs, tracking.ref.path);
    if (tracking.inner !== '' && tracking.ref.pointer.type !== 'dir') throw new NotFoundError(`${t} is not tracked by cpv`);
    addTarget(tracking.ref, tracking.inner);
  }
  return [...out.values()].sort((a, b) => (a.pointerPath < b.pointerPath ? -1 : 1));
}

/** Whether a string contains glob syntax. */
export function hasGlob(s: string): boolean {
  return /[*?[\]{}]/.test(s);
}

/**
 * A glob as a RegExp over `/`-separated relative paths: `*` and `?` stay within one
 * component, `**` crosses components, `[...]` and `{a,b}` as in the shell.
 */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      out += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) out += '\\[';
      else {
        // A class never matches the separator, as in the shell.
        out += '(?!/)[' + glob.slice(i + 1, close).replace(/^!/, '^').replace(/\\/g, '\\\\') + ']';
        i = close;
      }
    } else if (c === '{') {
      const close = glob.indexOf('}', i + 1);
      if (close < 0) out += '\\{';
      else {
        out += '(?:' + glob.slice(i + 1, close).split(',').map((alt) => alt.replace(/[.+^$()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')).join('|') + ')';
        i = close;
      }
    } else out += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/**
 * Make git ignore tracked paths: adds `/<name>` (escaped) to the `.gitignore` next to
 * each, one write per directory. Idempotent. Returns the `.gitignore` files that
 * changed, relative to the root.
 */
export async function ignoreInGit(repo: Repo, trackedRels: readonly string[]): Promise<string[]> {
  const byDir = new Map<string, string[]>();
  for (const rel of trackedRels) {
    const dir = dirname(join(repo.root, rel));
    byDir.set(dir, [...(byDir.get(dir) ?? []), '/' + gitignoreEscape(basename(rel))]);
  }
  const changed: string[] = [];
  for (const [dir, lines] of byDir) {
    const file = join(dir, '.gitignore');
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const have = new Set(text.split(/\r?\n/));
    const add = [...new Set(lines)].filter((l) => !have.has(l));
    if (add.length === 0) continue;
    const next = text + (text === '' || text.endsWith('\n') ? '' : '\n') + add.join('\n') + '\n';
    await writeAtomic(file, Buffer.from(next), { mode: 0o644 });
    changed.push(toRel(repo.root, file));
  }
  return changed;
}

/** A file name as a literal .gitignore pattern: glob characters, a leading `!` or `#` and trailing spaces escaped. */
export function gitignoreEscape(name: string): string {
  return name.replace(/[\\*?[\]]/g, '\\$&').replace(/^[!#]/, '\\$&').replace(/ +$/, (sp) => sp.replace(/ /g, '\\ '));
}

/**
 * Paths inside tracked directories must name something in the tracked version (a
 * typo is an error, not a silent no-op). Checked against the cached tree; a tree not
 * in the cache is checked later, when it is fetched.
 */
export async function checkInnerPaths(repo: Repo, targets: readonly Target[]): Promise<void> {
  for (const t of targets) {
    if (!t.only || !(await repo.cache.hasTree(t.pointer.oid))) continue;
    selectEntries(await repo.cache.readTree(t.pointer.oid), t.only, t.path);
  }
}
