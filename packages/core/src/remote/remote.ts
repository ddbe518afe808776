import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import type { Backend } from '../backend/backend.js';
import { DirectoryBackend, directoryFromUrl } from '../backend/directory.js';
import { ConfigError, FormatError, IntegrityError, NotFoundError } from '../errors.js';
import type { RemoteConfig, RepoConfig } from '../config/config.js';
import { blake3Hex } from '../hash/blake3.js';
import type { Cache } from '../store/cache.js';
import {
  assembleManifest,
  INLINE_MANIFEST_MAX_CHUNKS,
  manifestRoot,
  parseManifestPage,
  parseRemoteManifest,
  parseRemoteTreeIndex,
  serializeObject,
  splitPages,
  type InlineManifest,
  type ManifestPage,
  type ManifestRoot,
  type RemoteManifest,
  type RemoteTreeIndex,
} from '../store/manifest.js';
import { parseTree, type TreeEntry } from '../store/tree.js';
import { writeAtomic } from '../util/fs-atomic.js';
import { remoteSettings, schemeOf } from './options.js';
import { walkFanout } from '../util/fanout-walk.js';
import { fanout, isHexOid, oidHex, shortOid, toFileOid } from '../util/oid.js';

const REMOTE_MARKER = 'cpv-remote.json';
const REMOTE_MARKER_BODY = JSON.stringify({ format: 'cpv-remote', version: 1 }) + '\n';
/** Pages of one manifest read, or asked about, at once (unless the caller limits it). */
const PAGE_JOBS = 8;

/** Where a chunk lives on a remote. */
export interface ChunkLocation {
  pack: string;
  offset: number;
  length: number;
}

/** Backend keys of the remote layout (docs/format.md, "Remote layout"). */
export const remoteKeys = {
  pack: (packOid: string): string => `packs/${fanout(packOid)}`,
  manifest: (oid: string): string => `manifests/${fanout(oidHex(oid))}`,
  page: (pageOid: string): string => `pages/${fanout(pageOid)}`,
  tree: (oid: string): string => `trees/${fanout(oidHex(oid))}`,
};

/** Stable id of a remote for local bookkeeping: first 16 hex of BLAKE3(url). */
export async function remoteIdOf(url: string): Promise<string> {
  return (await blake3Hex(Buffer.from(url, 'utf8'))).slice(0, 16);
}

/**
 * Open the backend for a configured remote. `root` resolves relative directory
 * URLs. The S3 SDK is loaded only when an S3 remote is opened. Throws ConfigError for
 * an unknown scheme or option.
 */
export async function openBackend(name: string, cfg: RemoteConfig, root: string): Promise<Backend> {
  const url = cfg.url;
  const o = remoteSettings(name, cfg);
  if (schemeOf(url) === 's3') {
    const { S3Backend, parseS3Url } = await import('../backend/s3.js');
    const str = (k: string): string | undefined => (o[k] === undefined ? undefined : String(o[k]));
    return new S3Backend({
      ...parseS3Url(url),
      endpoint: str('endpoint'),
      region: str('region'),
      profile: str('profile'),
      pathStyle: o.path_style === undefined ? undefined : o.path_style === true,
      jobs: typeof o.jobs === 'number' ? o.jobs : undefined,
      storageClass: str('storage_class'),
      sse: str('sse'),
      sseKmsKeyId: str('sse_kms_key_id'),
      requestTimeout: typeof o.timeout === 'number' ? o.timeout * 1000 : undefined,
      accessKeyId: str('access_key_id'),
      secretAccessKey: str('secret_access_key'),
      sessionToken: str('session_token'),
    });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !url.startsWith('file://')) {
    const scheme = url.slice(0, url.indexOf(':'));
    throw new ConfigError(`remote "${name}": unsupported URL scheme "${scheme}://"`, { hint: 'use s3://bucket/prefix, a directory path or a file:// URL' });
  }
  return new DirectoryBackend(directoryFromUrl(url, root));
}

/**
 * A remote as cpv sees it: a Backend with the remote layout on top, plus the local
 * record (in the cache) of chunk locations proven to be there, used for dedup.
 */
export class Remote {
  readonly name: string;
  readonly backend: Backend;
  readonly id: string;
  private readonly cache: Cache;

