import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type PutObjectCommandInput,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { ConfigError, ConflictError, CpvError, NotFoundError, RemoteError, UsageError } from '../errors.js';
import type { Backend, LoadOptions, ObjectInfo, OpOptions, SaveOptions } from './backend.js';
import { checkCount, validateKey, validateListPrefix } from './validate-key.js';

/** Everything that configures an S3 remote (docs/format.md, "S3 remotes"). */
export interface S3Options {
  bucket: string;
  /** Key prefix inside the bucket: '' or ending in '/'. */
  prefix: string;
  /** Custom endpoint (MinIO, Ceph, R2, Wasabi, Swift…); AWS when undefined. */
  endpoint?: string;
  region?: string;
  /** Shared-config profile for the AWS default credential chain. */
  profile?: string;
  /** Path-style addressing (default: true with a custom endpoint). */
  pathStyle?: boolean;
  /** Explicit keys (only ever from `.cpv/config.local` or the environment). */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Parallel requests; sizes the connection pool. */
  jobs?: number;
  storageClass?: string;
  /** Server-side encryption: AES256 or aws:kms. */
  sse?: string;
  sseKmsKeyId?: string;
  /** Objects above this are uploaded in parts (default 64 MiB). */
  multipartThreshold?: number;
  partSize?: number;
  /** SDK attempts per request (retries with backoff and jitter for 5xx, throttling, resets). */
  maxAttempts?: number;
  /** Milliseconds without progress before a request fails (and is retried). */
  requestTimeout?: number;
}

export { parseS3Url } from './s3-url.js';

const MiB = 1024 * 1024;

/**
 * A Backend over an S3 bucket (or any S3-compatible store), under a key prefix.
 * Implements the same contract as the directory backend and passes the same
 * conformance suite. Request and response checksums are computed only when required:
 * the SDK's default streams bodies as aws-chunked, which Ceph, Swift and others
 * reject or store corrupted; cpv verifies every byte itself. Bodies are always sent
 * as buffers (packs are tens of MiB), parts of at most `partSize` for large objects.
 */
export class S3Backend implements Backend {
  readonly location: string;
  readonly #client: S3Client;
  readonly #opts: S3Options;
  /** Whether the server enforces `If-None-Match: *`; unknown until the first try. */
  #conditional: boolean | undefined;
  #closed = false;

  constructor(opts: S3Options) {
    this.#opts = opts;
    this.location = `s3://${opts.bucket}/${opts.prefix}${opts.endpoint ? ` at ${opts.endpoint}` : ''}`;
    const jobs = opts.jobs ?? 8;
    const agent = { keepAlive: true, maxSockets: jobs * 2 };
    const config: S3ClientConfig = {
      region: opts.region ?? 'us-east-1',
      forcePathStyle: opts.pathStyle ?? opts.endpoint !== undefined,
      maxAttempts: opts.maxAttempts ?? 5,
      retryMode: 'standard',
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: new NodeHttpHandler({
        httpAgent: new HttpAgent(agent),
        httpsAgent: new HttpsAgent(agent),
        connectionTimeout: 10_000,
        // An inactivity timeout on the socket: a stalled request fails with a
        // TimeoutError, which is retried. (The handler's `requestTimeout` only logs a
        // warning unless told to throw, and would bound whole transfers anyway.)
        socketTimeout: opts.requestTimeout ?? 120_000,
      }),
    };
    if (opts.endpoint) config.endpoint = opts.endpoint;
    if (opts.accessKeyId && opts.secretAccessKey) {
      config.credentials = { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey, ...(opts.sessionToken ? { sessionToken: opts.sessionToken } : {}) };
    } else {
      config.credentials = defaultProvider(opts.profile ? { profile: opts.profile } : {});
    }
    this.#client = new S3Client(config);
  }

  /** The underlying client (for the doctor's permission probes). */
  get client(): S3Client {
    return this.#client;
  }

  get bucket(): string {
    return this.#opts.bucket;
  }

  #key(key: string): string {
    if (this.#closed) throw new UsageError(`backend ${this.location} is closed`);
    validateKey(key);
    return this.#opts.prefix + key;
  }

