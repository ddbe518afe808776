import { Flags } from '@oclif/core';
import { checkpointList } from '@cpv/core';
import { BaseCommand } from '../../base.js';
import { table } from '../../render.js';

export default class CheckpointList extends BaseCommand {
  static override summary = 'List checkpoints: version tags binding models and data, oldest first.';
  static override description = 'Per-artifact tags (NAME@VERSION, from `cpv model tag` or `upload --tag`) are left out; `cpv tag list` shows every version tag.';
  static override examples = ['<%= config.bin %> checkpoint list', '<%= config.bin %> checkpoint list --team vision --json'];
  static override flags = { team: Flags.string({ description: 'Only checkpoints binding an artifact of this team.' }) };

  async run() {
    const { flags } = await this.parse(CheckpointList);
    const items = await checkpointList(await this.repo(), { team: flags.team });
    if (items.length === 0) this.say('No checkpoints. Create one with: cpv checkpoint create TAG --model NAME --data NAME');
    this.say(
      table(
        items.map((c) => [
          c.tag,
          c.date.slice(0, 10),
          c.error ? `unreadable: ${c.error}` : `models: ${c.models.map((m) => m.name).join(', ') || '-'}`,
          c.error ? '' : `data: ${c.data.map((d) => d.name).join(', ') || '-'}`,
          c.subject,
        ]),
      ),
    );
    return { items };
  }
}
