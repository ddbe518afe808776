import { Args } from '@oclif/core';
import { showTag } from '@cpv/core';
import { BaseCommand } from '../../base.js';
import { formatBytes, table } from '../../render.js';

export default class TagShow extends BaseCommand {
  static override summary = 'Show what a version tag binds: its message, commit and artifacts.';
  static override description = 'Reads the tag from git and parses its version block strictly. `git checkout NAME && cpv pull` restores exactly these artifacts.';
  static override examples = ['<%= config.bin %> tag show v1', '<%= config.bin %> tag show v1 --json'];
  static override args = { name: Args.string({ description: 'Tag name.', required: true }) };

  async run() {
    const { args } = await this.parse(TagShow);
    const t = await showTag(await this.repo(), args.name);
    this.say(`tag     ${t.name}`);
    this.say(`commit  ${t.commit}`);
    if (t.tagger) this.say(`tagger  ${t.tagger}`);
    if (t.date) this.say(`date    ${t.date}`);
    this.say(`\n${t.message.replace(/^/gm, '    ')}\n`);
    this.say(
      table(
        t.block.artifacts.map((a) => [
          a.kind,
          a.path + (a.type === 'dir' ? '/' : ''),
          a.name === a.path ? '' : `(${a.name})`,
          a.type === 'dir' ? `${a.files} files, ${formatBytes(a.size)}` : formatBytes(a.size),
          a.oid,
        ]),
      ),
    );
    if (t.block.meta) for (const [k, v] of Object.entries(t.block.meta)) this.say(`meta    ${k} = ${String(v)}`);
    return t;
  }
}
