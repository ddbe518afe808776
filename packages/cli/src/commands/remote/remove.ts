import { Args } from '@oclif/core';
import { remoteRemove } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../../base.js';

export default class RemoteRemove extends BaseCommand {
  static override summary = 'Forget a remote (its data is not touched).';
  static override examples = ['<%= config.bin %> remote remove backup'];
  static override args = { name: Args.string({ required: true, description: 'Remote name.' }) };
  static override flags = { ...dryRunFlag };

  async run() {
    const { args, flags } = await this.parse(RemoteRemove);
    await remoteRemove(await this.repo(), args.name, { dryRun: flags['dry-run'] });
    this.say(`${flags['dry-run'] ? 'Would remove' : 'Removed'} remote ${args.name}`);
    return { removed: args.name };
  }
}
