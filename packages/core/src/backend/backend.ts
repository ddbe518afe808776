/**
 * A Backend is a dumb blob store under one root (a directory, an S3 prefix). Keys are
 * `/`-separated relative paths (`packs/ab/cdef…`) obeying `validateKey`; every method
 * throws UsageError for a key that breaks those rules. Hashing, layout, dedup and
 * verification live above it. Every implementation passes the shared suite in
 * `backend/testing/conformance.ts`.
 */
export interface OpOptions {
  signal?: AbortSignal;
}

export interface SaveOptions extends OpOptions {
  /**
   * Fail with ConflictError instead of replacing an existing object. Backends that
   * cannot enforce this atomically must still never leave a partial object.
   */
  ifNoneMatch?: boolean;
  /** Bytes expected; a backend may use it to size buffers or multipart parts. */
  size?: number;
}

export interface LoadOptions extends OpOptions {
  /** First byte to read (default 0). */
  offset?: number;
  /** Number of bytes to read (default: to the end). */
  length?: number;
  /**
   * A buffer to read into, reused by the caller from load to load so large transfers
   * do not allocate (and fault in) fresh memory per request. When the bytes fit, the
   * result is a view of its start; otherwise a new buffer is returned and `into` is
   * untouched or holds garbage. The caller must not touch `into` until the promise
   * settles, and must not keep the result past its next use of `into`.
   */
  into?: Uint8Array;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** Last modification time in ms since the epoch (used by gc's grace period). */
  mtimeMs: number;
}

export interface Backend {
  /** Human-readable location, for messages (never contains credentials). */
  readonly location: string;

  /**
   * Store `data` under `key`, atomically: readers see either no object or the whole
   * object, never a partial one, even if the process dies mid-write. Overwrites an
   * existing object unless `ifNoneMatch` (then throws ConflictError). Idempotent for
   * identical content. If an async-iterable source throws, or the signal aborts, that
   * error propagates and `key` is left as it was (absent, or the previous object). The caller
   * may reuse `data`'s buffers once the promise settles.
   */
  save(key: string, data: Uint8Array | AsyncIterable<Uint8Array>, opts?: SaveOptions): Promise<void>;

  /**
   * Read an object, or the byte range [offset, offset + length). Throws NotFoundError
   * when the key is absent and RangeError-free: a range past the end returns the bytes
   * that exist (possibly none); callers verify lengths. A negative or fractional
   * offset or length throws UsageError.
   */
  load(key: string, opts?: LoadOptions): Promise<Uint8Array>;

  /** Size and mtime of an object. Throws NotFoundError when absent. */
  stat(key: string, opts?: OpOptions): Promise<ObjectInfo>;

  /** Whether an object exists. Never throws NotFoundError. */
  exists(key: string, opts?: OpOptions): Promise<boolean>;

  /**
   * Every object whose key starts with `prefix`, in no particular order. Never yields
   * a partially written object. An absent prefix yields nothing. `prefix` may end in a
   * partial name (`packs/a`); one that `validateListPrefix` rejects throws UsageError.
   */
  list(prefix: string, opts?: OpOptions): AsyncIterable<ObjectInfo>;

  /** Delete an object. Idempotent: removing an absent key succeeds. */
  remove(key: string, opts?: OpOptions): Promise<void>;

  /**
   * Release connections and handles. Idempotent. Afterwards every other method throws
   * UsageError.
   */
  close(): Promise<void>;
}
