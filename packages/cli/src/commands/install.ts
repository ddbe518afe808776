import { Flags } from '@oclif/core';
import { join } from 'node:path';
import { installHooks } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../base.js';

export default class Install extends BaseCommand {
  static override summary = 'Install git hooks: pre-push publishes cpv objects, post-checkout and post-merge restore data.';
  static override description =
    'Writes pre-push, post-checkout and post-merge into the hooks directory git uses (core.hooksPath if set). pre-push uploads what the pushed commits and version tags reference to the default remote and proves it is there, or stops the push. post-checkout (branch and tag checkouts) and post-merge restore tracked data from the cache; they never overwrite unsaved changes and never fail git (they warn). A hook that was there before is kept as HOOK.pre-cpv and runs first. The hooks run this cpv (this Node and this installation); run `cpv install` again after moving it.';
  static override examples = ['<%= config.bin %> install', '<%= config.bin %> install --dry-run', '<%= config.bin %> install --force'];
  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'Replace a foreign hook that cannot be chained (HOOK.pre-cpv is taken).' }),
    ...dryRunFlag,
  };

  async run() {
    const { flags } = await this.parse(Install);
    const r = await installHooks(await this.repo(), {
      force: flags.force,
      dryRun: flags['dry-run'],
      runner: { node: process.execPath, script: join(this.config.root, 'bin', 'run.js') },
    });
    const would = r.dryRun ? 'would be ' : '';
    for (const h of r.hooks) {
      const what = {
        created: `${would}installed`,
        unchanged: 'already installed',
        updated: `${would}updated`,
        chained: `${would}installed; the existing hook ${would ? 'would move' : 'moved'} to ${h.chained} and runs first`,
        overwritten: `${would}installed over a foreign hook (--force)`,
      }[h.action];
      this.say(`${h.name}: ${what}${h.chained && h.action !== 'chained' ? ` (chains ${h.chained})` : ''}`);
    }
    this.say(`Hooks directory: ${r.hooksDir}`);
    return r;
  }
}
