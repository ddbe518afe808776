// The model and data porcelain: one implementation, built for each kind
// (commands/model/*.ts and commands/data/*.ts are one line each).
import { Args, Flags, type Command } from '@oclif/core';
import {
  artifactDownload,
  artifactInfo,
  artifactInit,
  artifactList,
  artifactRevert,
  artifactTag,
  artifactUpload,
  artifactVersions,
  shortOid,
  type RegistryKind,
} from '@cpv/core';
import { BaseCommand, dryRunFlag, transferFlags } from './base.js';
import { parseMeta, valueFlags, values } from './values.js';
import { describeFetch } from './commands/fetch.js';
import { uploadLine } from './commands/push.js';
import { describeRevert } from './commands/revert.js';
import { formatBytes, formatValues, table } from './render.js';

const WORD: Record<RegistryKind, { one: string; many: string; sample: string; sample2: string; path: string }> = {
  model: { one: 'model', many: 'models', sample: 'resnet50', sample2: 'vision/detector', path: 'models/resnet50.safetensors' },
  data: { one: 'dataset', many: 'datasets', sample: 'imagenet', sample2: 'vision/coco', path: 'data/imagenet' },
};

const teamFlag = { team: Flags.string({ description: 'Team: names without a "/" are taken as TEAM/NAME; lists keep only that team.' }) };


function size(type: string, bytes: number, files?: number): string {
  return type === 'dir' ? `${files ?? 0} files, ${formatBytes(bytes)}` : formatBytes(bytes);
}


/** The options every batch command passes to core: names or globs, team, remote, jobs, dry run. */
function batchOptions(kind: RegistryKind, argv: unknown[], f: Record<string, unknown>) {
  return {
    cwd: process.cwd(),
    kind,
    names: argv as string[],
    team: f.team as string | undefined,
    remote: f.remote as string | undefined,
    jobs: f.jobs as number | undefined,
    dryRun: f['dry-run'] as boolean,
  };
}

type CommandClass = typeof BaseCommand & (new (...args: ConstructorParameters<typeof Command>) => BaseCommand);

export function initCommand(kind: RegistryKind): CommandClass {
  const w = WORD[kind];
  return class extends BaseCommand {
    static override summary = `Register a ${w.one} name for a path (in .cpv/registry.yaml).`;
    static override description = `Names the ${w.one} so that upload, download, list, tag, revert and info can refer to it. The path need not exist yet. A name may be namespaced "team/name" (or given with --team); a team's ${w.many} go to the team's remote when one is set with \`cpv team add\`. The registry is committed by \`cpv ${kind} upload\`.`;
    static override examples = [
      `<%= config.bin %> ${kind} init ${w.sample} --path ${w.path}`,
      `<%= config.bin %> ${kind} init ${w.sample2.split('/')[1]} --team ${w.sample2.split('/')[0]} --path ${kind === 'model' ? 'models/detector' : 'data/coco'} --description "${kind === 'model' ? 'object detector' : 'COCO 2017'}"`,
    ];
    static override args = { name: Args.string({ description: `${w.one} name (name or team/name).`, required: true }) };
    static override flags = {
      path: Flags.string({ description: `Path of the ${w.one}, relative to the current directory.`, required: true }),
      description: Flags.string({ description: 'A one-line description.' }),
      ...teamFlag,
      ...dryRunFlag,
    };

    async run() {
      const { args, flags } = await this.parse(this.constructor as CommandClass);
      const r = await artifactInit(await this.repo(), { cwd: process.cwd(), kind, name: args.name as string, path: flags.path as string, team: flags.team as string | undefined, description: flags.description as string | undefined, dryRun: flags['dry-run'] as boolean });
      const verb = r.dryRun ? 'Would register' : r.created ? 'Registered' : 'Already registered:';
      this.say(`${verb} ${w.one} ${r.name} -> ${r.path}`);
      if (!r.dryRun) this.say(`Next: cpv ${kind} upload ${r.name}`);
      return r;
    }
  } as unknown as CommandClass;
}