  #extra(): Partial<PutObjectCommandInput> {
    const o = this.#opts;
    const extra: Partial<PutObjectCommandInput> = {};
    if (o.storageClass) extra.StorageClass = o.storageClass as PutObjectCommandInput['StorageClass'];
    if (o.sse) extra.ServerSideEncryption = o.sse as PutObjectCommandInput['ServerSideEncryption'];
    if (o.sseKmsKeyId) extra.SSEKMSKeyId = o.sseKmsKeyId;
    return extra;
  }

  async save(key: string, data: Uint8Array | AsyncIterable<Uint8Array>, opts: SaveOptions = {}): Promise<void> {
    const full = this.#key(key);
    opts.signal?.throwIfAborted();
    const threshold = this.#opts.multipartThreshold ?? 64 * MiB;
    const partSize = Math.max(5 * MiB, this.#opts.partSize ?? 16 * MiB);
    // Gather the body; switch to a multipart upload once it passes the threshold, so
    // memory stays bounded by one part for sources of any size.
    let parts: Uint8Array[] = [];
    let buffered = 0;
    let upload: Multipart | undefined;
    try {
      const pieces = data instanceof Uint8Array ? [data] : data;
      for await (const piece of pieces) {
        opts.signal?.throwIfAborted();
        parts.push(piece);
        buffered += piece.length;
        if (!upload && buffered > threshold) {
          if (opts.ifNoneMatch && (await this.exists(key, opts))) throw this.#conflict(key);
          upload = await this.#startMultipart(full, opts.signal);
        }
        while (upload && buffered >= partSize) {
          const body = Buffer.concat(parts);
          await upload.put(body.subarray(0, partSize));
          const rest = body.subarray(partSize);
          parts = rest.length > 0 ? [rest] : [];
          buffered = rest.length;
        }
      }
      opts.signal?.throwIfAborted();
      if (upload) {
        if (buffered > 0) await upload.put(Buffer.concat(parts));
        await upload.complete();
        upload = undefined;
        return;
      }
      const only = parts.length === 1 ? parts[0]! : undefined;
      await this.#put(key, full, only ? Buffer.from(only.buffer, only.byteOffset, only.byteLength) : Buffer.concat(parts), opts);
    } catch (err) {
      if (upload) await upload.abort();
      throw err;
    }
  }

  async #put(key: string, full: string, body: Buffer, opts: SaveOptions): Promise<void> {
    const input: PutObjectCommandInput = { Bucket: this.#opts.bucket, Key: full, Body: body, ContentLength: body.length, ...this.#extra() };
    if (opts.ifNoneMatch && this.#conditional === false && (await this.exists(key, opts))) throw this.#conflict(key);
    if (opts.ifNoneMatch && this.#conditional !== false) input.IfNoneMatch = '*';
    try {
      await this.#client.send(new PutObjectCommand(input), { abortSignal: opts.signal });
      if (opts.ifNoneMatch) this.#conditional = true;
    } catch (err) {
      const status = statusOf(err);
      if (opts.ifNoneMatch && status === 412) {
        this.#conditional = true;
        throw this.#conflict(key);
      }
      if (opts.ifNoneMatch && (status === 501 || nameOf(err) === 'NotImplemented')) {
        // Swift and some others do not do conditional PUTs: check, then put. Another
        // writer can slip in between; for content-addressed objects both are identical.
        this.#conditional = false;
        return this.#put(key, full, body, opts);
      }
      throw this.#mapError('save', key, err);
    }
  }

  async #startMultipart(full: string, signal?: AbortSignal): Promise<Multipart> {
    const bucket = this.#opts.bucket;
    const client = this.#client;
    let created;
    try {
      created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: full, ...this.#extra() }), { abortSignal: signal });
    } catch (err) {
      throw this.#mapError('save', full, err);
    }
    const uploadId = created.UploadId!;
    const done: Array<{ ETag: string; PartNumber: number }> = [];
    let total = 0;
    return {
      put: async (body) => {
        const PartNumber = done.length + 1;
        try {
          const r = await client.send(new UploadPartCommand({ Bucket: bucket, Key: full, UploadId: uploadId, PartNumber, Body: body, ContentLength: body.length }), { abortSignal: signal });
          done.push({ ETag: r.ETag!, PartNumber });
          total += body.length;
        } catch (err) {
          throw this.#mapError('save', full, err);
        }
      },
      complete: async () => {
        try {
          await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: full, UploadId: uploadId, MultipartUpload: { Parts: done } }), { abortSignal: signal });
          // Never trust the ETag of CompleteMultipartUpload (radosgw sends an empty one):
          // check what the server says it stored.
          const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: full }), { abortSignal: signal });
          if (head.ContentLength !== total) throw new RemoteError(`${this.location}: ${full} has ${head.ContentLength} bytes after upload, expected ${total}`);
        } catch (err) {
          if (err instanceof CpvError) throw err;
          throw this.#mapError('save', full, err);
        }
      },
      abort: async () => {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: full, UploadId: uploadId })).catch(() => undefined);
      },
    };
  }

  async load(key: string, opts: LoadOptions = {}): Promise<Uint8Array> {
    const full = this.#key(key);
    const offset = opts.offset ?? 0;
    checkCount('offset', offset);
    if (opts.length !== undefined) checkCount('length', opts.length);
    opts.signal?.throwIfAborted();
    if (opts.length === 0) {
      await this.stat(key, opts); // still NotFoundError for a missing object
      return new Uint8Array(0);
    }
    const range = offset > 0 || opts.length !== undefined ? `bytes=${offset}-${opts.length !== undefined ? offset + opts.length - 1 : ''}` : undefined;
    // The SDK retries requests; a connection that breaks while the body streams is
    // retried here.
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await this.#client.send(new GetObjectCommand({ Bucket: this.#opts.bucket, Key: full, ...(range ? { Range: range } : {}) }), { abortSignal: opts.signal });
        const expected = r.ContentLength;
        const bytes = r.Body ? await readBody(r.Body as unknown as AsyncIterable<Uint8Array>, expected, opts.into) : new Uint8Array(0);
        if (expected !== undefined && bytes.length !== expected) throw Object.assign(new Error(`short body: ${bytes.length} of ${expected} bytes`), { code: 'ECONNRESET' });
        return bytes;
      } catch (err) {
        if (statusOf(err) === 416) {
          // Range past the end (or an empty object): the bytes that exist are none.
          await this.stat(key, opts);
          return new Uint8Array(0);
        }
        if (attempt < 3 && isTransient(err) && !opts.signal?.aborted) {
          await sleep(200 * 2 ** attempt * (0.5 + Math.random()));
          continue;
        }
        throw this.#mapError('load', key, err);
      }
    }
  }

  async stat(key: string, opts: OpOptions = {}): Promise<ObjectInfo> {
    const full = this.#key(key);
    opts.signal?.throwIfAborted();
    try {
      const r = await this.#client.send(new HeadObjectCommand({ Bucket: this.#opts.bucket, Key: full }), { abortSignal: opts.signal });
      return { key, size: r.ContentLength ?? 0, mtimeMs: r.LastModified?.getTime() ?? 0 };
    } catch (err) {
      throw this.#mapError('stat', key, err);
    }
  }

  async exists(key: string, opts: OpOptions = {}): Promise<boolean> {
    try {
      await this.stat(key, opts);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  async *list(prefix: string, opts: OpOptions = {}): AsyncIterable<ObjectInfo> {
    if (this.#closed) throw new UsageError(`backend ${this.location} is closed`);
    validateListPrefix(prefix);
    const base = this.#opts.prefix;
    let token: string | undefined;
    do {
      opts.signal?.throwIfAborted();
      let r;
      try {
        r = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.#opts.bucket, Prefix: base + prefix, ...(token ? { ContinuationToken: token } : {}) }),
          { abortSignal: opts.signal },
        );
      } catch (err) {
        throw this.#mapError('list', prefix, err);
      }
      for (const o of r.Contents ?? []) {
        if (!o.Key || !o.Key.startsWith(base)) continue;
        yield { key: o.Key.slice(base.length), size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 };
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  async remove(key: string, opts: OpOptions = {}): Promise<void> {
    const full = this.#key(key);
    opts.signal?.throwIfAborted();
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#opts.bucket, Key: full }), { abortSignal: opts.signal });
    } catch (err) {
      const e = this.#mapError('remove', key, err);
      if (e instanceof NotFoundError) return; // idempotent
      throw e;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
  }

  #conflict(key: string): ConflictError {
    return new ConflictError(`${key} already exists on ${this.location}`, { data: { key, location: this.location } });
  }

  /** Turn an SDK or network error into a CpvError that says what to do. */
  #mapError(op: string, key: string, err: unknown): Error {
    if (err instanceof CpvError) return err;
    if ((err as Error)?.name === 'AbortError' || (err as { name?: string })?.name === 'AbortError') return err as Error;
    const name = nameOf(err);
    const status = statusOf(err);
    const where = `${this.location}`;
    const data = { key, location: where, op, status, code: name };
    const message = (err as Error)?.message ?? String(err);
    if (name === 'NoSuchBucket') {
      return new RemoteError(`bucket "${this.#opts.bucket}" does not exist (${where})`, { hint: 'create the bucket, or fix the URL with `cpv remote modify NAME url s3://BUCKET/PREFIX`', cause: err, data });
    }
    if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
      return new NotFoundError(`${key} is not on ${where}`, { cause: err, data });
    }
    if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
      return new ConfigError(`no AWS credentials found for ${where}`, { hint: 'run `cpv aws-config`, set AWS_PROFILE / AWS_ACCESS_KEY_ID, or put keys in .cpv/config.local', cause: err, data });
    }
    if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'InvalidToken' || name === 'ExpiredToken') {
      return new RemoteError(`${where} rejected the credentials (${name})`, { hint: 'check the access key and secret (`cpv doctor` tests them)', cause: err, data });
    }
    if (name === 'AccessDenied' || status === 403) {
      return new RemoteError(`access denied: ${op} ${key} on ${where}`, { hint: `the credentials lack permission to ${op}; \`cpv doctor\` lists which permissions work`, cause: err, data });
    }
    const net = (err as { code?: string })?.code ?? name;
    if (net === 'ECONNREFUSED' || net === 'ENOTFOUND' || net === 'EAI_AGAIN' || net === 'ECONNRESET' || net === 'ETIMEDOUT' || name === 'TimeoutError') {
      return new RemoteError(`cannot reach ${where}: ${message}`, { hint: 'check the endpoint and your network; an interrupted push or pull resumes when run again', cause: err, data });
    }
    if ((name === 'InvalidArgument' || name === 'InvalidRequest' || name === 'InvalidStorageClass') && op === 'save' && (this.#opts.storageClass || this.#opts.sse)) {
      return new RemoteError(`${where} rejected the upload of ${key} (${name}): it does not accept storage class ${this.#opts.storageClass ?? '(default)'} / encryption ${this.#opts.sse ?? '(none)'}`, {
        hint: 'change or unset `storage_class` / `sse` with `cpv remote modify NAME KEY VALUE` (or --unset)',
        cause: err,
        data,
      });
    }
    return new RemoteError(`${op} ${key} on ${where} failed: ${name ?? ''} ${message}`.trim(), { hint: 'run the command again; `cpv doctor` checks the remote', cause: err, data });
  }
}

