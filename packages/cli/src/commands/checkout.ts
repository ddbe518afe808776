import { Args, Flags } from '@oclif/core';
import { checkout } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../base.js';

export default class Checkout extends BaseCommand {
  static override summary = 'Restore tracked paths in the workspace from the cache, as their pointers say.';
  static override description = 'Never overwrites changes that exist only in the workspace unless --force. Every file is verified against its hash first.';
  static override examples = ['<%= config.bin %> checkout', '<%= config.bin %> checkout model.safetensors.cpv', '<%= config.bin %> checkout data/ --force'];
  static override strict = false;
  static override args = { targets: Args.string({ description: 'Tracked paths or pointer files (default: all).' }) };
  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'Discard workspace changes that are not in the cache.' }),
    ...dryRunFlag,
  };

  async run() {
    const { argv, flags } = await this.parse(Checkout);
    const { onProgress, done } = this.progress('checkout');
    const r = await checkout(await this.repo(), { cwd: process.cwd(), targets: argv as string[], force: flags.force, dryRun: flags['dry-run'], onProgress }).finally(done);
    const verb = flags['dry-run'] ? 'would ' : '';
    for (const i of r.items) {
      const n = i.created + i.updated + i.deleted;
      if (n === 0) continue;
      this.say(`${verb}restore ${i.path}: ${i.created} created, ${i.updated} updated, ${i.deleted} deleted`);
    }
    if (r.items.every((i) => i.created + i.updated + i.deleted === 0)) this.say('Workspace already matches the pointers.');
    return r;
  }
}
