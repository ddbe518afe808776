import { Args, Flags } from '@oclif/core';
import { expCompare } from '@cpv/core';
import { BaseCommand } from '../../base.js';
import { table } from '../../render.js';
import { cell } from './show.js';

export default class ExpCompare extends BaseCommand {
  static override summary = 'Compare the params and metrics of two or more version tags side by side.';
  static override description = 'One row per parameter and metric, one column per tag; "*" marks values that differ, and numeric metrics show their change against the first tag.';
  static override examples = ['<%= config.bin %> exp compare exp-41 exp-42', '<%= config.bin %> exp compare resnet50@v1 resnet50@v2 resnet50@v3 --only-changed', '<%= config.bin %> exp compare v1 v2 --json'];
  static override strict = false;
  static override args = { tags: Args.string({ description: 'Two or more version tags.', required: true }) };
  static override flags = {
    team: Flags.string({ description: "Only this team's artifacts." }),
    'only-changed': Flags.boolean({ description: 'Only rows whose values differ.' }),
  };

  async run() {
    const { argv, flags } = await this.parse(ExpCompare);
    const r = await expCompare(await this.repo(), { tags: argv as string[], team: flags.team });
    const rows = flags['only-changed'] ? r.rows.filter((x) => x.differs) : r.rows;
    const lines = rows.map((x) => [
      `${x.differs ? '*' : ' '} ${x.section === 'metrics' ? 'metric' : 'param'}`,
      x.key,
      ...x.values.map((v, i) => cell(v) + (x.delta && i > 0 && x.delta[i] !== null && x.delta[i] !== 0 ? ` (${x.delta[i]! > 0 ? '+' : ''}${cell(x.delta[i])})` : '')),
    ]);
    this.say(table([['', 'name', ...r.columns], ...lines]));
    return { ...r, rows };
  }
}
