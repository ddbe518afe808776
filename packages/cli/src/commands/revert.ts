import { Args, Flags } from '@oclif/core';
import { revert, shortOid, type RevertResult } from '@cpv/core';
import { BaseCommand, dryRunFlag, transferFlags } from '../base.js';
import { describeFetch } from './fetch.js';

export default class Revert extends BaseCommand {
  static override summary = 'Bring tracked paths back to the version they had at an earlier revision, as a new commit.';
  static override description =
    'Writes each pointer file exactly as it is at REV, checks the content out (fetching it from the remote if the cache lacks it) and commits the pointers as a new commit on top: history is never rewritten. Refuses to overwrite uncommitted pointer edits or workspace data that is not saved in the cache, unless --force. A path that exists only at REV may be named too.';
  static override examples = [
    '<%= config.bin %> revert model.safetensors --to HEAD~1',
    '<%= config.bin %> revert model.safetensors data/ --to v3 -m "back to the v3 model and data"',
    '<%= config.bin %> revert model.safetensors.cpv --to 4f2a9c1 --no-commit',
    '<%= config.bin %> revert model.safetensors --to v1 --dry-run',
  ];
  static override strict = false;
  static override args = { targets: Args.string({ description: 'Tracked paths or pointer files.', required: true }) };
  static override flags = {
    to: Flags.string({ description: 'Revision to take the versions from: a tag, branch, commit or HEAD~N.', required: true }),
    message: Flags.string({ char: 'm', description: 'Commit message (default "cpv: revert PATH... to REV").' }),
    commit: Flags.boolean({ description: 'Commit the restored pointers (--no-commit: write and check out only).', default: true, allowNo: true }),
    force: Flags.boolean({ char: 'f', description: 'Overwrite uncommitted pointer edits and workspace data not saved in the cache.' }),
    ...transferFlags,
    ...dryRunFlag,
  };

  async run() {
    const { argv, flags } = await this.parse(Revert);
    const { onProgress, done } = this.progress('revert');
    const dry = flags['dry-run'] ?? false;
    const r = await revert(await this.repo(), {
      cwd: process.cwd(),
      targets: argv as string[],
      to: flags.to,
      message: flags.message,
      commit: flags.commit,
      force: flags.force,
      dryRun: dry,
      remote: flags.remote,
      jobs: flags.jobs,
      onProgress,
    }).finally(done);
    for (const line of describeRevert(r, dry, flags.commit)) this.say(line);
    return r;
  }
}

/** The human report of a revert (shared by revert, model/data revert, checkpoint revert). */
export function describeRevert(r: RevertResult, dry: boolean, commit = true): string[] {
  const out: string[] = [];
  const at = `${r.rev}${r.rev.startsWith(r.revCommit.slice(0, 7)) ? '' : ` (${r.revCommit.slice(0, 7)})`}`;
  for (const i of r.reverted) {
    const from = i.from === undefined ? 'untracked' : shortOid(i.from);
    out.push(i.changed ? `${dry ? 'would revert' : 'reverted'} ${i.path}: ${from} -> ${shortOid(i.to)}` : `${i.path} already has the pointer of ${at}: ${shortOid(i.to)}`);
  }
  if (dry) {
    if (r.fetchNeeded.length > 0) out.push(`would fetch from the remote: ${r.fetchNeeded.join(', ')}`);
    return out;
  }
  if (r.fetch) out.push(describeFetch(r.fetch, false));
  for (const i of r.checkout?.items ?? []) {
    if (i.created + i.updated + i.deleted > 0) out.push(`restored ${i.path}: ${i.created} created, ${i.updated} updated, ${i.deleted} deleted`);
  }
  if (r.commit) out.push(`committed ${r.commit.slice(0, 7)}: pointers of ${at}`);
  else if (!commit && r.written.length > 0) out.push('Pointers written, not committed (--no-commit): review with `git diff`, then commit them.');
  else out.push('Nothing to commit: the pointers already match.');
  return out;
}
