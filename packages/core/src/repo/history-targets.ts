import { basename, dirname, join, resolve } from 'node:path';
import { NotFoundError, UsageError } from '../errors.js';
import { POINTER_SUFFIX } from '../pointer/pointer.js';
import { pathExists } from '../util/fs-atomic.js';
import { globToRegExp, hasGlob, toRel } from './pointers.js';
import type { Repo } from './repo.js';
import { isInside } from './workspace.js';

/** A tracked path named by the user, resolved without requiring it in the workspace. */
export interface HistoryTarget {
  /** Tracked path relative to the repo root, `/`-separated. */
  path: string;
  /** Its pointer file relative to the repo root. */
  pointerPath: string;
  /** The argument as given. */
  arg: string;
  /** Set when the argument named a path inside a tracked directory: that inner path. */
  inner?: string;
}

/**
 * Resolve targets for commands that look into git history, where a path may be
 * tracked in some revision but not in the workspace. A target is a tracked path or its
 * pointer, a path inside a tracked directory (`inner` is set), or a glob matched
 * against `known` (pointer paths relative to the repo root, e.g. those in the revision
 * in question). A plain path that matches nothing is returned as given: callers check
 * it against history and throw NotFoundError naming it. Reads no pointer contents.
 * Throws UsageError for a path outside the repository or the root itself, and
 * NotFoundError for a glob that matches nothing. Results are de-duplicated and sorted by pointer path.
 */
export async function resolveHistoryTargets(repo: Repo, cwd: string, targets: readonly string[], known: readonly string[]): Promise<HistoryTarget[]> {
  const knownSet = new Set(known);
  const out = new Map<string, HistoryTarget>();
  const exists = async (pointerRel: string): Promise<boolean> => knownSet.has(pointerRel) || (await pathExists(join(repo.root, pointerRel)));
  for (const t of targets) {
    const abs0 = resolve(cwd, t);
    const literal = (await pathExists(abs0)) || (await pathExists(abs0 + POINTER_SUFFIX));
    if (hasGlob(t) && !literal) {
      const re = globToRegExp(t);
      const matched = known.filter((p) => {
        const rel = toRel(cwd, join(repo.root, p));
        return re.test(rel) || re.test(rel.slice(0, -POINTER_SUFFIX.length));
      });
      if (matched.length === 0) throw new NotFoundError(`no tracked path matches ${JSON.stringify(t)}`, { hint: 'list tracked paths with `cpv log` or `cpv status`' });
      for (const p of matched) out.set(p, { path: p.slice(0, -POINTER_SUFFIX.length), pointerPath: p, arg: t });
      continue;
    }
    let abs = abs0;
    if (!isInside(repo.root, abs)) throw new UsageError(`${t} is outside the repository ${repo.root}`);
    if (abs.endsWith(POINTER_SUFFIX) && basename(abs) !== POINTER_SUFFIX) abs = abs.slice(0, -POINTER_SUFFIX.length);
    const rel = toRel(repo.root, abs);
    if (rel === '') throw new UsageError(`${t} is the repository root, not a tracked path`, { hint: 'name the tracked file or directory' });
    let found: HistoryTarget | undefined;
    // The path itself, then the nearest tracked directory above it.
    for (let cur = abs; cur !== repo.root && isInside(repo.root, cur); cur = dirname(cur)) {
      const curRel = toRel(repo.root, cur);
      if (await exists(curRel + POINTER_SUFFIX)) {
        found = { path: curRel, pointerPath: curRel + POINTER_SUFFIX, arg: t, ...(cur === abs ? {} : { inner: toRel(cur, abs) }) };
        break;
      }
    }
    found ??= { path: rel, pointerPath: rel + POINTER_SUFFIX, arg: t };
    if (!out.has(found.pointerPath) || found.inner === undefined) out.set(found.pointerPath, found);
  }
  return [...out.values()].sort((a, b) => (a.pointerPath < b.pointerPath ? -1 : a.pointerPath > b.pointerPath ? 1 : 0));
}
