import { Flags } from '@oclif/core';
import { doctor } from '@cpv/core';
import { BaseCommand } from '../base.js';

export default class Doctor extends BaseCommand {
  static override summary = 'Check the cache, every remote and its credentials, and the git remotes.';
  static override description =
    'For each cpv remote: reachable (list), then write, read back and delete a probe object, so a missing permission is named exactly (e.g. a read-only key lacks s3:PutObject). For each git remote: `git ls-remote`. Exits non-zero if any check fails.';
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor -r origin --no-git', '<%= config.bin %> doctor --json'];
  static override flags = {
    remote: Flags.string({ char: 'r', description: 'Check only this remote (repeatable).', multiple: true }),
    git: Flags.boolean({ description: 'Check git remotes with git ls-remote.', default: true, allowNo: true }),
  };

  async run() {
    const { flags } = await this.parse(Doctor);
    const r = await doctor(await this.repo(), {
      remotes: flags.remote,
      git: flags.git,
      onCheck: (c) => this.say(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.check}: ${c.detail}${!c.ok && c.hint ? `\n        hint: ${c.hint}` : ''}`),
    });
    if (!r.ok) {
      process.exitCode = 1;
      this.note(`cpv doctor: ${r.checks.filter((c) => !c.ok).length} check(s) failed`);
    }
    return r;
  }
}
