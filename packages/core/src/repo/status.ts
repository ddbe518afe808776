import { lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import pLimit from 'p-limit';
import type { Remote } from '../remote/remote.js';
import { serializeTree, type TreeEntry } from '../store/tree.js';
import { blake3Hex } from '../hash/blake3.js';
import { toFileOid } from '../util/oid.js';
import { NotFoundError } from '../errors.js';
import { missingFiles } from '../store/missing-files.js';
import { checkInnerPaths, resolveTargets, type Target } from './pointers.js';
import type { Repo } from './repo.js';
import { StatCache } from './state.js';
import { dirEntries, statTracked, workspaceOid } from './workspace.js';

/** State of one tracked path in the workspace, the cache and (optionally) a remote. */
export interface StatusItem {
  path: string;
  pointerPath: string;
  type: 'file' | 'dir';
  kind: string;
  name?: string;
  oid: string;
  size: number;
  /** unchanged: matches the pointer; modified: differs (run add); missing: not in the workspace (run checkout). */
  workspace: 'unchanged' | 'modified' | 'missing';
  /** present: everything cached; missing: some content is not in the cache (run fetch). */
  cache: 'present' | 'missing';
  /** Only when a remote was asked about: present means the remote has it all (pushed). */
  remote?: 'present' | 'missing';
  /** When the workspace is modified: the oid and size of what is there now. */
  current?: { oid: string; size: number };
  /** Directories: file-level differences between workspace and pointer. */
  changes?: { added: string[]; modified: string[]; deleted: string[] };
}

export interface StatusOptions {
  cwd: string;
  targets: readonly string[];
  /** Also check presence on this remote. */
  remote?: Remote;
  jobs?: number;
}

/**
 * Compare each tracked path's workspace content, cache and optionally remote with its
 * pointer. Read-only apart from the stat cache; files whose stat is unchanged are not
 * read.
 */
export async function status(repo: Repo, opts: StatusOptions): Promise<StatusItem[]> {
  const targets = await resolveTargets(repo, opts.cwd, opts.targets);
  await checkInnerPaths(repo, targets);
  const state = await StatCache.load(repo.root);
  const items: StatusItem[] = [];
  try {
    for (const t of targets) items.push(await statusOne(repo, t, state));
  } finally {
    await state.save();
  }
  if (opts.remote) {
    const remote = opts.remote;
    const limit = pLimit(opts.jobs ?? 8);
    await Promise.all(
      items.map((it) =>
        limit(async () => {
          it.remote = (await (it.type === 'dir' ? remote.hasTree(it.oid) : remote.hasManifest(it.oid))) ? 'present' : 'missing';
        }),
      ),
    );
  }
  return items;
}

async function statusOne(repo: Repo, t: Target, state: StatCache): Promise<StatusItem> {
  const p = t.pointer;
  const item: StatusItem = {
    path: t.path,
    pointerPath: t.pointerPath,
    type: p.type,
    kind: p.kind,
    ...(p.name !== undefined ? { name: p.name } : {}),
    oid: p.oid,
    size: p.size,
    workspace: 'unchanged',
    cache: 'present',
  };
  const st = await statTracked(repo, t.abs);
  if (p.type === 'file') {
    item.cache = (await repo.cache.hasFile(p.oid)) ? 'present' : 'missing';
    if (!st) item.workspace = 'missing';
    else if (!st.isFile()) item.workspace = 'modified';
    else {
      const oid = await workspaceOid(t.abs, t.path, st, state);
      if (oid !== p.oid) {
        item.workspace = 'modified';
        item.current = { oid, size: st.size };
      }
    }
    return item;
  }
  if (st?.isDirectory()) {
    const ws = await dirEntries(repo, t.abs, t.path, state);
    const fingerprint = await entriesFingerprint(ws);
    // Seen before with these very entries and found equal to the pointer: no need to
    // read, parse and compare the tree (tens of thousands of entries), only to check
    // that the cache still holds it and every file in it.
    const memo = state.dir(t.path);
    if (memo && memo.fingerprint === fingerprint && memo.tree === p.oid) {
      const oids = ws.map((e) => e.oid);
      const stamp = await fanoutStamp(repo, state, oids);
      let complete = await hasIntactTree(repo, p.oid);
      if (complete && (stamp === undefined || stamp !== memo.cache)) complete = missingFiles(repo.cache, oids).size === 0;
      state.recordDir(t.path, { fingerprint, tree: p.oid, cache: complete && stamp !== undefined ? stamp : '' });
      item.cache = complete ? 'present' : 'missing';
      return item;
    }
    return statusDir(repo, t, state, item, ws, fingerprint);
  }
  await cachedTree(repo, item);
  item.workspace = st ? 'modified' : 'missing';
  return item;
}

/**
 * The pointer's tree from the cache, verified, or undefined when the cache does not
 * hold it. Sets `item.cache` to missing when the tree or any of its files is absent.
 */
async function cachedTree(repo: Repo, item: StatusItem): Promise<TreeEntry[] | undefined> {
  try {
    const tree = await repo.cache.readTree(item.oid);
    if (missingFiles(repo.cache, tree.map((e) => e.oid)).size > 0) item.cache = 'missing';
    return tree;
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    item.cache = 'missing';
    return undefined;
  }
}

/** A tracked directory present in the workspace, with its entries `ws`, compared with its tree. */
async function statusDir(repo: Repo, t: Target, state: StatCache, item: StatusItem, ws: TreeEntry[], fingerprint: string): Promise<StatusItem> {
  const p = t.pointer;
  const tree = await cachedTree(repo, item);
  // Both lists are in canonical order: equal entries mean equal tree text, so the
  // verified cached tree answers without serializing and hashing the workspace's.
  const oid = tree && sameEntries(tree, ws) ? p.oid : toFileOid(await blake3Hex(Buffer.from(serializeTree(ws))));
  state.recordDir(t.path, { fingerprint, tree: oid, cache: '' });
  if (oid === p.oid) return item;
  item.workspace = 'modified';
  item.current = { oid, size: ws.reduce((n, e) => n + e.size, 0) };
  if (tree) {
    const want = new Map(tree.map((e) => [e.path, e]));
    const have = new Map(ws.map((e) => [e.path, e]));
    const changes = { added: [] as string[], modified: [] as string[], deleted: [] as string[] };
    for (const [path, e] of have) {
      const w = want.get(path);
      if (!w) changes.added.push(path);
      else if (w.oid !== e.oid || w.mode !== e.mode) changes.modified.push(path);
    }
    for (const path of want.keys()) if (!have.has(path)) changes.deleted.push(path);
    item.changes = changes;
  }
  return item;
}

/**
 * A digest of a workspace directory's entries (mode, size, oid, path, in canonical
 * order), the key under which the stat cache remembers the directory's tree oid.
 * Paths hold no newline (relPathProblem), so the text is unambiguous.
 */
async function entriesFingerprint(entries: readonly TreeEntry[]): Promise<string> {
  let text = '';
  for (const e of entries) text += `${e.mode} ${e.size} ${e.oid} ${e.path}\n`;
  return blake3Hex(Buffer.from(text));
}

/** A cache directory changed this recently may change again within its mtime's tick. */
const RECENT_MS = 2000;

/**
 * A digest of the cache's fan-out directories that hold `oids` (name, mtime, inode):
 * removing a file from one changes its mtime, so an equal digest means that every
 * file found there before is still there. Undefined when a directory is absent or was
 * changed too recently to tell (within a timestamp tick of the state file or of now).
 */
async function fanoutStamp(repo: Repo, state: StatCache, oids: readonly string[]): Promise<string | undefined> {
  // One oid per fan-out directory (the first two hex digits) locates that directory.
  const byPrefix = new Map<string, string>();
  for (const oid of oids) if (!byPrefix.has(oid.slice(3, 5))) byPrefix.set(oid.slice(3, 5), oid);
  const now = Date.now();
  let text = '';
  for (const [prefix, oid] of [...byPrefix].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const st = lstatSync(dirname(repo.cache.filePath(oid)), { throwIfNoEntry: false });
    if (!st?.isDirectory() || !state.settled(st.mtimeMs) || now - st.mtimeMs < RECENT_MS) return undefined;
    text += `${prefix} ${st.mtimeMs} ${st.ino}\n`;
  }
  return blake3Hex(Buffer.from(text));
}

/**
 * Whether the cache holds tree `oid` with intact bytes (hashed, not parsed). Throws
 * IntegrityError when the bytes do not match, as reading the tree would.
 */
async function hasIntactTree(repo: Repo, oid: string): Promise<boolean> {
  try {
    await repo.cache.readTreeBytes(oid);
    return true;
  } catch (err) {
    if (err instanceof NotFoundError) return false;
    throw err;
  }
}

function sameEntries(a: readonly TreeEntry[], b: readonly TreeEntry[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.path !== y.path || x.oid !== y.oid || x.size !== y.size || x.mode !== y.mode) return false;
  }
  return true;
}
