import { Flags } from '@oclif/core';
import { setupGitRemote } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../base.js';

export default class GitConfig extends BaseCommand {
  static override summary = 'Point this repository at its git server (Bitbucket, GitHub, …) and check that it answers.';
  static override description =
    'Adds the git remote or changes its URL, optionally makes git use a given SSH key for this repository only (core.sshCommand "ssh -i KEY -o IdentitiesOnly=yes"), then runs `git ls-remote` without ever prompting and with a time limit. Failures say what to do: an unknown host key, a key file others can read, a key the server does not accept, a repository that is not there, a host that does not resolve or answer. The key file is checked before ssh runs.';
  static override aliases = ['bitbucket-config'];
  static override examples = [
    '<%= config.bin %> git-config --url git@bitbucket.org:team/ml-models.git --ssh-key ~/.ssh/id_ed25519_bitbucket',
    '<%= config.bin %> bitbucket-config --url git@bitbucket.org:team/ml-models.git',
    '<%= config.bin %> git-config --url https://github.com/team/ml-models.git --remote upstream',
    '<%= config.bin %> git-config --url /srv/git/ml-models.git --no-verify',
  ];
  static override flags = {
    url: Flags.string({ description: 'Remote URL: git@host:team/repo.git, ssh://…, https://… or a local path.', required: true }),
    'ssh-key': Flags.string({ description: 'Private SSH key to use for this repository (sets core.sshCommand).' }),
    remote: Flags.string({ description: 'Git remote name.', default: 'origin' }),
    verify: Flags.boolean({ description: 'Check the remote with git ls-remote (--no-verify to skip).', default: true, allowNo: true }),
    ...dryRunFlag,
  };

  async run() {
    const { flags } = await this.parse(GitConfig);
    const dry = flags['dry-run'] ?? false;
    const r = await setupGitRemote({ cwd: process.cwd(), url: flags.url, sshKey: flags['ssh-key'], remote: flags.remote, verify: flags.verify, dryRun: dry, env: process.env });
    const would = dry ? 'would ' : '';
    if (r.action === 'added') this.say(`${dry ? 'would add' : 'added'} git remote ${r.remote} -> ${r.url}`);
    else if (r.action === 'updated') this.say(`${dry ? 'would change' : 'changed'} git remote ${r.remote}: ${r.previousUrl} -> ${r.url}`);
    else this.say(`git remote ${r.remote} already points at ${r.url}`);
    if (r.sshCommand) this.say(r.sshCommandAction === 'set' ? `${would}set core.sshCommand for this repository: ${r.sshCommand}` : `core.sshCommand already uses this key`);
    for (const w of r.warnings) this.note(`cpv: warning: ${w}`);
    if (r.verified) this.say(`ok: ${r.url} answers git ls-remote`);
    return r;
  }
}