  private constructor(name: string, backend: Backend, id: string, cache: Cache) {
    this.name = name;
    this.backend = backend;
    this.id = id;
    this.cache = cache;
  }

  /**
   * Open the named remote (or the default remote when `name` is undefined). Throws
   * ConfigError when no remote is configured or the name is unknown.
   */
  static async open(config: RepoConfig, root: string, cache: Cache, name?: string): Promise<Remote> {
    const chosen = Remote.resolveName(config, name);
    const backend = await openBackend(chosen, config.remotes[chosen]!, root);
    return new Remote(chosen, backend, await remoteIdOf(backend.location), cache);
  }

  /**
   * The configured remote `name` names (the default remote when undefined). Pure.
   * Throws ConfigError when no remote is configured or the name is unknown.
   */
  static resolveName(config: RepoConfig, name?: string): string {
    const chosen = name ?? config.remote;
    if (chosen === undefined) {
      throw new ConfigError('no remote given and no default remote is set', { hint: 'add one with `cpv remote add origin PATH --default`, or pass -r NAME' });
    }
    if (!config.remotes[chosen]) {
      const known = Object.keys(config.remotes);
      throw new ConfigError(`unknown remote "${chosen}"`, { hint: known.length ? `configured remotes: ${known.join(', ')}` : 'add one with `cpv remote add NAME URL`' });
    }
    return chosen;
  }

  /** Wrap an already open backend (used by tests and other front ends). */
  static async fromBackend(name: string, backend: Backend, cache: Cache): Promise<Remote> {
    return new Remote(name, backend, await remoteIdOf(backend.location), cache);
  }

  /** Write the remote marker if absent. Idempotent. */
  async ensureMarker(): Promise<void> {
    if (!(await this.backend.exists(REMOTE_MARKER))) await this.backend.save(REMOTE_MARKER, Buffer.from(REMOTE_MARKER_BODY));
  }

  hasManifest(oid: string): Promise<boolean> {
    return this.backend.exists(remoteKeys.manifest(oid));
  }

  hasTree(oid: string): Promise<boolean> {
    return this.backend.exists(remoteKeys.tree(oid));
  }

  /**
   * Load and validate a file's remote manifest, either version: a version 2 root's
   * pages are read (a few at a time, or once per `pages` memo), each checked to hash
   * to its name and validated, and flattened into one chunk list with `pages` set.
   * Throws NotFoundError when the remote does not have the file's manifest,
   * IntegrityError naming the page and the file when a page is missing or corrupt,
   * FormatError when the root or a page is malformed, RemoteError when the remote fails.
   */
  async loadManifest(oid: string, signal?: AbortSignal, opts: { pages?: PageMemo } = {}): Promise<RemoteManifest> {
    const stored = await this.loadStoredManifest(oid, signal);
    if (stored.version === 1) return stored;
    const what = `remote manifest ${shortOid(oid)} on ${this.name}`;
    const limit = pLimit(PAGE_JOBS);
    const load = (page: string): Promise<ManifestPage> => memo(opts.pages, page, () => limit(() => this.loadPage(page, signal)));
    const pages = await Promise.all(
      stored.pages.map(([page]) =>
        load(page).catch((err: unknown) => {
          const data = { oid, page, key: remoteKeys.page(page), remote: this.name };
          const hint = `the remote record of this file is damaged: \`cpv fsck -r ${this.name}\` lists the damage; push the file again from a clone that has it`;
          if (err instanceof NotFoundError) throw new IntegrityError(`${what} names page ${page.slice(0, 12)} (${remoteKeys.page(page)}), which is not on the remote`, { hint, data: { ...data, missing: remoteKeys.page(page) } });
          if (err instanceof IntegrityError) throw new IntegrityError(`${what}: ${err.message}`, { hint, data });
          if (err instanceof FormatError) throw new FormatError(`${what}: ${err.message}`, { hint: err.hint, data });
          throw err;
        }),
      ),
    );
    return assembleManifest(stored, pages, what);
  }

