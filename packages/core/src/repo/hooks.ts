import { lstat, mkdir, readFile, rename } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { ConflictError, CpvError, FormatError, PointerParseError, UsageError } from '../errors.js';
import { hooksDir, objectType, readTagObject, requireGit, resolveRev } from '../git/git.js';
import { parseVersionBlock } from '../pointer/version-block.js';
import type { PushResult } from '../transfer/push.js';
import type { ProgressEvent, TransferItem } from '../transfer/types.js';
import { errnoCode, pathExists, writeAtomic } from '../util/fs-atomic.js';
import { checkout, type CheckoutItem } from './checkout.js';
import { listPointers } from './pointers.js';
import { publishRouted, type MissingObject, type PublishGroup } from './publish.js';
import { withRepoLock } from './lock.js';
import type { Repo } from './repo.js';
import { checkTagMatchesCommit, itemsOfArtifacts, pointersAtCommit } from './tags.js';

/** The git hooks `cpv install` writes. */
export const HOOK_NAMES = ['pre-push', 'post-checkout', 'post-merge'] as const;
export type HookName = (typeof HOOK_NAMES)[number];
/** The line that marks a hook as cpv's own (docs/format.md, "Git hooks"). */
export const HOOK_MARKER = '# cpv hook';
/** Suffix under which a hook that was there before is kept (and chained). */
export const CHAINED_SUFFIX = '.pre-cpv';

/** How a hook starts cpv: this Node binary running this `bin/run.js`. */
export interface HookRunner {
  node: string;
  script: string;
}

export interface InstallHooksOptions {
  /** Replace a foreign hook that cannot be chained (its `.pre-cpv` slot is taken). */
  force?: boolean;
  dryRun?: boolean;
  /** The cpv that the hooks run; without it they run `cpv` from PATH. */
  runner?: HookRunner;
}

export interface InstalledHook {
  name: HookName;
  /** Absolute path of the hook. */
  path: string;
  /**
   * created: there was none; unchanged: the same cpv hook was there; updated: an older
   * cpv hook was replaced; chained: a foreign hook was moved to `<hook>.pre-cpv` and
   * runs first; overwritten: a foreign hook was replaced (--force).
   */
  action: 'created' | 'unchanged' | 'updated' | 'chained' | 'overwritten';
  /** The chained hook's path, when one exists. */
  chained?: string;
}

export interface InstallHooksResult {
  hooksDir: string;
  hooks: InstalledHook[];
  dryRun: boolean;
}

/**
 * Install cpv's git hooks (pre-push, post-checkout, post-merge) in the hooks
 * directory git uses (`core.hooksPath` if set). A foreign hook is kept: it moves to
 * `<hook>.pre-cpv` and the cpv hook runs it first with the same arguments and input.
 * Idempotent. Throws NotAGitRepoError; ConflictError when a foreign hook is there and
 * `<hook>.pre-cpv` is taken too (unless `force`, which replaces the hook), or the
 * hook path is not a file.
 */
export async function installHooks(repo: Repo, opts: InstallHooksOptions = {}): Promise<InstallHooksResult> {
  const top = await requireGit(repo.root);
  const dir = await hooksDir(top);
  const cpvDir = relative(top, repo.root).split(sep).join('/');
  const planned: Array<{ hook: InstalledHook; script: string; chainFrom?: string }> = [];
  for (const name of HOOK_NAMES) {
    const path = join(dir, name);
    const prev = path + CHAINED_SUFFIX;
    const script = hookScript(name, { runner: opts.runner, cpvDir });
    const hasPrev = await pathExists(prev);
    const withPrev = (h: InstalledHook): InstalledHook => (hasPrev ? { ...h, chained: prev } : h);
    const existing = await readHook(path);
    if (existing === undefined) {
      planned.push({ hook: withPrev({ name, path, action: 'created' }), script });
    } else if (isCpvHook(existing)) {
      planned.push({ hook: withPrev({ name, path, action: existing === script ? 'unchanged' : 'updated' }), script });
    } else if (!hasPrev) {
      planned.push({ hook: { name, path, action: 'chained', chained: prev }, script, chainFrom: path });
    } else if (opts.force) {
      planned.push({ hook: { name, path, action: 'overwritten', chained: prev }, script });
    } else {
      throw new ConflictError(`${path} is not a cpv hook, and ${prev} (where cpv keeps a hook it chains) exists too`, {
        hint: `merge the two by hand (e.g. move the commands of ${name} into ${name}${CHAINED_SUFFIX}), or pass --force to replace ${name}`,
        data: { hook: path, chained: prev },
      });
    }
  }
  if (!opts.dryRun) {
    await mkdir(dir, { recursive: true });
    for (const p of planned) {
      if (p.hook.action === 'unchanged') continue;
      if (p.chainFrom) await rename(p.chainFrom, p.chainFrom + CHAINED_SUFFIX);
      await writeAtomic(p.hook.path, Buffer.from(p.script), { mode: 0o755 });
    }
  }
  return { hooksDir: dir, hooks: planned.map((p) => p.hook), dryRun: opts.dryRun ?? false };
}

