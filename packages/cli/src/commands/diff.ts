import { Args } from '@oclif/core';
import { diff } from '@cpv/core';
import { BaseCommand } from '../base.js';
import { formatBytes, table } from '../render.js';

export default class Diff extends BaseCommand {
  static override summary = 'Show which tracked paths changed between two git revisions (default: HEAD and the workspace).';
  static override examples = ['<%= config.bin %> diff', '<%= config.bin %> diff v1 v2', '<%= config.bin %> diff HEAD~3 --json'];
  static override args = {
    a: Args.string({ description: 'Old revision (default HEAD).' }),
    b: Args.string({ description: 'New revision (default: the workspace).' }),
  };

  async run() {
    const { args } = await this.parse(Diff);
    const r = await diff(await this.repo(), { a: args.a, b: args.b });
    if (r.items.length === 0) this.say(`No tracked changes between ${r.a} and ${r.b}.`);
    else {
      this.say(
        table(
          r.items.map((i) => [
            i.status,
            i.path + (i.type === 'dir' ? '/' : ''),
            i.oldSize !== undefined && i.newSize !== undefined ? `${formatBytes(i.oldSize)} -> ${formatBytes(i.newSize)}` : formatBytes((i.newSize ?? i.oldSize)!),
            i.files ? `(${i.files.added} added, ${i.files.modified} modified, ${i.files.deleted} deleted)` : '',
          ]),
        ),
      );
    }
    return r;
  }
}
