import { Args, Flags } from '@oclif/core';
import { checkpointRevert } from '@cpv/core';
import { BaseCommand, dryRunFlag, transferFlags } from '../../base.js';
import { describeRevert } from '../revert.js';

export default class CheckpointRevert extends BaseCommand {
  static override summary = 'Restore the models and data of a checkpoint together, as one new commit.';
  static override description =
    'Writes the pointers of every artifact the checkpoint binds exactly as its commit has them, commits them on top of the current branch (history is never rewritten) and checks the content out, fetching what the cache lacks from the remote. Refuses to overwrite uncommitted pointer edits or unsaved workspace data unless --force.';
  static override examples = ['<%= config.bin %> checkpoint revert exp-42', '<%= config.bin %> checkpoint revert exp-42 --dry-run', '<%= config.bin %> checkpoint revert release/2024-05 -m "roll back the release"'];
  static override args = { tag: Args.string({ description: 'Checkpoint (version tag) name.', required: true }) };
  static override flags = {
    message: Flags.string({ char: 'm', description: 'Commit message (default "cpv: revert to checkpoint TAG").' }),
    force: Flags.boolean({ char: 'f', description: 'Overwrite uncommitted pointer edits and unsaved workspace data.' }),
    ...transferFlags,
    ...dryRunFlag,
  };

  async run() {
    const { args, flags } = await this.parse(CheckpointRevert);
    const { onProgress, done } = this.progress('revert');
    const dry = flags['dry-run'] ?? false;
    const r = await checkpointRevert(await this.repo(), { cwd: process.cwd(), tag: args.tag, message: flags.message, force: flags.force, dryRun: dry, remote: flags.remote, jobs: flags.jobs, onProgress }).finally(done);
    for (const line of describeRevert(r, dry)) this.say(line);
    return r;
  }
}
