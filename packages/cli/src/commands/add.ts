import { Args, Flags } from '@oclif/core';
import { add, ARTIFACT_KINDS, type ArtifactKind } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../base.js';
import { formatBytes } from '../render.js';
import { parseMeta, valueFlags, values } from '../values.js';

export default class Add extends BaseCommand {
  static override summary = 'Track files or directories: store their content and write PATH.cpv pointers.';
  static override description =
    'Splits each file into content-defined chunks, stores it in the cache, writes a small pointer file to commit to git and git-ignores the data. Paths may be globs. Re-adding an unchanged path reads nothing.';
  static override examples = [
    '<%= config.bin %> add model.safetensors --kind model',
    '<%= config.bin %> add data/ --kind data --name imagenet-mini',
    "<%= config.bin %> add 'checkpoints/*.safetensors' --meta epoch=3",
  ];
  static override strict = false;
  static override args = { paths: Args.string({ description: 'Files, directories or glob patterns.', required: true }) };
  static override flags = {
    kind: Flags.string({ description: 'What the artifact is.', options: [...ARTIFACT_KINDS] }),
    name: Flags.string({ description: 'Artifact name (e.g. resnet50 or team/resnet50); one path only.' }),
    meta: Flags.string({ description: 'Metadata key=value (repeatable).', multiple: true }),
    ...valueFlags,
    ...dryRunFlag,
  };

  async run() {
    const { argv, flags } = await this.parse(Add);
    const { onProgress, done } = this.progress('add');
    const r = await add(await this.repo(), {
      cwd: process.cwd(),
      paths: argv as string[],
      kind: flags.kind as ArtifactKind | undefined,
      name: flags.name,
      meta: parseMeta(flags.meta ?? []),
      params: await values(flags.params, 'params'),
      metrics: await values(flags.metrics, 'metrics'),
      dryRun: flags['dry-run'],
      onProgress,
    }).finally(done);
    const verb = flags['dry-run'] ? 'would add' : 'added';
    for (const i of r.items) {
      const what = i.type === 'dir' ? `${i.files} files, ${formatBytes(i.size)}` : formatBytes(i.size);
      this.say(`${i.status === 'unchanged' ? 'unchanged' : verb} ${i.path} (${what}, ${i.oid.slice(0, 15)}) -> ${i.pointerPath}`);
    }
    if (r.gitAdd.length > 0) this.say(`\nTo track the changes with git, run:\n\n    git add ${r.gitAdd.map(quote).join(' ')}\n`);
    return r;
  }
}

function quote(s: string): string {
  return /^[\w./@%+=:,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
