import { Args, Flags } from '@oclif/core';
import { pull } from '@cpv/core';
import { BaseCommand, dryRunFlag, transferFlags } from '../base.js';
import { describeFetch } from './fetch.js';

export default class Pull extends BaseCommand {
  static override summary = 'Fetch tracked content from a remote and check it out, verified.';
  static override description = 'Every chunk and every file is checked against its hash before it reaches the workspace. If anything fails, the workspace is left as it was.';
  static override examples = ['<%= config.bin %> pull', '<%= config.bin %> pull data/train/shard-0001.bin', 'git checkout v3 && <%= config.bin %> pull'];
  static override strict = false;
  static override args = { targets: Args.string({ description: 'Tracked paths, pointer files or files inside tracked directories (default: all).' }) };
  static override flags = {
    ...transferFlags,
    force: Flags.boolean({ char: 'f', description: 'Discard workspace changes that are not in the cache.' }),
    ...dryRunFlag,
  };

  async run() {
    const { argv, flags } = await this.parse(Pull);
    const { onProgress, done } = this.progress('pull');
    const r = await pull(await this.repo(), {
      cwd: process.cwd(),
      targets: argv as string[],
      remote: flags.remote,
      jobs: flags.jobs,
      force: flags.force,
      dryRun: flags['dry-run'],
      onProgress,
    }).finally(done);
    this.say(describeFetch(r.fetch, flags['dry-run'] ?? false));
    for (const i of r.checkout.items) {
      if (i.created + i.updated + i.deleted > 0) this.say(`${flags['dry-run'] ? 'would restore' : 'restored'} ${i.path}: ${i.created} created, ${i.updated} updated, ${i.deleted} deleted`);
    }
    return r;
  }
}
