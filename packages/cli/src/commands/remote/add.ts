import { Args, Flags } from '@oclif/core';
import { remoteAdd } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../../base.js';

export default class RemoteAdd extends BaseCommand {
  static override summary = 'Register a remote: s3://bucket/prefix, a directory path or a file:// URL.';
  static override description = 'S3 credentials come from the AWS default chain (environment, ~/.aws profiles, SSO, instance metadata). Explicit keys go only to .cpv/config.local: see `cpv remote modify` and `cpv aws-config`.';
  static override examples = [
    '<%= config.bin %> remote add origin s3://ml-artifacts/team-a --default',
    '<%= config.bin %> remote add ceph s3://models --endpoint http://ceph.internal:7480 --profile ceph',
    '<%= config.bin %> remote add origin /mnt/team/cpv --default',
    '<%= config.bin %> remote add backup file:///srv/cpv',
  ];
  static override args = {
    name: Args.string({ required: true, description: 'Remote name.' }),
    url: Args.string({ required: true, description: 's3://bucket/prefix, directory path or file:// URL.' }),
  };
  static override flags = {
    default: Flags.boolean({ char: 'd', description: 'Make it the default remote.' }),
    local: Flags.boolean({ description: 'Write to .cpv/config.local (not committed).' }),
    force: Flags.boolean({ char: 'f', description: 'Replace a remote of the same name.' }),
    endpoint: Flags.string({ description: 'S3-compatible endpoint URL (MinIO, Ceph, R2, Wasabi, Swift…).' }),
    region: Flags.string({ description: 'AWS region.' }),
    profile: Flags.string({ description: 'AWS profile for credentials.' }),
    'path-style': Flags.boolean({ description: 'Path-style S3 addressing (default with --endpoint).', allowNo: true }),
    'storage-class': Flags.string({ description: 'S3 storage class for new objects.' }),
    sse: Flags.string({ description: 'Server-side encryption.', options: ['AES256', 'aws:kms'] }),
    ...dryRunFlag,
  };

  async run() {
    const { args, flags } = await this.parse(RemoteAdd);
    const options = {
      endpoint: flags.endpoint,
      region: flags.region,
      profile: flags.profile,
      path_style: flags['path-style'] === undefined ? undefined : String(flags['path-style']),
      storage_class: flags['storage-class'],
      sse: flags.sse,
    };
    const r = await remoteAdd(await this.repo(), args.name, args.url, { makeDefault: flags.default, local: flags.local, force: flags.force, dryRun: flags['dry-run'], options });
    this.say(`${flags['dry-run'] ? 'Would add' : 'Added'} remote ${r.name} -> ${r.url}${r.default ? ' (default)' : ''}`);
    return r;
  }
}
