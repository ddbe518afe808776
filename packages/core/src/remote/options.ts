import { ConfigError } from '../errors.js';
import type { RemoteConfig } from '../config/config.js';

/** A per-remote option: its config key, what it means, whether it is a secret. */
export interface RemoteOption {
  key: string;
  description: string;
  /** Secrets may live only in `.cpv/config.local` (git-ignored) or the user config. */
  secret?: boolean;
  /** Value type; strings unless stated. */
  type?: 'boolean' | 'integer';
  /** URL schemes the option applies to. */
  schemes: Array<'s3' | 'dir'>;
}

/** Every option a remote accepts besides `url`. */
export const REMOTE_OPTIONS: readonly RemoteOption[] = [
  { key: 'endpoint', description: 'S3-compatible endpoint URL (MinIO, Ceph, R2, Wasabi, Swift…)', schemes: ['s3'] },
  { key: 'region', description: 'AWS region (default us-east-1)', schemes: ['s3'] },
  { key: 'profile', description: 'profile in ~/.aws/config and ~/.aws/credentials', schemes: ['s3'] },
  { key: 'path_style', description: 'path-style addressing (default true with a custom endpoint)', type: 'boolean', schemes: ['s3'] },
  { key: 'jobs', description: 'parallel requests for this remote', type: 'integer', schemes: ['s3', 'dir'] },
  { key: 'storage_class', description: 'S3 storage class for new objects (e.g. STANDARD_IA)', schemes: ['s3'] },
  { key: 'sse', description: 'server-side encryption: AES256 or aws:kms', schemes: ['s3'] },
  { key: 'sse_kms_key_id', description: 'KMS key id for sse=aws:kms', schemes: ['s3'] },
  { key: 'timeout', description: 'seconds an S3 request may go without progress before it is retried (default 120)', type: 'integer', schemes: ['s3'] },
  { key: 'access_key_id', description: 'explicit access key id', secret: true, schemes: ['s3'] },
  { key: 'secret_access_key', description: 'explicit secret access key', secret: true, schemes: ['s3'] },
  { key: 'session_token', description: 'session token for temporary credentials', secret: true, schemes: ['s3'] },
];

const BY_KEY = new Map(REMOTE_OPTIONS.map((o) => [o.key, o]));

/** The scheme of a remote URL. */
export function schemeOf(url: string): 's3' | 'dir' {
  return /^s3:\/\//i.test(url) ? 's3' : 'dir';
}

/**
 * Parse a user-given option value for `key` on a remote with `url`. Throws ConfigError
 * for an unknown key, a key that does not apply to the scheme, or a bad value.
 */
export function parseRemoteOption(url: string, key: string, value: string): string | number | boolean {
  const opt = remoteOption(url, key);
  if (opt.type === 'boolean') {
    if (value !== 'true' && value !== 'false') throw new ConfigError(`${key} must be true or false, got ${JSON.stringify(value)}`);
    return value === 'true';
  }
  if (opt.type === 'integer') {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new ConfigError(`${key} must be an integer from 1 to 256, got ${JSON.stringify(value)}`);
    return n;
  }
  if (key === 'endpoint' && !/^https?:\/\/[^/\s]+/.test(value)) throw new ConfigError(`endpoint must be an http:// or https:// URL, got ${JSON.stringify(value)}`);
  if (key === 'sse' && value !== 'AES256' && value !== 'aws:kms') throw new ConfigError(`sse must be AES256 or aws:kms, got ${JSON.stringify(value)}`);
  return value;
}

/** The option `key` for a remote with `url`. Throws ConfigError if unknown or not for this scheme. */
export function remoteOption(url: string, key: string): RemoteOption {
  const opt = BY_KEY.get(key);
  if (!opt) throw new ConfigError(`unknown remote option "${key}"`, { hint: `options: url, ${REMOTE_OPTIONS.map((o) => o.key).join(', ')}` });
  const scheme = schemeOf(url);
  if (!opt.schemes.includes(scheme)) throw new ConfigError(`option "${key}" does not apply to ${scheme === 's3' ? 'S3' : 'directory'} remotes`);
  return opt;
}

/** Whether `key` names a secret. */
export function isSecretOption(key: string): boolean {
  return BY_KEY.get(key)?.secret === true;
}

/**
 * Throw ConfigError if a committed config file holds secrets: credentials must never
 * reach git. `path` names the file in the message.
 */
export function assertNoSecrets(remotes: Record<string, RemoteConfig> | undefined, path: string): void {
  for (const [name, r] of Object.entries(remotes ?? {})) {
    for (const key of Object.keys(r ?? {})) {
      if (isSecretOption(key)) {
        throw new ConfigError(`${path} holds ${key} for remote "${name}", but it is committed to git`, {
          hint: `move it to .cpv/config.local (git-ignored): \`cpv remote modify ${name} ${key} VALUE --local\`, remove it from ${path}, and rotate the key if it was ever pushed`,
        });
      }
    }
  }
}

/** The backend options of a configured remote, with unknown keys rejected. */
export function remoteSettings(name: string, cfg: RemoteConfig): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(cfg)) {
    if (key === 'url') continue;
    const opt = BY_KEY.get(key);
    if (!opt) throw new ConfigError(`remote "${name}" has an unknown option "${key}"`, { hint: `options: url, ${REMOTE_OPTIONS.map((o) => o.key).join(', ')}` });
    out[key] = value;
  }
  return out;
}
