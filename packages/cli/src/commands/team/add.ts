import { Args, Flags } from '@oclif/core';
import { teamAdd } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../../base.js';

export default class TeamAdd extends BaseCommand {
  static override summary = "Declare a team and where its objects go.";
  static override description =
    'Models and datasets named TEAM/name then push to and pull from the team\'s remote (push, pull, tag publishing and hooks all follow it), while every team shares one local, content-addressed cache. --prefix creates the remote TEAM at the default remote\'s URL plus /PREFIX (e.g. one S3 prefix per team, for per-team bucket policies); --remote uses an existing remote.';
  static override examples = ['<%= config.bin %> team add vision --prefix teams/vision', '<%= config.bin %> team add nlp --remote nlp-bucket --description "language models"'];
  static override args = { team: Args.string({ description: 'Team name.', required: true }) };
  static override flags = {
    remote: Flags.string({ char: 'r', description: 'Existing cpv remote for the team (or the base for --prefix).' }),
    prefix: Flags.string({ description: "Key prefix for the team's objects under the (default) remote." }),
    description: Flags.string({ description: 'A one-line description.' }),
    force: Flags.boolean({ char: 'f', description: "Change the remote of a team that already has artifacts (their pushed versions stay on the old remote)." }),
    ...dryRunFlag,
  };

  async run() {
    const { args, flags } = await this.parse(TeamAdd);
    const r = await teamAdd(await this.repo(), { team: args.team, remote: flags.remote, prefix: flags.prefix, description: flags.description, force: flags.force, dryRun: flags['dry-run'] });
    if (r.createdRemote) this.say(`${r.dryRun ? 'Would add' : 'Added'} remote ${r.createdRemote.name} -> ${r.createdRemote.url}`);
    this.say(`${r.dryRun ? 'Would declare' : 'Declared'} team ${r.team}${r.entry.remote ? `: objects go to remote ${r.entry.remote}` : ''}`);
    if (!r.dryRun) this.say('Commit .cpv/registry.yaml and .cpv/config so teammates use the same remote.');
    return r;
  }
}
