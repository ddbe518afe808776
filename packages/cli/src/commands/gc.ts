import { Flags } from '@oclif/core';
import { gc, UsageError, type GcObject, type GcResult } from '@cpv/core';
import { BaseCommand, dryRunFlag, transferFlags } from '../base.js';
import { formatDuration, parseDuration } from '../duration.js';
import { ask, canPrompt } from '../prompt.js';
import { formatBytes } from '../render.js';

/** Objects listed per section in the text output (`--json` lists all). */
const LIST_MAX = 20;

export default class Gc extends BaseCommand {
  static override summary = 'Delete cache objects, and with --cloud remote objects, that no pointer in scope references.';
  static override description =
    'Reachable is what the pointers in the workspace and at HEAD reference, plus, when asked, those of every branch (local and remote-tracking: `git fetch` first), every tag, or every commit: for a directory its tree and every file in it, for a file its manifest and chunks.\n\n' +
    'Shows what it would delete and asks before deleting anything, unless --force; where it cannot ask (no terminal, --json) it only shows the plan. On the remote it never deletes an object younger than --grace (a teammate\'s push may be in flight), deletes trees, then manifests, then packs, and keeps packs that are still partly referenced (reporting the space they hold). A cache shared with other repositories (cache.dir outside .cpv/) is left alone.';
  static override examples = [
    '<%= config.bin %> gc --dry-run',
    '<%= config.bin %> gc --all-branches --all-tags',
    '<%= config.bin %> gc --all-tags --cloud -r origin --grace 14d',
    '<%= config.bin %> gc --all-commits --cloud --force --json',
  ];
  static override flags = {
    workspace: Flags.boolean({ char: 'w', description: 'Keep what the workspace and HEAD reference (always on; the default scope).' }),
    'all-branches': Flags.boolean({ char: 'a', description: 'Also keep what every local and remote-tracking branch references.' }),
    'all-tags': Flags.boolean({ char: 'T', description: 'Also keep what every tag references.' }),
    'all-commits': Flags.boolean({ char: 'A', description: 'Also keep what any commit references.' }),
    cloud: Flags.boolean({ char: 'c', description: 'Also delete unreferenced objects on the remote.' }),
    remote: Flags.string({ char: 'r', description: 'Remote for --cloud (default: the default remote).' }),
    grace: Flags.string({ description: 'Never delete remote objects younger than this (30s, 12h, 7d, 2w).', default: '7d' }),
    jobs: transferFlags.jobs,
    force: Flags.boolean({ char: 'f', description: 'Delete without showing the plan and asking first.' }),
    ...dryRunFlag,
  };

  async run() {
    const { flags } = await this.parse(Gc);
    if (flags.remote !== undefined && !flags.cloud) {
      throw new UsageError('-r names the remote that --cloud collects', { hint: `add --cloud: cpv gc --cloud -r ${flags.remote}` });
    }
    const graceMs = parseDuration(flags.grace, '--grace');
    const needsYes = !flags.force && !flags['dry-run'];
    const interactive = needsYes && canPrompt() && !this.jsonEnabled();
    let shown = false;
    const r = await gc(await this.repo(), {
      scope: { allBranches: flags['all-branches'], allTags: flags['all-tags'], allCommits: flags['all-commits'] },
      cloud: flags.cloud,
      remote: flags.remote,
      graceMs,
      jobs: flags.jobs,
      // Deleting needs a yes: from --force, or from the user at a terminal.
      dryRun: flags['dry-run'] || (needsYes && !interactive),
      confirm: interactive
        ? async (plan) => {
            if (removedCount(plan) === 0) return true;
            this.say(describeGc(plan));
            shown = true;
            return /^y(es)?$/i.test(await ask(`Delete these ${removedCount(plan)} object(s)? [y/N]`));
          }
        : undefined,
    });
    if (!shown) this.say(describeGc(r));
    if (r.cancelled) this.say('Nothing was deleted.');
    else if (!r.dryRun && removedCount(r) > 0) this.say(`Deleted ${removedCount(r)} object(s), ${formatBytes(removedBytes(r))}.`);
    else if (r.dryRun && !flags['dry-run'] && removedCount(r) > 0) {
      this.note('cpv gc: nothing was deleted: gc asks before deleting and cannot ask here; run it again with --force to delete the objects above');
    }
    return r;
  }
}

function removedCount(r: GcResult): number {
  return r.cache.removed.length + (r.remote?.removed.length ?? 0);
}

function removedBytes(r: GcResult): number {
  return r.cache.bytes + (r.remote?.bytes ?? 0);
}

/** The plan or outcome as text. */
export function describeGc(r: GcResult): string {
  const verb = r.dryRun ? 'would delete' : 'deleted';
  const scope = ['the workspace', 'HEAD', ...(r.scope.allBranches ? ['all branches'] : []), ...(r.scope.allTags ? ['all tags'] : []), ...(r.scope.allCommits ? ['all commits'] : [])];
  const lines = [`Reachable: ${r.reachable} version(s) of tracked files and directories, from ${scope.join(', ')} (${r.commits} commit(s) read).`];
  const c = r.cache;
  if (c.skipped) lines.push(`Cache ${c.dir}: left alone: ${c.skipped}.`);
  else {
    lines.push(`Cache ${c.dir}: ${verb} ${counted(c.removed)}${c.removed.length ? `, ${formatBytes(c.bytes)}` : ''}; ${c.kept} kept.`);
    lines.push(...listed(c.removed));
    if (c.unresolvedTrees.length > 0) lines.push(`  (not in the cache, so their files are unknown here: ${c.unresolvedTrees.join(', ')})`);
  }
  const g = r.remote;
  if (g) {
    lines.push(`Remote ${g.remote} (${g.location}): ${verb} ${counted(g.removed)}${g.removed.length ? `, ${formatBytes(g.bytes)}` : ''}; kept ${g.kept.trees} tree(s), ${g.kept.manifests} manifest(s), ${g.kept.pages} page(s), ${g.kept.packs} pack(s).`);
    lines.push(...listed(g.removed));
    if (g.young.length > 0) lines.push(`  kept by the ${formatDuration(r.graceMs)} grace period: ${counted(g.young)}, ${formatBytes(g.young.reduce((n, o) => n + o.size, 0))}`);
    if (g.partial.length > 0) lines.push(`  kept, partly referenced: ${g.partial.length} pack(s) holding ${formatBytes(g.reclaimableBytes)} that nothing kept references`);
    if (g.spared > 0) lines.push(`  spared: ${g.spared} page(s) or pack(s) named by records pushed while gc ran`);
    if (g.unreadable.length > 0) {
      lines.push(`  no page or pack deleted: ${g.unreadable.length} kept record(s) cannot be read (run \`cpv fsck -r ${g.remote}\`):`);
      for (const u of g.unreadable.slice(0, LIST_MAX)) lines.push(`    ${u.key}: ${u.reason}`);
    }
  }
  return lines.join('\n');
}

function counted(objects: readonly GcObject[]): string {
  if (objects.length === 0) return 'nothing';
  const by = new Map<string, number>();
  for (const o of objects) by.set(o.kind, (by.get(o.kind) ?? 0) + 1);
  return [...by].map(([kind, n]) => `${n} ${kind}${n === 1 ? '' : 's'}`).join(', ');
}

function listed(objects: readonly GcObject[]): string[] {
  const lines = objects.slice(0, LIST_MAX).map((o) => `  ${o.kind.padEnd(8)} ${o.key} (${formatBytes(o.size)})`);
  if (objects.length > LIST_MAX) lines.push(`  … and ${objects.length - LIST_MAX} more (--json lists all)`);
  return lines;
}
