import { Flags } from '@oclif/core';
import { init } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../base.js';

export default class Init extends BaseCommand {
  static override summary = 'Make this git repository a cpv repository.';
  static override description = 'Writes .cpv/config (chunker parameters, remotes) and .cpv/.gitignore. Commit both.';
  static override examples = ['<%= config.bin %> init', '<%= config.bin %> init --remote /mnt/team/cpv-store', '<%= config.bin %> init --no-scm'];
  static override flags = {
    remote: Flags.string({ description: 'Default remote URL (a directory or file:// URL), registered as "origin".' }),
    'no-scm': Flags.boolean({ description: 'Allow a directory that is not a git repository.' }),
    force: Flags.boolean({ char: 'f', description: 'Re-initialize an existing cpv repository.' }),
    ...dryRunFlag,
  };

  async run() {
    const { flags } = await this.parse(Init);
    const r = await init({ dir: process.cwd(), remote: flags.remote, noScm: flags['no-scm'], force: flags.force, dryRun: flags['dry-run'] });
    this.say(`${flags['dry-run'] ? 'Would initialize' : 'Initialized'} cpv in ${r.root}`);
    if (r.git && !flags['dry-run']) this.say(`Next: git add .cpv && git commit -m "Initialize cpv"`);
    return r;
  }
}