export function uploadCommand(kind: RegistryKind): CommandClass {
  const w = WORD[kind];
  return class extends BaseCommand {
    static override summary = `Publish a new version of ${w.many}: add, commit, upload, optionally tag.`;
    static override description = `For each named ${w.one}: stores its content in the cache (only changed chunks are new), writes the pointer with --meta, --params and --metrics, commits the pointers with the registry, uploads the content to the cpv remote (the team's remote for team/name), and with --tag creates the version tag NAME@TAG. With --git-push, then pushes the branch and the tags to git (tags only once the remote holds their objects). Names may be globs; without names, every registered ${w.one}.`;
    static override examples = [
      `<%= config.bin %> ${kind} upload ${w.sample}`,
      `<%= config.bin %> ${kind} upload ${w.sample} --tag v2 --params params.yaml --metrics metrics.json --git-push`,
      `<%= config.bin %> ${kind} upload '${w.sample2.split('/')[0]}/*' --meta framework=pytorch --dry-run`,
    ];
    static override strict = false;
    static override args = { names: Args.string({ description: `${w.one} names or globs (default: all).` }) };
    static override flags = {
      tag: Flags.string({ description: 'Also tag each as NAME@TAG.' }),
      message: Flags.string({ char: 'm', description: 'Commit message.' }),
      meta: Flags.string({ description: 'Metadata key=value (repeatable).', multiple: true }),
      ...valueFlags,
      push: Flags.boolean({ description: 'Upload to the cpv remote (--no-push: commit only).', default: true, allowNo: true }),
      'git-push': Flags.boolean({ description: 'Then push the branch and new tags to the git remote.' }),
      'git-remote': Flags.string({ description: 'git remote for --git-push.', default: 'origin' }),
      ...teamFlag,
      ...transferFlags,
      ...dryRunFlag,
    };

    async run() {
      const { argv, flags } = await this.parse(this.constructor as CommandClass);
      const f = flags as Record<string, unknown>;
      const { onProgress, done } = this.progress('upload');
      const r = await artifactUpload(await this.repo(), {
        ...batchOptions(kind, argv, f),
        tag: f.tag as string | undefined,
        message: f.message as string | undefined,
        meta: parseMeta((f.meta as string[] | undefined) ?? []),
        params: await values(f.params as string[] | undefined, 'params'),
        metrics: await values(f.metrics as string[] | undefined, 'metrics'),
        push: f.push as boolean,
        gitPush: f['git-push'] ? (f['git-remote'] as string) : undefined,
        onProgress,
      }).finally(done);
      const dry = r.dryRun;
      this.say(table(r.items.map((i) => [`  ${i.name}`, i.path + (i.type === 'dir' ? '/' : ''), size(i.type, i.size, i.files), shortOid(i.oid), i.status])));
      if (r.committed.length > 0) this.say(`${dry ? 'Would commit' : 'Committed'} ${r.committed.join(', ')}${r.commit ? ` as ${r.commit.slice(0, 7)}` : ''}`);
      if (r.push) this.say(uploadLine(r.push, r.push.remote, dry));
      else if (dry && f.push) this.say(`would upload the new content of ${r.items.filter((i) => i.status !== 'unchanged').length} item(s)`);
      for (const t of r.tags) this.say(`${dry ? 'Would tag' : 'Tagged'} ${t}`);
      if (r.configModified) this.note('note: .cpv/config has uncommitted changes (a new remote or team remote?); commit it so teammates use the same remotes');
      if (r.gitPushed) this.say(`Pushed ${r.gitPushed.refs.join(', ')} to ${r.gitPushed.remote}`);
      else if (!dry) this.say(`Publish with: git push${r.tags.length ? ` && cpv push --tags` : ''} (or pass --git-push)`);
      return r;
    }
  } as unknown as CommandClass;
}

export function downloadCommand(kind: RegistryKind): CommandClass {
  const w = WORD[kind];
  return class extends BaseCommand {
    static override summary = `Bring ${w.many} back, verified: the workspace version, or any version into a directory.`;
    static override description = `Without --version and --out, restores each ${w.one} at its tracked path like \`cpv pull\`. With --version (NAME@VERSION tag, a checkpoint tag, a branch or a commit), fetches that version and writes it to --out (default: the current directory) under its base name, never over a tracked path. Every file is re-hashed before it appears. Names may be globs.`;
    static override examples = [
      `<%= config.bin %> ${kind} download ${w.sample}`,
      `<%= config.bin %> ${kind} download ${w.sample} --version v1 --out /tmp/${w.sample}-v1`,
      `<%= config.bin %> ${kind} download '${w.sample2.split('/')[0]}/*' -j 16`,
    ];
    static override strict = false;
    static override args = { names: Args.string({ description: `${w.one} names or globs.`, required: true }) };
    static override flags = {
      version: Flags.string({ description: 'Version: NAME@VERSION tag, checkpoint tag, branch or commit.' }),
      out: Flags.string({ char: 'o', description: 'Directory to write into.' }),
      force: Flags.boolean({ char: 'f', description: 'Replace an existing output; at the tracked path, discard unsaved changes.' }),
      ...teamFlag,
      ...transferFlags,
      ...dryRunFlag,
    };

    async run() {
      const { argv, flags } = await this.parse(this.constructor as CommandClass);
      const f = flags as Record<string, unknown>;
      const { onProgress, done } = this.progress('download');
      const r = await artifactDownload(await this.repo(), {
        ...batchOptions(kind, argv, f),
        version: f.version as string | undefined,
        out: f.out as string | undefined,
        force: f.force as boolean | undefined,
        onProgress,
      }).finally(done);
      this.say(describeFetch(r.fetch, r.dryRun));
      for (const i of r.items) this.say(`${r.dryRun ? 'would write' : 'wrote'} ${i.name}${i.rev ? ` (${i.rev})` : ''} ${shortOid(i.oid)} -> ${i.dest}`);
      return r;
    }
  } as unknown as CommandClass;
}

