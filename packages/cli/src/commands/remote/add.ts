import { Args, Flags } from '@oclif/core';
import { remoteAdd } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../../base.js';

export default class RemoteAdd extends BaseCommand {
  static override summary = 'Register a remote (a directory path or file:// URL).';
  static override examples = ['<%= config.bin %> remote add origin /mnt/team/cpv --default', '<%= config.bin %> remote add backup file:///srv/cpv'];
  static override args = {
    name: Args.string({ required: true, description: 'Remote name.' }),
    url: Args.string({ required: true, description: 'Directory path or file:// URL.' }),
  };
  static override flags = {
    default: Flags.boolean({ char: 'd', description: 'Make it the default remote.' }),
    local: Flags.boolean({ description: 'Write to .cpv/config.local (not committed).' }),
    force: Flags.boolean({ char: 'f', description: 'Replace a remote of the same name.' }),
    ...dryRunFlag,
  };

  async run() {
    const { args, flags } = await this.parse(RemoteAdd);
    const r = await remoteAdd(await this.repo(), args.name, args.url, { makeDefault: flags.default, local: flags.local, force: flags.force, dryRun: flags['dry-run'] });
    this.say(`${flags['dry-run'] ? 'Would add' : 'Added'} remote ${r.name} -> ${r.url}${r.default ? ' (default)' : ''}`);
    return r;
  }
}
