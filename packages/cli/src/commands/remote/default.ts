import { Args, Flags } from '@oclif/core';
import { remoteDefault } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../../base.js';

export default class RemoteDefault extends BaseCommand {
  static override summary = 'Set the default remote.';
  static override examples = ['<%= config.bin %> remote default origin'];
  static override args = { name: Args.string({ required: true, description: 'Remote name.' }) };
  static override flags = { local: Flags.boolean({ description: 'Write to .cpv/config.local (not committed).' }), ...dryRunFlag };

  async run() {
    const { args, flags } = await this.parse(RemoteDefault);
    await remoteDefault(await this.repo(), args.name, { local: flags.local, dryRun: flags['dry-run'] });
    this.say(`${flags['dry-run'] ? 'Would set' : 'Default remote is now'} ${args.name}`);
    return { default: args.name };
  }
}
