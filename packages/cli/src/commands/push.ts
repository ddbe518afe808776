import { Args, Flags } from '@oclif/core';
import { NotFoundError, push, pushTags, shortOid, UsageError, type PushResult, type PushTagsResult } from '@cpv/core';
import { BaseCommand, dryRunFlag, transferFlags } from '../base.js';
import { formatBytes } from '../render.js';

export default class Push extends BaseCommand {
  static override summary = 'Upload tracked content to a remote; only chunks the remote lacks move.';
  static override description =
    'Packs new chunks into ~32 MiB packs, then writes manifests, then directory trees: a manifest or tree on the remote always means all of its data is there. An interrupted push resumes.\n\nWith --tags, publishes every version tag instead: uploads what each tag binds (as of its commit), proves the remote holds all of it, and only then pushes the tag to the git remote. A tag whose content is neither in the cache nor on the remote is not pushed, and the command fails naming it.';
  static override examples = [
    '<%= config.bin %> push',
    '<%= config.bin %> push model.safetensors -r backup -j 16',
    '<%= config.bin %> push --dry-run',
    '<%= config.bin %> push --tags',
    '<%= config.bin %> push --tags --git-remote upstream',
  ];
  static override strict = false;
  static override args = { targets: Args.string({ description: 'Tracked paths or pointer files (default: all).' }) };
  static override flags = {
    ...transferFlags,
    tags: Flags.boolean({ description: 'Publish every version tag: its objects to the cpv remote, then the tag to git.' }),
    'git-remote': Flags.string({ description: 'git remote that gets the tags (with --tags).', default: 'origin' }),
    ...dryRunFlag,
  };

  async run() {
    const { argv, flags } = await this.parse(Push);
    if (flags.tags) {
      if (argv.length > 0) throw new UsageError('--tags publishes version tags; it takes no paths', { hint: 'run `cpv push PATH...` and `cpv push --tags` separately' });
      return this.pushTags(flags);
    }
    const { onProgress, done } = this.progress('push');
    const r = await push(await this.repo(), { cwd: process.cwd(), targets: argv as string[], remote: flags.remote, jobs: flags.jobs, dryRun: flags['dry-run'], onProgress }).finally(done);
    this.say(uploadLine(r, r.remote, flags['dry-run']));
    return r;
  }

  private async pushTags(flags: { remote?: string; jobs?: number; 'dry-run'?: boolean; 'git-remote': string }): Promise<PushTagsResult> {
    const { onProgress, done } = this.progress('push');
    const dryRun = flags['dry-run'];
    const r = await pushTags(await this.repo(), { remote: flags.remote, gitRemote: flags['git-remote'], jobs: flags.jobs, dryRun, onProgress }).finally(done);
    if (r.tags.length === 0) {
      this.say('No version tags to push. Create one with `cpv tag create NAME`.');
      return r;
    }
    this.say(uploadLine(r.upload, r.remote, dryRun));
    const pushed = r.tags.filter((t) => t.status !== 'refused').map((t) => t.tag);
    if (pushed.length > 0) this.say(`${dryRun ? 'Would push' : 'Pushed'} ${pushed.join(', ')} to git remote ${r.gitRemote}${dryRun ? '' : ` (remote ${r.remote} holds all of their objects)`}.`);
    const refused = r.tags.filter((t) => t.status === 'refused');
    if (refused.length > 0) {
      const why = refused.map((t) => {
        if (t.error) return `${t.tag}: ${t.error}`;
        const parts = [
          ...t.unavailable.map((u) => `${u.path} (${shortOid(u.oid)}) is neither in the local cache nor on remote ${r.remote}`),
          ...t.missing.map((m) => `remote ${r.remote} lacks ${m.what} ${m.key} of ${m.path}`),
        ];
        return `${t.tag}: ${parts.slice(0, 5).join(', ')}${parts.length > 5 ? `, and ${parts.length - 5} more` : ''}`;
      });
      throw new NotFoundError(`refused to push ${refused.length} version tag(s):\n  ${why.join('\n  ')}`, {
        hint: 'content in neither place: fetch it from a remote that has it (`git checkout TAG && cpv fetch -r NAME`), then push again. A missing pack under an existing manifest or tree: the remote lost data; `cpv tag verify TAG` lists what',
        data: { ...r },
      });
    }
    return r;
  }
}

export function uploadLine(r: PushResult, remote: string, dryRun: boolean | undefined): string {
  if (r.uploaded === 0) return `Everything is already on ${remote} (${r.upToDate} up to date).`;
  return (
    `${dryRun ? 'would upload' : 'uploaded'} ${r.uploaded} item(s) to ${remote}: ${r.files} file(s), ${r.chunks} new chunk(s), ${formatBytes(r.bytes)} in ${r.packs} pack(s)` +
    (r.dedupBytes > 0 ? `; ${formatBytes(r.dedupBytes)} already there` : '') +
    (r.upToDate > 0 ? `; ${r.upToDate} up to date` : '')
  );
}