export function listCommand(kind: RegistryKind): CommandClass {
  const w = WORD[kind];
  return class extends BaseCommand {
    static override summary = `List registered ${w.many}, or the versions of the named ones.`;
    static override description = `Without names: every registered ${w.one} with its path, current version and the version tags that bind it. With names (or globs): each commit that changed the ${w.one}, newest first, with tags, params and metrics.`;
    static override examples = [`<%= config.bin %> ${kind} list`, `<%= config.bin %> ${kind} list --team ${w.sample2.split('/')[0]}`, `<%= config.bin %> ${kind} list ${w.sample} --json`];
    static override strict = false;
    static override args = { names: Args.string({ description: `${w.one} names or globs.` }) };
    static override flags = { ...teamFlag, 'max-count': Flags.integer({ char: 'n', description: 'At most this many versions per name.', min: 1 }) };

    async run() {
      const { argv, flags } = await this.parse(this.constructor as CommandClass);
      const f = flags as Record<string, unknown>;
      const repo = await this.repo();
      const team = f.team as string | undefined;
      if (argv.length === 0) {
        const items = await artifactList(repo, { kind, team });
        if (items.length === 0) this.say(`No ${w.many} registered${team ? ` for team ${team}` : ''}. Register one with: cpv ${kind} init NAME --path PATH`);
        this.say(table(items.map((i) => [i.name, i.path + (i.type === 'dir' ? '/' : ''), i.tracked ? `${shortOid(i.oid!)}  ${size(i.type!, i.size!, i.files)}` : '(not uploaded)', i.tags.join(' ')])));
        return { items };
      }
      const items = await artifactVersions(repo, { kind, names: argv as string[], team, maxCount: f['max-count'] as number | undefined });
      for (const i of items) {
        this.say(`${w.one} ${i.name} (${i.path})${i.versions.length === 0 ? ': no committed version' : ''}`);
        this.say(table(i.versions.map((v) => [`  ${v.commit.slice(0, 7)}`, v.date.slice(0, 10), shortOid(v.oid), size(v.type, v.size, v.files), v.tags.join(' '), formatValues({ ...v.params, ...v.metrics })])));
      }
      return { items };
    }
  } as unknown as CommandClass;
}

export function tagCommand(kind: RegistryKind): CommandClass {
  const w = WORD[kind];
  return class extends BaseCommand {
    static override summary = `Tag the current version of ${w.many} as NAME@TAG.`;
    static override description = `Creates the version tag NAME@TAG binding the ${w.one} alone (commits its pointer first if needed), so that \`--version TAG\` finds it. To bind a model together with its data, use \`cpv checkpoint create\`. Publish with \`cpv push --tags\`.`;
    static override examples = [`<%= config.bin %> ${kind} tag ${w.sample} v1`, `<%= config.bin %> ${kind} tag ${w.sample} prod-2024-05 -m "promoted" --meta reviewer=ana`];
    static override args = {
      name: Args.string({ description: `${w.one} name or glob.`, required: true }),
      tag: Args.string({ description: 'Version label (the git tag is NAME@TAG).', required: true }),
    };
    static override flags = {
      message: Flags.string({ char: 'm', description: 'Tag message.' }),
      meta: Flags.string({ description: 'Metadata key=value (repeatable).', multiple: true }),
      ...teamFlag,
      ...dryRunFlag,
    };

    async run() {
      const { args, flags } = await this.parse(this.constructor as CommandClass);
      const f = flags as Record<string, unknown>;
      const r = await artifactTag(await this.repo(), {
        cwd: process.cwd(),
        kind,
        names: [args.name as string],
        team: f.team as string | undefined,
        tag: args.tag as string,
        message: f.message as string | undefined,
        meta: parseMeta((f.meta as string[] | undefined) ?? []),
        dryRun: f['dry-run'] as boolean,
      });
      for (const t of r) this.say(`${t.dryRun ? 'Would tag' : 'Tagged'} ${t.commit ? t.commit.slice(0, 7) : 'a new commit'} as ${t.tag}: ${t.artifacts.map((a) => `${a.path} ${shortOid(a.oid)}`).join(', ')}`);
      if (!r[0]?.dryRun) this.say('Publish with: cpv push --tags');
      return { tags: r };
    }
  } as unknown as CommandClass;
}

