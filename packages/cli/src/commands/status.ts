import { Args, Flags } from '@oclif/core';
import { Remote, status } from '@cpv/core';
import { BaseCommand } from '../base.js';
import { formatBytes } from '../render.js';

export default class Status extends BaseCommand {
  static override summary = 'Show tracked paths that differ from their pointers, in the workspace, cache or a remote.';
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status data/ -r origin', '<%= config.bin %> status --json'];
  static override strict = false;
  static override args = { targets: Args.string({ description: 'Tracked paths or pointer files (default: all).' }) };
  static override flags = {
    remote: Flags.string({ char: 'r', description: 'Also check whether this remote has the content.' }),
    all: Flags.boolean({ char: 'a', description: 'List unchanged paths too.' }),
  };

  async run() {
    const { argv, flags } = await this.parse(Status);
    const repo = await this.repo();
    const remote = flags.remote !== undefined ? await Remote.open(repo.config, repo.root, repo.cache, flags.remote) : undefined;
    try {
      const items = await status(repo, { cwd: process.cwd(), targets: argv as string[], remote });
      let clean = true;
      for (const i of items) {
        const notes: string[] = [];
        if (i.workspace === 'modified') notes.push('modified (run `cpv add` to record, or `cpv checkout --force` to discard)');
        if (i.workspace === 'missing') notes.push('not in workspace (run `cpv checkout` or `cpv pull`)');
        if (i.cache === 'missing') notes.push('not in cache (run `cpv fetch`)');
        if (i.remote === 'missing') notes.push(`not on remote ${remote!.name} (run \`cpv push\`)`);
        if (notes.length === 0) {
          if (flags.all) this.say(`  ok        ${i.path} (${formatBytes(i.size)})`);
          continue;
        }
        clean = false;
        this.say(`  ${i.path}: ${notes.join('; ')}`);
        if (i.changes) {
          for (const p of i.changes.added) this.say(`      new:      ${p}`);
          for (const p of i.changes.modified) this.say(`      modified: ${p}`);
          for (const p of i.changes.deleted) this.say(`      deleted:  ${p}`);
        }
      }
      if (clean) this.say(items.length === 0 ? 'No tracked paths.' : `Everything is up to date (${items.length} tracked path${items.length === 1 ? '' : 's'}).`);
      return { items, clean };
    } finally {
      await remote?.close();
    }
  }
}
