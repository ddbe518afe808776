import { Args } from '@oclif/core';
import { fetch } from '@cpv/core';
import { BaseCommand, dryRunFlag, transferFlags } from '../base.js';
import { formatBytes } from '../render.js';

export default class Fetch extends BaseCommand {
  static override summary = 'Download tracked content from a remote into the cache (the workspace is not touched).';
  static override examples = ['<%= config.bin %> fetch', '<%= config.bin %> fetch data/ -r origin'];
  static override strict = false;
  static override args = { targets: Args.string({ description: 'Tracked paths or pointer files (default: all).' }) };
  static override flags = { ...transferFlags, ...dryRunFlag };

  async run() {
    const { argv, flags } = await this.parse(Fetch);
    const { onProgress, done } = this.progress('fetch');
    const r = await fetch(await this.repo(), { cwd: process.cwd(), targets: argv as string[], remote: flags.remote, jobs: flags.jobs, dryRun: flags['dry-run'], onProgress }).finally(done);
    this.say(describeFetch(r, flags['dry-run'] ?? false));
    return r;
  }
}

export function describeFetch(r: { remote: string; files: number; bytes: number; reusedBytes: number; requests: number }, dry: boolean): string {
  if (r.files === 0) return `Cache already has everything (remote ${r.remote}).`;
  return `${dry ? 'would fetch' : 'fetched'} ${r.files} file(s) from ${r.remote}: ${formatBytes(r.bytes)} downloaded in ${r.requests} request(s)` + (r.reusedBytes > 0 ? `, ${formatBytes(r.reusedBytes)} reused from the cache` : '');
}
