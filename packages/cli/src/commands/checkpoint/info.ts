import { Args } from '@oclif/core';
import { checkpointInfo, shortOid } from '@cpv/core';
import { BaseCommand } from '../../base.js';
import { formatBytes, formatValues, table } from '../../render.js';


export default class CheckpointInfo extends BaseCommand {
  static override summary = 'Show a checkpoint: its message and metadata, and every bound artifact with its params and metrics.';
  static override examples = ['<%= config.bin %> checkpoint info exp-42', '<%= config.bin %> checkpoint info exp-42 --json'];
  static override args = { tag: Args.string({ description: 'Checkpoint (version tag) name.', required: true }) };

  async run() {
    const { args } = await this.parse(CheckpointInfo);
    const r = await checkpointInfo(await this.repo(), args.tag);
    this.say(`checkpoint ${r.name}  commit ${r.commit.slice(0, 7)}  ${r.date}  ${r.tagger}`);
    if (r.message) this.say(`\n    ${r.message.split('\n').join('\n    ')}\n`);
    if (r.block.meta) this.say(`meta: ${formatValues(r.block.meta)}`);
    for (const a of r.artifacts) {
      const p = a.pointer;
      this.say(`${a.kind} ${a.name}  ${a.path}${p.type === 'dir' ? '/' : ''}  ${shortOid(p.oid)}  ${p.type === 'dir' ? `${p.files} files, ` : ''}${formatBytes(p.size)}`);
      const rows = (['meta', 'params', 'metrics'] as const).filter((s) => p[s]).map((s) => [`  ${s}`, formatValues(p[s])]);
      if (rows.length) this.say(table(rows));
    }
    return r;
  }
}