  /**
   * Load and validate a file's remote manifest as stored: version 1, or a version 2
   * root without its pages. Throws NotFoundError when absent, FormatError when
   * malformed, RemoteError when the remote fails.
   */
  async loadStoredManifest(oid: string, signal?: AbortSignal): Promise<InlineManifest | ManifestRoot> {
    const text = await this.loadText(remoteKeys.manifest(oid), `file ${shortOid(oid)}`, signal);
    return parseRemoteManifest(text, `remote manifest ${shortOid(oid)} on ${this.name}`, oid);
  }

  /**
   * Load a page of a version 2 manifest, check that it hashes to `page` and validate
   * it. Throws NotFoundError when absent, IntegrityError when it does not hash to its
   * name, FormatError when malformed, RemoteError when the remote fails.
   */
  async loadPage(page: string, signal?: AbortSignal): Promise<ManifestPage> {
    const key = remoteKeys.page(page);
    const bytes = await this.backend.load(key, { signal });
    const what = `manifest page ${page.slice(0, 12)}`;
    if ((await blake3Hex(bytes)) !== page) {
      throw new IntegrityError(`${what} (${key}) is corrupt: its content does not hash to its name`, { data: { page, key, remote: this.name } });
    }
    return parseManifestPage(Buffer.from(bytes).toString('utf8'), what);
  }

  /**
   * Write a file's remote manifest (docs/format.md, "Remote manifest"): version 1
   * inline for up to {@link INLINE_MANIFEST_MAX_CHUNKS} chunks, else version 2, whose
   * pages are written first (only those the remote does not have: each is asked
   * about, `limit` at a time, once per `pages` memo) and the root last, so a
   * manifest on the remote always has all of its pages. Every pack `m` names must be
   * on the remote already. Returns the bytes written. Idempotent.
   * Throws RemoteError when the remote fails.
   */
  async saveManifest(m: RemoteManifest, opts: { signal?: AbortSignal; limit?: ReturnType<typeof pLimit>; pages?: Map<string, Promise<void>> } = {}): Promise<number> {
    const { signal } = opts;
    const key = remoteKeys.manifest(m.oid);
    if (m.chunks.length <= INLINE_MANIFEST_MAX_CHUNKS) {
      const body = Buffer.from(serializeObject({ format: 'cpv-manifest', version: 1, oid: m.oid, size: m.size, chunker: m.chunker, packs: m.packs, chunks: m.chunks }));
      await this.backend.save(key, body, { signal });
      return body.length;
    }
    const limit = opts.limit ?? pLimit(PAGE_JOBS);
    const pages = await Promise.all(
      splitPages(m).map(async (page) => {
        const body = Buffer.from(serializeObject(page));
        return { oid: await blake3Hex(body), page, body };
      }),
    );
    let written = 0;
    await Promise.all(
      pages.map(({ oid, body }) =>
        memo(opts.pages, oid, () =>
          limit(async () => {
            const pageKey = remoteKeys.page(oid);
            if (await this.backend.exists(pageKey, { signal })) return;
            await this.backend.save(pageKey, body, { signal });
            written += body.length;
          }),
        ),
      ),
    );
    const root = Buffer.from(serializeObject(manifestRoot(m, pages)));
    await this.backend.save(key, root, { signal });
    return written + root.length;
  }

  /**
   * Load a remote tree index, check that its tree text hashes to its oid, and return
   * it with the parsed entries. Throws NotFoundError, IntegrityError or FormatError.
   */
  async loadTree(oid: string, signal?: AbortSignal): Promise<{ index: RemoteTreeIndex; entries: TreeEntry[] }> {
    const text = await this.loadText(remoteKeys.tree(oid), `directory ${shortOid(oid)}`, signal);
    const what = `remote tree ${shortOid(oid)} on ${this.name}`;
    const index = parseRemoteTreeIndex(text, what, oid);
    if (toFileOid(await blake3Hex(Buffer.from(index.tree, 'utf8'))) !== oid) {
      throw new IntegrityError(`${what} is corrupt: its listing does not hash to its oid`, { data: { oid, remote: this.name } });
    }
    const entries = parseTree(index.tree, what);
    if (index.entries.length !== entries.length) throw new FormatError(`${what}: ${index.entries.length} locations for ${entries.length} entries`);
    return { index, entries };
  }

