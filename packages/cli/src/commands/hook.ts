import { Args } from '@oclif/core';
import { NotARepoError, NotFoundError, prePush, restoreWorkspace, shortOid, UsageError, type PrePushRef } from '@cpv/core';
import { BaseCommand } from '../base.js';
import { formatBytes } from '../render.js';

/** What the hooks of `cpv install` run; not meant to be typed by hand. */
export default class Hook extends BaseCommand {
  static override hidden = true;
  static override summary = 'Run one of the git hooks that `cpv install` writes (used by the hook scripts).';
  static override description = 'pre-push REMOTE URL (refs on standard input), post-checkout PREV NEW FLAG, post-merge SQUASH.';
  static override examples = ['git push   # runs: <%= config.bin %> hook pre-push origin git@host:repo.git'];
  static override strict = false;
  static override args = { name: Args.string({ description: 'Hook name: pre-push, post-checkout or post-merge.', required: true }) };

  async run() {
    const { args, argv } = await this.parse(Hook);
    const rest = (argv as string[]).slice(1);
    let repo;
    try {
      repo = await this.repo();
    } catch (err) {
      if (err instanceof NotARepoError) return { hook: args.name, skipped: 'not a cpv repository' }; // git without cpv: nothing to do
      throw err;
    }
    if (args.name === 'pre-push') {
      const input = await readStdin();
      const { onProgress, done } = this.progress('pre-push');
      const r = await prePush(repo, { gitRemote: rest[0] ?? '', input, onProgress })
        .catch((err: unknown) => {
          this.note('cpv: the push was stopped: the cpv objects it references could not be published (below)');
          throw err;
        })
        .finally(done);
      if (r.upload && r.upload.uploaded > 0) {
        this.note(`cpv: uploaded ${r.upload.uploaded} item(s) (${formatBytes(r.upload.bytes)} in ${r.upload.packs} pack(s)) to remote ${r.remote}`);
      }
      if (!r.ok) {
        const bad = r.refs.filter((x) => !x.ok);
        throw new NotFoundError(`refusing to push ${bad.map((x) => x.ref).join(', ')}: ${bad.map((x) => why(x, r.remote)).join('; ')}`, {
          hint: 'fetch or add the missing content and `cpv push` it, then push again; `git push --no-verify` skips this check',
          data: { ...r },
        });
      }
      if (r.remote) this.note(`cpv: remote ${r.remote} holds everything the pushed refs reference`);
      return r;
    }
    if (args.name === 'post-checkout' || args.name === 'post-merge') {
      try {
        const r = await restoreWorkspace(repo);
        for (const w of r.warnings) this.note(`cpv: warning: ${w.message}${w.hint ? `\n  hint: ${w.hint}` : ''}`);
        const changed = r.items.filter((i) => i.created + i.updated + i.deleted > 0);
        if (changed.length > 0) this.note(`cpv: restored ${changed.map((i) => i.path).join(', ')}`);
        return r;
      } catch (err) {
        // These hooks must never fail the git command: say what went wrong, exit 0.
        const e = err as Error & { hint?: string };
        this.note(`cpv: warning: tracked data was not updated: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ''}`);
        return { items: [], warnings: [{ message: e.message }] };
      }
    }
    throw new UsageError(`unknown hook ${JSON.stringify(args.name)}`, { hint: 'cpv runs pre-push, post-checkout and post-merge; run `cpv install` to rewrite the hooks' });
  }
}

function why(ref: PrePushRef, remote: string | undefined): string {
  if (ref.error) return ref.error;
  const parts: string[] = [];
  for (const u of ref.unavailable.slice(0, 5)) parts.push(`${u.path} (${shortOid(u.oid)}) is neither in the local cache nor on remote ${remote}`);
  for (const m of ref.missing.slice(0, 5)) parts.push(`remote ${remote} lacks ${m.what} ${m.key} of ${m.path}`);
  const more = ref.unavailable.length + ref.missing.length - parts.length;
  return parts.join(', ') + (more > 0 ? `, and ${more} more` : '');
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
