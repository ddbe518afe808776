import { Args, Flags } from '@oclif/core';
import { checkpointCreate, ConflictError, shortOid } from '@cpv/core';
import { BaseCommand, dryRunFlag, transferFlags } from '../../base.js';
import { formatBytes, table } from '../../render.js';
import { parseMeta } from '../../values.js';

export default class CheckpointCreate extends BaseCommand {
  static override summary = 'Bind models and the data they were trained on into one version tag, atomically.';
  static override description =
    'Creates the annotated git tag TAG listing each named model and dataset (as registered with `cpv model init` / `cpv data init`) with its exact content oid; uncommitted pointers are committed first. One git ref binds them all: `git checkout TAG && cpv pull`, or `cpv checkpoint revert TAG`, restores both. With --git-push the tag is published at once, after the remote proves it holds every object.';
  static override examples = [
    '<%= config.bin %> checkpoint create exp-42 --model resnet50 --data imagenet -m "lr sweep winner"',
    "<%= config.bin %> checkpoint create release/2024-05 --model 'vision/*' --data vision/coco --meta owner=ana --git-push",
    '<%= config.bin %> checkpoint create exp-43 --model resnet50 --data imagenet --dry-run',
  ];
  static override args = { tag: Args.string({ description: 'Tag name (e.g. exp-42 or release/2024-05).', required: true }) };
  static override flags = {
    model: Flags.string({ description: 'Registered model name or glob (repeatable).', multiple: true }),
    data: Flags.string({ description: 'Registered dataset name or glob (repeatable).', multiple: true }),
    message: Flags.string({ char: 'm', description: 'Tag message (default "Checkpoint TAG").' }),
    meta: Flags.string({ description: 'Metadata key=value recorded in the tag (repeatable).', multiple: true }),
    team: Flags.string({ description: 'Team for names given without "team/".' }),
    'git-push': Flags.boolean({ description: 'Publish the tag now: objects to the cpv remote, then the tag to git.' }),
    'git-remote': Flags.string({ description: 'git remote for --git-push.', default: 'origin' }),
    ...transferFlags,
    ...dryRunFlag,
  };

  async run() {
    const { args, flags } = await this.parse(CheckpointCreate);
    const { onProgress, done } = this.progress('checkpoint');
    const r = await checkpointCreate(await this.repo(), {
      cwd: process.cwd(),
      tag: args.tag,
      models: flags.model ?? [],
      data: flags.data ?? [],
      team: flags.team,
      message: flags.message,
      meta: parseMeta(flags.meta ?? []),
      gitPush: flags['git-push'] ? flags['git-remote'] : undefined,
      remote: flags.remote,
      jobs: flags.jobs,
      dryRun: flags['dry-run'],
      onProgress,
    }).finally(done);
    if (r.newCommit) this.say(`${r.dryRun ? 'Would commit' : 'Committed'} ${r.committed.join(', ')}${r.commit ? ` as ${r.commit.slice(0, 7)}` : ''}`);
    this.say(`${r.dryRun ? 'Would create' : 'Created'} checkpoint ${r.tag}${r.commit ? ` on ${r.commit.slice(0, 7)}` : ''}:`);
    this.say(table(r.artifacts.map((a) => [`  ${a.kind}`, a.name, a.path + (a.type === 'dir' ? '/' : ''), a.type === 'dir' ? `${a.files} files, ${formatBytes(a.size)}` : formatBytes(a.size), shortOid(a.oid)])));
    const pub = r.published?.tags.find((t) => t.tag === r.tag);
    if (pub) this.say(pub.status === 'refused' ? `Not published: the remote lacks ${pub.missing.map((m) => m.key).join(', ') || pub.unavailable.map((u) => u.path).join(', ')}` : `${pub.status === 'pushed' ? 'Published' : 'Would publish'} ${r.tag} to ${r.published!.gitRemote}`);
    else if (!r.dryRun) this.say('Publish with: cpv push --tags');
    if (pub?.status === 'refused') {
      throw new ConflictError(`checkpoint ${r.tag} was created but not published: the remote lacks what it references`, {
        hint: 'run `cpv push`, then `cpv push --tags`',
        data: { tag: r.tag, missing: pub.missing, unavailable: pub.unavailable },
      });
    }
    return r;
  }
}
