import { Args } from '@oclif/core';
import { push } from '@cpv/core';
import { BaseCommand, dryRunFlag, transferFlags } from '../base.js';
import { formatBytes } from '../render.js';

export default class Push extends BaseCommand {
  static override summary = 'Upload tracked content to a remote; only chunks the remote lacks move.';
  static override description =
    'Packs new chunks into ~32 MiB packs, then writes manifests, then directory trees: a manifest or tree on the remote always means all of its data is there. An interrupted push resumes.';
  static override examples = ['<%= config.bin %> push', '<%= config.bin %> push model.safetensors -r backup -j 16', '<%= config.bin %> push --dry-run'];
  static override strict = false;
  static override args = { targets: Args.string({ description: 'Tracked paths or pointer files (default: all).' }) };
  static override flags = { ...transferFlags, ...dryRunFlag };

  async run() {
    const { argv, flags } = await this.parse(Push);
    const { onProgress, done } = this.progress('push');
    const r = await push(await this.repo(), { cwd: process.cwd(), targets: argv as string[], remote: flags.remote, jobs: flags.jobs, dryRun: flags['dry-run'], onProgress }).finally(done);
    const verb = flags['dry-run'] ? 'would upload' : 'uploaded';
    if (r.uploaded === 0) this.say(`Everything is already on ${r.remote} (${r.upToDate} up to date).`);
    else {
      this.say(
        `${verb} ${r.uploaded} item(s) to ${r.remote}: ${r.files} file(s), ${r.chunks} new chunk(s), ${formatBytes(r.bytes)} in ${r.packs} pack(s)` +
          (r.dedupBytes > 0 ? `; ${formatBytes(r.dedupBytes)} already there` : '') +
          (r.upToDate > 0 ? `; ${r.upToDate} up to date` : ''),
      );
    }
    return r;
  }
}