interface Multipart {
  put(body: Uint8Array): Promise<void>;
  complete(): Promise<void>;
  abort(): Promise<void>;
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function nameOf(err: unknown): string | undefined {
  return (err as { name?: string; Code?: string })?.Code ?? (err as { name?: string })?.name;
}

function isTransient(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  const status = statusOf(err);
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || nameOf(err) === 'TimeoutError' || (status !== undefined && status >= 500);
}

/**
 * Gather a response body. With a known length it is copied once, as it streams, into
 * `into` when it fits, else into a buffer of that size (the SDK's own helper gathers
 * the pieces and then copies them all again, holding the body twice).
 */
async function readBody(body: AsyncIterable<Uint8Array>, expected: number | undefined, into: Uint8Array | undefined): Promise<Uint8Array> {
  if (expected === undefined) {
    const pieces: Uint8Array[] = [];
    for await (const piece of body) pieces.push(piece);
    return Buffer.concat(pieces);
  }
  const out = into && into.length >= expected ? into.subarray(0, expected) : Buffer.allocUnsafe(expected);
  let n = 0;
  for await (const piece of body) {
    if (n + piece.length > expected) throw Object.assign(new Error(`long body: more than ${expected} bytes`), { code: 'ECONNRESET' });
    out.set(piece, n);
    n += piece.length;
  }
  return n === expected ? out : out.subarray(0, n);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