/** A hook's text; undefined when there is none. Throws ConflictError when the path is a directory. */
async function readHook(path: string): Promise<string | undefined> {
  let isDir: boolean;
  try {
    isDir = (await lstat(path)).isDirectory();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  if (isDir) throw new ConflictError(`${path} is a directory, not a hook`, { hint: 'move it away, then run `cpv install` again' });
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    // A dangling symbolic link: a foreign hook (that git cannot run either); keep it.
    if (errnoCode(err) === 'ENOENT') return '';
    throw err;
  }
}

/** Whether a hook's text is one cpv wrote. */
export function isCpvHook(text: string): boolean {
  return text.split('\n').some((l) => l === HOOK_MARKER || l.startsWith(HOOK_MARKER + ':'));
}

const ABOUT: Record<HookName, string> = {
  'pre-push': [
    '# Uploads the cpv objects that the pushed commits and version tags reference to the',
    "# default cpv remote and proves the remote holds them; if it cannot, git stops the push.",
  ].join('\n'),
  'post-checkout': '# After a branch or tag checkout, restores tracked data to match the pointers. It never\n# overwrites unsaved changes and never fails the checkout (it warns).',
  'post-merge': '# After a merge or pull, restores tracked data to match the pointers. It never overwrites\n# unsaved changes and never fails the merge (it warns).',
};

/**
 * The text of one hook: a POSIX sh script marked `# cpv hook`, that runs a chained
 * `<hook>.pre-cpv` first (same arguments and standard input) and then
 * `cpv hook NAME ARGS...`, through `runner` when it is still there, else `cpv` from
 * PATH. `cpvDir` is the cpv root relative to the git top level ('' for the top),
 * where git runs hooks. Pure.
 */
