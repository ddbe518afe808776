import { ConfigError } from '../errors.js';
import { validateKey } from './validate-key.js';

/**
 * Parse `s3://bucket/prefix` into the bucket and a normalized key prefix ('' or ending
 * in '/'). Throws ConfigError for anything else. Pure; loads no SDK.
 */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) throw new ConfigError(`not an S3 URL: ${JSON.stringify(url)}`, { hint: 'use s3://bucket or s3://bucket/prefix' });
  const bucket = m[1]!;
  if (!/^[a-z0-9][a-z0-9.\-_]{1,254}$/i.test(bucket)) throw new ConfigError(`invalid bucket name ${JSON.stringify(bucket)} in ${url}`);
  const prefix = (m[2] ?? '').replace(/\/+$/, '');
  if (prefix !== '') {
    try {
      validateKey(prefix);
    } catch {
      throw new ConfigError(`invalid prefix ${JSON.stringify(prefix)} in ${url}`, { hint: 'use a prefix without empty, "." or ".." components' });
    }
  }
  return { bucket, prefix: prefix === '' ? '' : prefix + '/' };
}
