import { Args, Flags } from '@oclif/core';
import { configGet, configSet, SETTING_NAMES } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../base.js';

export default class Config extends BaseCommand {
  static override summary = 'Get or set a repository setting.';
  static override description = `Settings: ${SETTING_NAMES.join(', ')}. Without VALUE, prints the effective value (after flags, CPV_* variables and every config file).`;
  static override examples = [
    '<%= config.bin %> config core.link hardlink,copy',
    '<%= config.bin %> config cache.dir /mnt/shared/cpv-cache --local',
    '<%= config.bin %> config core.jobs',
    '<%= config.bin %> config core.jobs --unset',
  ];
  static override args = {
    name: Args.string({ required: true, description: 'Setting name.', options: SETTING_NAMES }),
    value: Args.string({ description: 'New value.' }),
  };
  static override flags = {
    local: Flags.boolean({ description: 'Write to .cpv/config.local (not committed).' }),
    unset: Flags.boolean({ description: 'Remove the setting from the file.' }),
    ...dryRunFlag,
  };

  async run() {
    const { args, flags } = await this.parse(Config);
    const repo = await this.repo();
    if (args.value === undefined && !flags.unset) {
      const value = configGet(repo, args.name);
      this.say(value === undefined ? '' : String(value));
      return { name: args.name, value: value ?? null };
    }
    const r = await configSet(repo, args.name, flags.unset ? undefined : args.value, { local: flags.local, dryRun: flags['dry-run'] });
    this.say(`${flags['dry-run'] ? 'Would set' : 'Set'} ${args.name}${flags.unset ? ' (unset)' : ` = ${args.value}`} in ${r.file}`);
    return { name: args.name, value: flags.unset ? null : args.value, file: r.file, previous: r.previous ?? null };
  }
}