export function hookScript(name: HookName, opts: { runner?: HookRunner; cpvDir?: string } = {}): string {
  const q = shQuote;
  const r = opts.runner;
  const cd = opts.cpvDir ? `  cd -- ${q(opts.cpvDir)} || return 1\n` : '';
  const run = [
    'cpv_run() {',
    cd.trimEnd(),
    ...(r
      ? [`  if [ -x ${q(r.node)} ] && [ -f ${q(r.script)} ]; then`, `    ${q(r.node)} ${q(r.script)} "$@"`, '  elif command -v cpv >/dev/null 2>&1; then']
      : ['  if command -v cpv >/dev/null 2>&1; then']),
    '    cpv "$@"',
    '  else',
    `    printf 'cpv hook: cannot find cpv (%s); install it, then run "cpv install" again\\n' ${q(r ? r.script : 'not on PATH')} >&2`,
    '    return 127',
    '  fi',
    '}',
  ]
    .filter((l) => l !== '')
    .join('\n');
  const prev = `cpv_prev="$(dirname -- "$0")/${name}${CHAINED_SUFFIX}"`;
  let body: string;
  if (name === 'pre-push') {
    body = [
      'cpv_input=$(cat)',
      'cpv_stdin() {',
      '  [ -z "$cpv_input" ] || printf \'%s\\n\' "$cpv_input"',
      '}',
      prev,
      'if [ -x "$cpv_prev" ]; then',
      '  cpv_stdin | "$cpv_prev" "$@" || exit $?',
      'fi',
      'cpv_stdin | cpv_run hook pre-push "$@"',
    ].join('\n');
  } else {
    const warn = `printf '%s\\n' 'cpv: warning: tracked data was not updated; run "cpv checkout" (or "cpv pull")' >&2`;
    body = [
      'cpv_status=0',
      prev,
      'if [ -x "$cpv_prev" ]; then',
      '  "$cpv_prev" "$@" || cpv_status=$?',
      'fi',
      ...(name === 'post-checkout'
        ? ['# Branch and tag checkouts only ($3 = 1), not checkouts of single files.', 'if [ "$3" = 1 ]; then', `  cpv_run hook ${name} "$@" || ${warn}`, 'fi']
        : [`cpv_run hook ${name} "$@" || ${warn}`]),
      'exit $cpv_status',
    ].join('\n');
  }
  return [
    '#!/bin/sh',
    `${HOOK_MARKER}: ${name}. Written by \`cpv install\`; run it again after moving cpv.`,
    ABOUT[name],
    `# A hook that was here before is kept as ${name}${CHAINED_SUFFIX} and runs first.`,
    run,
    body,
    '',
  ].join('\n');
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** One line git writes to a pre-push hook's standard input. */
export interface PushedRef {
  localRef: string;
  localSha: string;
  remoteRef: string;
  remoteSha: string;
}

/**
 * Parse a pre-push hook's standard input: one `<local ref> <local sha> <remote ref>
 * <remote sha>` line per ref (githooks(5)). Blank lines are skipped. Pure. Throws
 * UsageError quoting a line that is not in this form.
 */
export function parsePushedRefs(text: string): PushedRef[] {
  const out: PushedRef[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const parts = line.trim().split(' ');
    if (parts.length !== 4 || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(parts[1]!) || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(parts[3]!)) {
      throw new UsageError(`not a pre-push input line: ${JSON.stringify(line.slice(0, 200))}`, { hint: 'expected "<local ref> <local sha> <remote ref> <remote sha>", as git writes it' });
    }
    out.push({ localRef: parts[0]!, localSha: parts[1]!, remoteRef: parts[2]!, remoteSha: parts[3]! });
  }
  return out;
}

export interface PrePushOptions {
  /** The git remote being pushed to (hook argument 1), for messages. */
  gitRemote: string;
  /** The hook's standard input. */
  input: string;
  /** cpv remote name; the default remote when undefined. */
  remote?: string;
  jobs?: number;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

/** What the pre-push check found for one pushed ref. */
export interface PrePushRef {
  /** The ref on the git remote (`refs/tags/v3`, `refs/heads/main`). */
  ref: string;
  /** version: a version tag (its artifacts); commit: the pointers of a pushed commit. */
  kind: 'version' | 'commit';
  ok: boolean;
  /** Tracked paths checked. */
  items: number;
  unavailable: Array<{ path: string; oid: string; type: 'file' | 'dir' }>;
  missing: MissingObject[];
  /** Why the ref could not be read (malformed version block or pointer). */
  error?: string;
}

export interface PrePushResult {
  /** True when every pushed ref may go: git can push. */
  ok: boolean;
  gitRemote: string;
  /** The cpv remote; undefined when nothing needed one (no pointers pushed). */
  remote?: string;
  upload?: PushResult;
  refs: PrePushRef[];
}

/**
 * The pre-push hook: for every ref being pushed (deletions aside), upload what it
 * references to the cpv remote and prove the remote holds it. A version tag
 * references its artifacts (checked against its commit's pointers); any other ref
 * the pointers of the commit it points at. A ref whose content is neither on the
 * remote nor in the cache, or is still incomplete after the upload, is not ok; the
 * caller then fails the hook so git pushes nothing. Does not open the remote when
 * no pointer is pushed. Holds the repository lock, or shares it with the cpv command
 * whose `git push` runs this hook. Throws RemoteError (remote unreachable), GitError,
 * and ConflictError while another cpv process holds the lock.
 */
export async function prePush(repo: Repo, opts: PrePushOptions): Promise<PrePushResult> {
  return withRepoLock(repo.root, { command: 'hook pre-push' }, () => prePushLocked(repo, opts));
}

async function prePushLocked(repo: Repo, opts: PrePushOptions): Promise<PrePushResult> {
  const top = await requireGit(repo.root);
  const refs: PrePushRef[] = [];
  const groups: Array<{ at: number; group: PublishGroup }> = [];
  for (const pushed of parsePushedRefs(opts.input)) {
    if (/^0+$/.test(pushed.localSha)) continue; // a deletion uploads nothing
    const ref: PrePushRef = { ref: pushed.remoteRef, kind: 'commit', ok: true, items: 0, unavailable: [], missing: [] };
    refs.push(ref);
    let items: TransferItem[];
    try {
      items = await refItems(repo, top, pushed.localSha, ref);
    } catch (err) {
      if (!(err instanceof FormatError || err instanceof PointerParseError)) throw err;
      ref.ok = false;
      ref.error = err.message;
      continue;
    }
    ref.items = items.length;
    if (items.length > 0) groups.push({ at: refs.length - 1, group: { ref: ref.ref, items } });
  }
  if (groups.length === 0) return { ok: refs.every((r) => r.ok), gitRemote: opts.gitRemote, refs };
  const r = await publishRouted(
    repo,
    opts.remote,
    groups.map((g) => g.group),
    { jobs: opts.jobs, signal: opts.signal, onProgress: opts.onProgress },
  );
  r.groups.forEach((o, i) => {
    const ref = refs[groups[i]!.at]!;
    ref.ok = o.ok;
    ref.unavailable = o.unavailable;
    ref.missing = o.missing;
  });
  return { ok: refs.every((x) => x.ok), gitRemote: opts.gitRemote, remote: r.remotes.join(', '), upload: r.upload, refs };
}

/** What one pushed object references: a version tag's artifacts, else its commit's pointers. */
async function refItems(repo: Repo, top: string, sha: string, ref: PrePushRef): Promise<TransferItem[]> {
  if ((await objectType(repo.root, sha)) === 'tag') {
    const tag = await readTagObject(repo.root, sha);
    const parsed = tag ? parseVersionBlock(tag.message, tag.name || ref.ref) : undefined;
    if (tag && parsed) {
      ref.kind = 'version';
      const commit = await resolveRev(repo.root, sha);
      checkTagMatchesCommit(tag.name || ref.ref, commit, parsed.block.artifacts, await pointersAtCommit(repo, top, commit));
      return itemsOfArtifacts(parsed.block.artifacts);
    }
  }
  let commit: string;
  try {
    commit = await resolveRev(repo.root, sha);
  } catch (err) {
    if (err instanceof CpvError) return []; // a tag of a tree or blob: no pointers
    throw err;
  }
  return [...(await pointersAtCommit(repo, top, commit))].map(([path, p]) => ({ oid: p.oid, type: p.type, size: p.size, path, ...(p.name !== undefined ? { name: p.name } : {}) }));
}

/** A tracked path a hook could not restore, and why. */
export interface RestoreWarning {
  path?: string;
  message: string;
  hint?: string;
}

export interface RestoreResult {
  items: CheckoutItem[];
  warnings: RestoreWarning[];
}

/**
 * The post-checkout and post-merge hooks: make the workspace match the pointers git
 * just checked out, from the cache, under checkout's rules (never overwriting
 * unsaved changes). If anything stands in the way (unsaved changes, content not in
 * the cache), restores every other path one by one and returns a warning for each
 * that could not be; those are never thrown. Throws only when the pointers
 * themselves cannot be read.
 */
export async function restoreWorkspace(repo: Repo, opts: { signal?: AbortSignal } = {}): Promise<RestoreResult> {
  try {
    return { items: (await checkout(repo, { cwd: repo.root, targets: [], signal: opts.signal })).items, warnings: [] };
  } catch (err) {
    if (!(err instanceof CpvError)) throw err;
  }
  const items: CheckoutItem[] = [];
  const warnings: RestoreWarning[] = [];
  for (const ref of await listPointers(repo)) {
    try {
      items.push(...(await checkout(repo, { cwd: repo.root, targets: [ref.pointerPath], signal: opts.signal })).items);
    } catch (err) {
      if (!(err instanceof CpvError)) throw err;
      warnings.push({ path: ref.path, message: err.message, ...(err.hint ? { hint: err.hint } : {}) });
    }
  }
  return { items, warnings };
}
