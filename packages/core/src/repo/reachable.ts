import { basename, relative, sep } from 'node:path';
import { gitTopLevel, headCommit, listTagRefs, pointerBlobsAt, requireGit } from '../git/git.js';
import { readBlob } from '../git/history.js';
import { allCommits, branchCommits } from '../git/refs.js';
import { parsePointer, POINTER_SUFFIX, type Pointer } from '../pointer/pointer.js';
import type { TransferItem } from '../transfer/types.js';
import { listPointers } from './pointers.js';
import type { Repo } from './repo.js';

/**
 * Which git refs make content reachable, besides the workspace's pointers and HEAD's
 * (always included).
 */
export interface ReachScope {
  /** Local and remote-tracking branches. */
  allBranches?: boolean;
  /** Every tag (version tags and any other). */
  allTags?: boolean;
  /** Every commit of any ref (`git rev-list --all`). */
  allCommits?: boolean;
}

export interface Reachable {
  /** Every tracked file and directory the scope names, each oid once (first path seen). */
  items: TransferItem[];
  /** Commits whose pointers were read (HEAD included). */
  commits: number;
  /** Pointer files read (workspace and commits; the same blob counts once). */
  pointers: number;
}

/**
 * The tracked content reachable in `scope`: the pointers in the workspace, in HEAD,
 * and in the commits the scope adds. Read-only. A pointer that cannot be parsed
 * anywhere in scope throws PointerParseError naming `commit:path` (gc must not guess
 * what it references); asking for git refs outside a git repository throws
 * NotAGitRepoError; GitError when git fails.
 */
export async function reachableContent(repo: Repo, scope: ReachScope = {}): Promise<Reachable> {
  const found = new Map<string, TransferItem>();
  const note = (path: string, p: Pointer): void => {
    const key = `${p.type}:${p.oid}`;
    if (!found.has(key)) found.set(key, { oid: p.oid, type: p.type, size: p.size, path });
  };
  const workspace = await listPointers(repo);
  for (const ref of workspace) note(ref.path, ref.pointer);

  const wantsRefs = scope.allBranches || scope.allTags || scope.allCommits;
  const top = wantsRefs ? await requireGit(repo.root) : await gitTopLevel(repo.root);
  if (top === undefined) return { items: [...found.values()], commits: 0, pointers: workspace.length };
  const commits = new Set<string>();
  const head = await headCommit(top);
  if (head) commits.add(head);
  if (scope.allCommits) for (const c of await allCommits(top)) commits.add(c);
  else {
    if (scope.allBranches) for (const c of await branchCommits(top)) commits.add(c);
    if (scope.allTags) for (const t of await listTagRefs(top)) if (t.commit) commits.add(t.commit);
  }

  const prefix = relative(top, repo.root).split(sep).join('/');
  // Commits share most pointer blobs: read and parse each blob once.
  const blobs = new Map<string, Pointer>();
  for (const commit of [...commits].sort()) {
    for (const [path, blob] of await pointerBlobsAt(top, commit, prefix)) {
      let p = blobs.get(blob);
      if (!p) {
        p = parsePointer(await readBlob(top, blob), `${commit.slice(0, 12)}:${path}`, basename(path));
        blobs.set(blob, p);
      }
      const rel = prefix ? path.slice(prefix.length + 1) : path;
      note(rel.slice(0, -POINTER_SUFFIX.length), p);
    }
  }
  return { items: [...found.values()], commits: commits.size, pointers: workspace.length + blobs.size };
}
