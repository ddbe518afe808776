import { Flags } from '@oclif/core';
import { doctor, remoteAdd, UsageError } from '@cpv/core';
import { BaseCommand, dryRunFlag } from '../base.js';
import { ask, canPrompt } from '../prompt.js';

export default class AwsConfig extends BaseCommand {
  static override summary = 'Set up an S3 (or S3-compatible) remote, then check that it works.';
  static override description =
    'Interactive when run in a terminal: asks for the bucket, prefix, region, endpoint and credentials (a profile, the default AWS chain, or an access key pair, which is stored only in the git-ignored .cpv/config.local). Scriptable with flags otherwise. Finishes with the same checks as `cpv doctor` on the new remote.';
  static override examples = [
    '<%= config.bin %> aws-config',
    '<%= config.bin %> aws-config --bucket ml-artifacts --prefix team-a --region eu-west-1 --profile ml',
    '<%= config.bin %> aws-config --name ceph --bucket models --endpoint http://ceph.internal:7480 --access-key-id AKIA... --secret-access-key ...',
  ];
  static override flags = {
    name: Flags.string({ description: 'Remote name.', default: 'origin' }),
    bucket: Flags.string({ description: 'Bucket name.' }),
    prefix: Flags.string({ description: 'Key prefix inside the bucket.' }),
    region: Flags.string({ description: 'AWS region.' }),
    endpoint: Flags.string({ description: 'S3-compatible endpoint URL (leave out for AWS).' }),
    profile: Flags.string({ description: 'AWS profile (from ~/.aws/config and ~/.aws/credentials).' }),
    'access-key-id': Flags.string({ description: 'Access key id (stored in .cpv/config.local).' }),
    'secret-access-key': Flags.string({ description: 'Secret access key (stored in .cpv/config.local).' }),
    default: Flags.boolean({ description: 'Make it the default remote.', default: true, allowNo: true }),
    force: Flags.boolean({ char: 'f', description: 'Replace a remote of the same name.' }),
    verify: Flags.boolean({ description: 'Check the remote after writing it.', default: true, allowNo: true }),
    ...dryRunFlag,
  };

  async run() {
    const { flags } = await this.parse(AwsConfig);
    const interactive = canPrompt() && !this.jsonEnabled() && flags.bucket === undefined;
    let { bucket, prefix, region, endpoint, profile } = flags;
    let accessKeyId = flags['access-key-id'];
    let secret = flags['secret-access-key'];
    if (interactive) {
      bucket = await ask('S3 bucket');
      prefix = await ask('Prefix inside the bucket (empty for none)', { default: prefix ?? '' });
      endpoint = (await ask('Endpoint URL for S3-compatible stores (empty for AWS)', { default: endpoint ?? '' })) || undefined;
      region = await ask('Region', { default: region ?? 'us-east-1' });
      const how = await ask('Credentials: (p)rofile, (k)eys, or (d)efault AWS chain', { default: 'd' });
      if (how.startsWith('p')) profile = await ask('Profile name', { default: profile ?? 'default' });
      if (how.startsWith('k')) {
        accessKeyId = await ask('Access key id');
        secret = await ask('Secret access key', { secret: true });
      }
    }
    if (!bucket) throw new UsageError('no bucket given', { hint: 'pass --bucket NAME, or run `cpv aws-config` in a terminal to be asked' });
    if ((accessKeyId === undefined) !== (secret === undefined)) throw new UsageError('give both --access-key-id and --secret-access-key, or neither');
    const url = `s3://${bucket}${prefix ? `/${prefix.replace(/^\/+|\/+$/g, '')}` : ''}`;
    let repo = await this.repo();
    const dryRun = flags['dry-run'];
    await remoteAdd(repo, flags.name, url, {
      makeDefault: flags.default,
      force: flags.force,
      dryRun,
      options: { endpoint, region, profile, ...(accessKeyId ? { access_key_id: accessKeyId, secret_access_key: secret } : {}) },
    });
    this.say(`${dryRun ? 'Would write' : 'Wrote'} remote ${flags.name} -> ${url}${endpoint ? ` at ${endpoint}` : ''}${accessKeyId ? ' (keys in .cpv/config.local)' : ''}`);
    if (dryRun || !flags.verify) return { name: flags.name, url, verified: false };
    repo = await this.repo(); // re-read: the remote is now configured
    const r = await doctor(repo, {
      remotes: [flags.name],
      git: false,
      onCheck: (c) => this.say(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.check}: ${c.detail}${!c.ok && c.hint ? `\n        hint: ${c.hint}` : ''}`),
    });
    if (!r.ok) {
      process.exitCode = 1;
      this.note(`the remote was saved, but it does not work yet; fix it with \`cpv remote modify ${flags.name} KEY VALUE\` and run \`cpv doctor\``);
    }
    return { name: flags.name, url, verified: r.ok, checks: r.checks };
  }
}
