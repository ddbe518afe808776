import { listTags } from '@cpv/core';
import { BaseCommand } from '../../base.js';
import { table } from '../../render.js';

export default class TagList extends BaseCommand {
  static override summary = 'List version tags, oldest first.';
  static override description = 'Only annotated tags that carry a cpv version block are listed. A tag this cpv cannot read is listed with the reason.';
  static override examples = ['<%= config.bin %> tag list', '<%= config.bin %> tag list --json'];

  async run() {
    await this.parse(TagList);
    const tags = await listTags(await this.repo());
    if (tags.length === 0) this.say('No version tags. Create one with `cpv tag create NAME`.');
    else {
      this.say(
        table(
          tags.map((t) => [
            t.name,
            t.date.slice(0, 10),
            t.commit ? t.commit.slice(0, 12) : '-',
            t.error ? 'unreadable' : `${t.artifacts} artifact(s)`,
            t.error ? t.error : t.subject,
          ]),
        ),
      );
    }
    return { tags };
  }
}
