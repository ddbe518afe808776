import { Args, Flags } from '@oclif/core';
import { REMOTE_OPTIONS, remoteModify, UsageError } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../../base.js';

export default class RemoteModify extends BaseCommand {
  static override summary = 'Set or unset one option of a remote.';
  static override description = `Options: url, ${REMOTE_OPTIONS.map((o) => `${o.key} (${o.description})`).join('; ')}. Credentials (${REMOTE_OPTIONS.filter((o) => o.secret)
    .map((o) => o.key)
    .join(', ')}) are always written to .cpv/config.local, never to the committed config.`;
  static override examples = [
    '<%= config.bin %> remote modify origin endpoint https://s3.eu-central-1.wasabisys.com',
    '<%= config.bin %> remote modify origin region eu-west-1',
    '<%= config.bin %> remote modify origin profile ml-team',
    '<%= config.bin %> remote modify origin secret_access_key "$SECRET"   # goes to .cpv/config.local',
    '<%= config.bin %> remote modify origin storage_class --unset',
  ];
  static override args = {
    name: Args.string({ required: true, description: 'Remote name.' }),
    key: Args.string({ required: true, description: 'Option name.' }),
    value: Args.string({ description: 'New value.' }),
  };
  static override flags = {
    local: Flags.boolean({ description: 'Write to .cpv/config.local (not committed).' }),
    unset: Flags.boolean({ description: 'Remove the option.' }),
    ...dryRunFlag,
  };

  async run() {
    const { args, flags } = await this.parse(RemoteModify);
    if (args.value === undefined && !flags.unset) throw new UsageError(`give a value for ${args.key}, or --unset`);
    const r = await remoteModify(await this.repo(), args.name, args.key, flags.unset ? undefined : args.value, { local: flags.local, dryRun: flags['dry-run'] });
    const shown = REMOTE_OPTIONS.find((o) => o.key === args.key)?.secret ? '(hidden)' : args.value;
    this.say(`${flags['dry-run'] ? 'Would set' : 'Set'} ${args.name}.${args.key}${flags.unset ? ' (unset)' : ` = ${shown}`} in ${r.file}`);
    return { remote: args.name, key: args.key, unset: flags.unset, file: r.file };
  }
}
