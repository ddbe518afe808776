import { Args, Flags } from '@oclif/core';
import { NotFoundError, verifyTag } from '@cpv/core';
import { BaseCommand } from '../../base.js';

export default class TagVerify extends BaseCommand {
  static override summary = 'Prove that a remote holds every object a version tag references.';
  static override description =
    'Checks, for each artifact of the tag, its manifest (file) or tree index (directory) on the remote, the manifests of multi-chunk files inside directories, and every pack those name. Exits non-zero naming each missing object. Reads records only; downloads no data.';
  static override examples = ['<%= config.bin %> tag verify v1', '<%= config.bin %> tag verify v1 -r backup', '<%= config.bin %> tag verify v1 --json'];
  static override args = { name: Args.string({ description: 'Tag name.', required: true }) };
  static override flags = {
    remote: Flags.string({ char: 'r', description: 'Remote name (default: the default remote).' }),
    jobs: Flags.integer({ char: 'j', description: 'Parallel requests.', min: 1, max: 256 }),
  };

  async run() {
    const { args, flags } = await this.parse(TagVerify);
    const { onProgress, done } = this.progress('verify');
    const r = await verifyTag(await this.repo(), { name: args.name, remote: flags.remote, jobs: flags.jobs, onProgress }).finally(done);
    if (!r.ok) {
      const lines = r.missing.slice(0, 20).map((m) => `  ${m.path}: ${m.what} ${m.key} (${m.oid.slice(0, 15)}) is missing`);
      if (r.missing.length > 20) lines.push(`  … and ${r.missing.length - 20} more`);
      throw new NotFoundError(`remote ${r.remote} does not hold all of version ${r.tag}: ${r.missing.length} object(s) missing\n${lines.join('\n')}`, {
        hint: `push them with \`cpv push --tags\` from a clone that has ${r.tag}'s data in its cache; a pack missing under an existing manifest or tree means the remote lost data`,
        data: { ...r },
      });
    }
    this.say(`${r.tag}: remote ${r.remote} holds all ${r.artifacts} artifact(s) (${r.packs} pack(s) checked).`);
    return r;
  }
}