export function revertCommand(kind: RegistryKind): CommandClass {
  const w = WORD[kind];
  return class extends BaseCommand {
    static override summary = `Bring ${w.many} back to an earlier version, as a new commit.`;
    static override description = `Restores the pointer of NAME@TO (or of revision TO: a checkpoint tag, branch, commit), commits it on top of the current branch (history is never rewritten) and checks the content out, fetching what the cache lacks.`;
    static override examples = [`<%= config.bin %> ${kind} revert ${w.sample} --to v1`, `<%= config.bin %> ${kind} revert '${w.sample2.split('/')[0]}/*' --to HEAD~3 --dry-run`];
    static override strict = false;
    static override args = { names: Args.string({ description: `${w.one} names or globs.`, required: true }) };
    static override flags = {
      to: Flags.string({ description: 'Version: NAME@TO tag, or any revision.', required: true }),
      message: Flags.string({ char: 'm', description: 'Commit message.' }),
      force: Flags.boolean({ char: 'f', description: 'Overwrite uncommitted pointer edits and unsaved workspace data.' }),
      ...teamFlag,
      ...transferFlags,
      ...dryRunFlag,
    };

    async run() {
      const { argv, flags } = await this.parse(this.constructor as CommandClass);
      const f = flags as Record<string, unknown>;
      const { onProgress, done } = this.progress('revert');
      const dry = f['dry-run'] as boolean;
      const r = await artifactRevert(await this.repo(), {
        ...batchOptions(kind, argv, f),
        to: f.to as string,
        message: f.message as string | undefined,
        force: f.force as boolean | undefined,
        onProgress,
      }).finally(done);
      for (const one of r) for (const line of describeRevert(one, dry)) this.say(line);
      return { reverts: r };
    }
  } as unknown as CommandClass;
}

export function infoCommand(kind: RegistryKind): CommandClass {
  const w = WORD[kind];
  return class extends BaseCommand {
    static override summary = `Show one version of a ${w.one}: content, metadata, params, metrics, tags, lineage.`;
    static override description = `Shows the ${w.one} as recorded at --version (NAME@VERSION tag, checkpoint tag, branch, commit; default HEAD): its oid and size, metadata, params and metrics, the version tags that bind it, and what those tags bind with it (for a model: the data it was trained on).`;
    static override examples = [`<%= config.bin %> ${kind} info ${w.sample}`, `<%= config.bin %> ${kind} info ${w.sample} --version v1 --json`];
    static override args = { name: Args.string({ description: `${w.one} name.`, required: true }) };
    static override flags = { version: Flags.string({ description: 'Version (default: HEAD).' }), ...teamFlag };

    async run() {
      const { args, flags } = await this.parse(this.constructor as CommandClass);
      const f = flags as Record<string, unknown>;
      const r = await artifactInfo(await this.repo(), { kind, name: args.name as string, team: f.team as string | undefined, version: f.version as string | undefined });
      const p = r.pointer;
      const rows: string[][] = [
        [w.one, r.name],
        ['path', r.path + (p.type === 'dir' ? '/' : '')],
        ['version', `${r.version ?? 'HEAD'} (${r.commit.slice(0, 7)})`],
        ['oid', p.oid],
        ['size', size(p.type, p.size, p.files)],
      ];
      if (r.description) rows.push(['description', r.description]);
      if (r.remote) rows.push(['remote', r.remote]);
      for (const [label, o] of [['meta', p.meta], ['params', p.params], ['metrics', p.metrics]] as const) if (o) rows.push([label, formatValues(o)]);
      rows.push(['tags', r.tags.join(' ') || '(none)']);
      for (const b of r.boundWith) rows.push([`with (${b.tag})`, `${b.kind} ${b.name} ${shortOid(b.oid)}`]);
      this.say(table(rows));
      return r;
    }
  } as unknown as CommandClass;
}
