import { remoteList } from '@cpv/core';
import { BaseCommand } from '../../base.js';
import { table } from '../../render.js';

export default class RemoteList extends BaseCommand {
  static override summary = 'List configured remotes.';
  static override examples = ['<%= config.bin %> remote list', '<%= config.bin %> remote list --json'];

  async run() {
    await this.parse(RemoteList);
    const remotes = await remoteList(await this.repo());
    if (remotes.length === 0) this.say('No remotes. Add one with `cpv remote add NAME URL --default`.');
    else this.say(table(remotes.map((r) => [r.default ? '*' : ' ', r.name, r.url, r.scope === 'local' ? '(local)' : ''])));
    return { remotes };
  }
}
