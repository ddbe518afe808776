import { Args, Flags } from '@oclif/core';
import { log, shortOid, type LogVersion } from '@cpv/core';
import { BaseCommand } from '../base.js';
import { formatBytes, table } from '../render.js';

export default class Log extends BaseCommand {
  static override summary = 'List the versions of tracked paths in git history, with tags and the data each model version was trained on.';
  static override description =
    'For each path, every commit that changed its pointer (newest first): commit, date, author, tags, oid and size. For a model, also the data artifacts whose pointers are in the same commit. Paths tracked only in the past may be named too.';
  static override examples = [
    '<%= config.bin %> log',
    '<%= config.bin %> log model.safetensors',
    '<%= config.bin %> log model.safetensors -n 5',
    '<%= config.bin %> log data/ --json',
  ];
  static override strict = false;
  static override args = { targets: Args.string({ description: 'Tracked paths or pointer files (default: every pointer in HEAD).' }) };
  static override flags = {
    'max-count': Flags.integer({ char: 'n', description: 'Show at most N versions per path.', min: 1 }),
  };

  async run() {
    const { argv, flags } = await this.parse(Log);
    const r = await log(await this.repo(), { cwd: process.cwd(), targets: argv as string[], maxCount: flags['max-count'] });
    if (r.items.length === 0) this.say('No tracked paths in HEAD.');
    r.items.forEach((item, n) => {
      const kind = item.versions.find((v) => v.kind)?.kind;
      const dir = item.versions.some((v) => v.type === 'dir') ? '/' : '';
      this.say(`${n > 0 ? '\n' : ''}${item.path}${dir}${kind ? ` (${kind})` : ''}: ${item.versions.length} version${item.versions.length === 1 ? '' : 's'}`);
      const rows: string[][] = [];
      for (const v of item.versions) {
        rows.push(['  ' + v.commit.slice(0, 7), v.date.slice(0, 10), v.author, v.deleted ? 'deleted' : shortOid(v.oid!), v.deleted ? '' : formatBytes(v.size!), v.tags.join(','), v.subject]);
        for (const line of extraLines(v)) rows.push(['', '', '', line]);
      }
      this.say(table([['  commit', 'date', 'author', 'oid', 'size', 'tags', 'subject'], ...rows]));
    });
    return r;
  }
}

/** Metadata and lineage lines under a version row. */
function extraLines(v: LogVersion): string[] {
  const out: string[] = [];
  if (v.meta && Object.keys(v.meta).length > 0) out.push(`meta: ${Object.entries(v.meta).map(([k, x]) => `${k}=${String(x)}`).join(' ')}`);
  for (const d of v.data ?? []) out.push(`data: ${d.path} ${shortOid(d.oid)}`);
  return out;
}
