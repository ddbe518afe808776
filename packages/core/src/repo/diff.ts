import { relative, sep } from 'node:path';
import { parsePointer, type Pointer } from '../pointer/pointer.js';
import { pointersAt, requireGit } from '../git/git.js';
import { NotFoundError } from '../errors.js';
import type { TreeEntry } from '../store/tree.js';
import { listPointers } from './pointers.js';
import type { Repo } from './repo.js';
import { status } from './status.js';

/** One tracked path that differs between the two sides. */
export interface DiffItem {
  path: string;
  status: 'added' | 'deleted' | 'modified';
  type: 'file' | 'dir';
  oldOid?: string;
  newOid?: string;
  oldSize?: number;
  newSize?: number;
  /** Directories, when both trees are in the cache: file-level changes. */
  files?: { added: number; deleted: number; modified: number };
}

export interface DiffResult {
  a: string;
  b: string;
  items: DiffItem[];
}

interface Side {
  pointers: Map<string, Pointer>;
}

/**
 * Tracked paths that differ between revision `a` (default HEAD) and revision `b`
 * (default: the workspace, where data modified but not yet added counts as its
 * current content). Read-only. Throws NotAGitRepoError or GitError for unknown revisions.
 */
export async function diff(repo: Repo, opts: { a?: string; b?: string }): Promise<DiffResult> {
  const top = await requireGit(repo.root);
  const prefix = relative(top, repo.root).split(sep).join('/');
  const a = opts.a ?? 'HEAD';
  const sideA = await revSide(top, a, prefix);
  const sideB = opts.b !== undefined ? await revSide(top, opts.b, prefix) : await workspaceSide(repo);
  const paths = [...new Set([...sideA.pointers.keys(), ...sideB.pointers.keys()])].sort();
  const items: DiffItem[] = [];
  for (const path of paths) {
    const pa = sideA.pointers.get(path);
    const pb = sideB.pointers.get(path);
    if (pa && pb && pa.oid === pb.oid) continue;
    const item: DiffItem = {
      path,
      status: !pa ? 'added' : !pb ? 'deleted' : 'modified',
      type: (pb ?? pa)!.type,
      ...(pa ? { oldOid: pa.oid, oldSize: pa.size } : {}),
      ...(pb ? { newOid: pb.oid, newSize: pb.size } : {}),
    };
    if (pa?.type === 'dir' && pb?.type === 'dir') {
      const files = await treeDiff(repo, pa.oid, pb.oid);
      if (files) item.files = files;
    }
    items.push(item);
  }
  return { a, b: opts.b ?? 'workspace', items };
}

async function revSide(top: string, rev: string, prefix: string): Promise<Side> {
  const raw = await pointersAt(top, rev, prefix);
  const pointers = new Map<string, Pointer>();
  for (const [path, text] of raw) {
    const rel = prefix ? path.slice(prefix.length + 1) : path;
    pointers.set(rel.slice(0, -'.cpv'.length), parsePointer(text, `${rev}:${path}`, path.slice(path.lastIndexOf('/') + 1)));
  }
  return { pointers };
}

async function workspaceSide(repo: Repo): Promise<Side> {
  const refs = await listPointers(repo);
  const items = await status(repo, { cwd: repo.root, targets: [] });
  const pointers = new Map<string, Pointer>();
  refs.forEach((ref, i) => {
    // Data modified but not yet added counts with its current content.
    const current = items[i]!.current;
    pointers.set(ref.path, current ? { ...ref.pointer, ...current } : ref.pointer);
  });
  return { pointers };
}

async function treeDiff(repo: Repo, a: string, b: string): Promise<DiffItem['files'] | undefined> {
  let ta: TreeEntry[];
  let tb: TreeEntry[];
  try {
    ta = await repo.cache.readTree(a);
    tb = await repo.cache.readTree(b);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
  const ma = new Map(ta.map((e) => [e.path, e.oid]));
  const mb = new Map(tb.map((e) => [e.path, e.oid]));
  let added = 0;
  let modified = 0;
  let deleted = 0;
  for (const [p, o] of mb) {
    const x = ma.get(p);
    if (x === undefined) added++;
    else if (x !== o) modified++;
  }
  for (const p of ma.keys()) if (!mb.has(p)) deleted++;
  return { added, deleted, modified };
}
