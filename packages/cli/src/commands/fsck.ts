import { Flags } from '@oclif/core';
import { fsck, IntegrityError, type FsckProblem } from '@cpv/core';
import { BaseCommand, transferFlags } from '../base.js';
import { formatBytes } from '../render.js';

/** Problems named in the error message (`--json` has them all). */
const LIST_MAX = 20;

export default class Fsck extends BaseCommand {
  static override summary = 'Check the cache, and with -r a remote, for damaged or missing objects.';
  static override description =
    'Cache: every tree hashes to its name, every manifest is well-formed, every file has the size its manifest, tree or pointer gives. Remote: every tree index and manifest is well-formed and every pack and range it names exists. --read-data also re-hashes every cached file and chunk, and downloads and re-hashes every pack on the remote.\n\n' +
    'Reports each bad object with its key and reason and exits non-zero (code 4) if any is left. --repair re-fetches a bad cache file or tree from a remote that has a good copy (-r, else the default remote, then the others) and rebuilds a bad cache manifest from its file; remote objects are only reported.';
  static override examples = [
    '<%= config.bin %> fsck',
    '<%= config.bin %> fsck --read-data',
    '<%= config.bin %> fsck -r origin --read-data --json',
    '<%= config.bin %> fsck --read-data --repair',
  ];
  static override flags = {
    remote: Flags.string({ char: 'r', description: 'Also check this remote (with --repair: fetch good copies from it).' }),
    'read-data': Flags.boolean({ description: 'Re-hash every cached file and chunk (and every pack of the remote).' }),
    repair: Flags.boolean({ description: 'Replace bad cache objects with good copies from a remote.' }),
    jobs: transferFlags.jobs,
  };

  async run() {
    const { flags } = await this.parse(Fsck);
    const r = await fsck(await this.repo(), { remote: flags.remote, readData: flags['read-data'], repair: flags.repair, jobs: flags.jobs });
    const hashed = (n: number): string => (r.readData ? `, ${formatBytes(n)} re-hashed` : '');
    this.say(`cache ${r.cache.dir}: ${r.cache.files} file(s), ${r.cache.manifests} manifest(s), ${r.cache.trees} tree(s) checked${hashed(r.cache.bytesHashed)}`);
    if (r.remote) this.say(`remote ${r.remote.name} (${r.remote.location}): ${r.remote.packs} pack(s), ${r.remote.pages} page(s), ${r.remote.manifests} manifest(s), ${r.remote.trees} tree(s) checked${hashed(r.remote.bytesHashed)}`);
    // Repaired objects here; those left are listed in the error.
    for (const p of r.problems) if (p.repaired) this.say(line(p));
    if (!r.ok) {
      const bad = r.problems.filter((p) => p.repaired !== true);
      const shown = bad.slice(0, LIST_MAX).map((p) => `  ${p.where} ${p.kind} ${p.key}: ${p.reason}`);
      if (bad.length > LIST_MAX) shown.push(`  … and ${bad.length - LIST_MAX} more (--json lists all)`);
      const cacheBad = bad.some((p) => p.where === 'cache');
      throw new IntegrityError(`${bad.length} bad object(s)${flags.repair ? ' left after repair' : ''}:\n${shown.join('\n')}`, {
        hint: [
          cacheBad && !flags.repair ? `run \`cpv fsck${flags['read-data'] ? ' --read-data' : ''} --repair${flags.remote ? ` -r ${flags.remote}` : ''}\` to replace bad cache objects with good copies from a remote` : '',
          cacheBad && flags.repair ? 'no remote has a good copy of the cache objects left: delete them and `cpv add` the files again from a workspace that has them' : '',
          bad.some((p) => p.where === 'remote') ? 'bad remote objects: push the data again from a clone that has it in its cache (`cpv push`); a missing pack under an existing record means the remote lost data' : '',
        ]
          .filter(Boolean)
          .join('; '),
        data: { ...r },
      });
    }
    this.say(r.problems.length === 0 ? 'No problems found.' : `All ${r.problems.length} problem(s) repaired.`);
    return r;
  }
}

function line(p: FsckProblem): string {
  const fix = p.repaired === undefined ? '' : p.repaired ? ` [repaired: ${p.repair}]` : ` [not repaired: ${p.repair}]`;
  return `BAD ${p.where} ${p.kind} ${p.key}: ${p.reason}${fix}`;
}
