import { Args, Flags } from '@oclif/core';
import { createTag, shortOid } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../../base.js';
import { parseMeta } from '../../values.js';
import { formatBytes, table } from '../../render.js';

export default class TagCreate extends BaseCommand {
  static override summary = 'Create a version tag: one git tag that binds models and data together.';
  static override description =
    'Writes an annotated git tag whose message lists every bound artifact (path, kind, oid, size). Pointers that are not committed yet are committed first ("cpv: version NAME", only those files), so the tagged commit holds exactly the listed versions. Refuses when the workspace differs from a pointer (run `cpv add` first) or the tag exists. Without --model or --data, binds every tracked path. Publish it with `cpv push --tags`, or `git push` with the hooks of `cpv install`.';
  static override examples = [
    '<%= config.bin %> tag create v1 --model model.safetensors --data data/ -m "baseline on the March crawl"',
    '<%= config.bin %> tag create v2 -m "all tracked paths" --meta accuracy=0.91',
    "<%= config.bin %> tag create release/2024-05 --model 'checkpoints/*.safetensors' --data data/train --dry-run",
  ];
  static override args = { name: Args.string({ description: 'Tag name (a git tag name, e.g. v1).', required: true }) };
  static override flags = {
    model: Flags.string({ description: 'A tracked path (or pointer, or glob) to bind as a model (repeatable).', multiple: true }),
    data: Flags.string({ description: 'A tracked path (or pointer, or glob) to bind as data (repeatable).', multiple: true }),
    message: Flags.string({ char: 'm', description: 'Tag message (default "Version NAME").' }),
    meta: Flags.string({ description: 'Metadata key=value recorded in the tag (repeatable).', multiple: true }),
    ...dryRunFlag,
  };

  async run() {
    const { args, flags } = await this.parse(TagCreate);
    const r = await createTag(await this.repo(), {
      cwd: process.cwd(),
      name: args.name,
      models: flags.model ?? [],
      data: flags.data ?? [],
      message: flags.message,
      meta: parseMeta(flags.meta ?? []),
      dryRun: flags['dry-run'],
    });
    const would = r.dryRun ? 'Would commit' : 'Committed';
    if (r.newCommit) this.say(`${would} ${r.committed.join(', ')}${r.commit ? ` as ${r.commit.slice(0, 12)}` : ''} ("cpv: version ${r.tag}")`);
    this.say(`${r.dryRun ? 'Would tag' : 'Tagged'} ${r.commit ? r.commit.slice(0, 12) : 'that commit'} as ${r.tag}: ${r.artifacts.length} artifact(s)`);
    this.say(
      table(
        r.artifacts.map((a) => [
          `  ${a.kind}`,
          a.path + (a.type === 'dir' ? '/' : ''),
          a.type === 'dir' ? `${a.files} files, ${formatBytes(a.size)}` : formatBytes(a.size),
          shortOid(a.oid),
        ]),
      ),
    );
    if (!r.dryRun) this.say(`\nTo publish it: cpv push --tags (or git push origin ${r.tag} with the hooks of \`cpv install\`)`);
    return r;
  }
}