  /**
   * Record chunk locations on this remote that this client has proven: chunks it
   * uploaded, or downloaded and verified. Only proven locations become dedup
   * knowledge, so a damaged or hostile remote record can never be copied into a new
   * manifest. Idempotent.
   */
  async rememberLocations(chunks: ReadonlyArray<[oid: string, loc: ChunkLocation]>): Promise<void> {
    if (chunks.length === 0) return;
    const body = Buffer.from(
      JSON.stringify({ format: 'cpv-locations', version: 1, chunks: chunks.map(([c, l]) => [c, l.pack, l.offset, l.length]) }) + '\n',
    );
    const path = join(this.cache.knownDir(this.id), fanout(await blake3Hex(body)));
    await writeAtomic(path, body, { exclusive: true, tmpDir: this.cache.tmpDir });
  }

  /**
   * Everything the client knows to be on this remote: chunk oid → location, from the
   * location records it wrote after uploading or verifying chunks. A hint only:
   * callers re-check that the packs exist. A chunk known in several places gets the
   * least (pack oid, offset), whatever order the records are read in, so the same
   * knowledge always gives the same locations (and unchanged manifest pages repeat).
   */
  async knownChunks(): Promise<Map<string, ChunkLocation>> {
    const out = new Map<string, ChunkLocation>();
    await this.eachRecord((_file, chunks) => {
      for (const [c, loc] of chunks) {
        const had = out.get(c);
        if (!had || loc.pack < had.pack || (loc.pack === had.pack && loc.offset < had.offset)) out.set(c, loc);
      }
    });
    return out;
  }

  /**
   * Drop every remembered record that points into one of `packs` (packs found missing
   * on the remote, e.g. after a remote gc or a wiped bucket). Idempotent.
   */
  async forgetPacks(packs: ReadonlySet<string>): Promise<void> {
    const stale: string[] = [];
    await this.eachRecord((file, chunks) => {
      if (chunks.some(([, loc]) => packs.has(loc.pack))) stale.push(file);
    });
    await Promise.all(stale.map((f) => rm(f, { force: true })));
  }

  /** Visit each remembered record with its chunk locations. Damaged records are skipped. */
  private async eachRecord(visit: (file: string, chunks: Array<[string, ChunkLocation]>) => void): Promise<void> {
    for await (const { path } of walkFanout(this.cache.knownDir(this.id))) {
      let chunks: Array<[string, ChunkLocation]>;
      try {
        chunks = recordChunks(await readFile(path, 'utf8'));
      } catch {
        continue; // dedup knowledge is a hint: a damaged record only costs a re-upload
      }
      visit(path, chunks);
    }
  }


  private async loadText(key: string, what: string, signal?: AbortSignal): Promise<string> {
    try {
      return Buffer.from(await this.backend.load(key, { signal })).toString('utf8');
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new NotFoundError(`${what} is not on remote "${this.name}" (${this.backend.location})`, {
          hint: 'whoever added it must run `cpv push`; or check that you use the right remote (-r NAME)',
          data: { key, remote: this.name },
        });
      }
      throw err;
    }
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}

/** Pages already read (or being read), by page oid: lets callers share reads across manifests. */
export type PageMemo = Map<string, Promise<ManifestPage>>;

/** `make()` once per key when a memo is given; every call otherwise. */
function memo<T>(map: Map<string, Promise<T>> | undefined, key: string, make: () => Promise<T>): Promise<T> {
  if (!map) return make();
  let p = map.get(key);
  if (!p) {
    p = make();
    map.set(key, p);
  }
  return p;
}

/** Chunk locations a remembered record describes. Throws on a damaged record. */
function recordChunks(text: string): Array<[string, ChunkLocation]> {
  const o = JSON.parse(text) as { format?: unknown; version?: unknown; chunks?: unknown };
  if (o.format !== 'cpv-locations' || o.version !== 1 || !Array.isArray(o.chunks)) throw new FormatError('not a location record');
  return o.chunks.map((c: unknown): [string, ChunkLocation] => {
    if (!Array.isArray(c) || !isHexOid(c[0]) || !isHexOid(c[1]) || !Number.isSafeInteger(c[2]) || !Number.isSafeInteger(c[3])) throw new FormatError('bad location');
    return [c[0] as string, { pack: c[1] as string, offset: c[2] as number, length: c[3] as number }];
  });
}
