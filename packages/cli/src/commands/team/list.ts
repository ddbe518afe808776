import { teamList } from '@cpv/core';
import { BaseCommand } from '../../base.js';
import { table } from '../../render.js';

export default class TeamList extends BaseCommand {
  static override summary = 'List teams, their remotes and how many models and datasets each has.';
  static override examples = ['<%= config.bin %> team list', '<%= config.bin %> team list --json'];

  async run() {
    const items = await teamList(await this.repo());
    if (items.length === 0) this.say('No teams. Name models "team/name", or declare one with `cpv team add TEAM`.');
    this.say(table(items.map((t) => [t.team, t.remote ? `remote ${t.remote}` : '(default remote)', `${t.models} model(s)`, `${t.data} dataset(s)`, t.description ?? ''])));
    return { items };
  }
}
