import { Args, Flags } from '@oclif/core';
import { expShow, type MetaValue } from '@cpv/core';
import { BaseCommand } from '../../base.js';
import { table } from '../../render.js';

export function cell(v: MetaValue | null | undefined): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number' && !Number.isInteger(v)) return String(Number.parseFloat(v.toPrecision(6)));
  return String(v);
}

export default class ExpShow extends BaseCommand {
  static override summary = 'Table of the params and metrics recorded with version tags.';
  static override description =
    'One row per tag and model (per dataset when a tag binds no model), one column per parameter and metric. Params and metrics are recorded by `cpv model upload --params FILE --metrics FILE` (or `cpv add --params/--metrics`) and read from the pointers of each tagged commit. Without tags, every version tag, oldest first.';
  static override examples = ['<%= config.bin %> exp show', '<%= config.bin %> exp show exp-41 exp-42 --json', '<%= config.bin %> exp show --team vision'];
  static override strict = false;
  static override args = { tags: Args.string({ description: 'Version tags (default: all).' }) };
  static override flags = { team: Flags.string({ description: "Only this team's artifacts." }) };

  async run() {
    const { argv, flags } = await this.parse(ExpShow);
    const rows = await expShow(await this.repo(), { tags: argv as string[], team: flags.team });
    const params = [...new Set(rows.flatMap((r) => Object.keys(r.params)))].sort();
    const metrics = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))].sort();
    if (rows.length === 0) this.say('No version tags. Create one with `cpv model upload NAME --tag v1` or `cpv checkpoint create`.');
    else this.say(table([['tag', 'artifact', ...params, ...metrics.map((m) => `${m} (metric)`)], ...rows.map((r) => [r.tag, r.name, ...params.map((k) => cell(r.params[k])), ...metrics.map((k) => cell(r.metrics[k]))])]));
    return { rows };
  }
}
