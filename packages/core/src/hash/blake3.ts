import type { IHasher } from 'hash-wasm';
import { ConfigError } from '../errors.js';

/**
 * An incremental BLAKE3-256 hash. `update` may be called any number of times;
 * `digestHex` finalizes and returns 64 lowercase hex. After `digestHex` the hasher is
 * spent: any further call but `reset` throws. `reset` (at any time) starts it over as
 * a fresh hasher, so one hasher can hash many chunks without allocating. Both
 * implementations give identical digests.
 */
export interface Hasher {
  update(data: Uint8Array): void;
  digestHex(): string;
  reset(): void;
}

/** Which BLAKE3 implementation backs a hasher: the napi binding or WebAssembly. */
export type HashImpl = 'native' | 'wasm';

/** Creates a fresh Hasher. Synchronous and cheap, so it can be called per chunk. */
export type HasherFactory = () => Hasher;

/**
 * Known answer checked once per implementation before it is trusted with oids:
 * BLAKE3 of bytes i % 251 for i in 0..len-1 (official test vector, input_len 1025).
 * 1025 bytes span two BLAKE3 chunks, so the tree-merge path is exercised too.
 */
export const BLAKE3_KAT = Object.freeze({ len: 1025, hex: 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444' });

const loaded = new Map<HashImpl, Promise<HasherFactory>>();
let defaultLoad: Promise<{ impl: HashImpl; factory: HasherFactory }> | undefined;
let defaultImpl: HashImpl | undefined;

/**
 * Load a BLAKE3 implementation and return a factory of Hashers. Loading is lazy and
 * cached: the first call per implementation pays for it, later calls are free.
 *
 * - `impl` given: exactly that implementation; throws if it cannot load (no fallback).
 * - `impl` omitted: the environment variable `CPV_HASH_IMPL` (read once, at the first
 *   such call) decides: `wasm` or `native` force that implementation; unset or empty
 *   means the native binding (`@napi-rs/blake-hash`, an optional dependency) when it
 *   loads on this platform, else the WebAssembly one (`hash-wasm`). Any other value
 *   throws ConfigError. `hashImpl()` then reports the choice.
 *
 * Each implementation is checked against a known answer before first use; a binding
 * that loads but hashes wrongly counts as not loadable.
 *
 * Hashing is synchronous. Callers that hash many chunks should yield to the event
 * loop every few MiB: the native binding frees its buffers only when the loop turns.
 */
export async function loadHasher(impl?: HashImpl): Promise<HasherFactory> {
  if (impl !== undefined) return load(impl);
  defaultLoad ??= loadDefault();
  return (await defaultLoad).factory;
}

/**
 * The implementation behind `loadHasher()` without an argument. Throws if called
 * before that load has completed.
 */
export function hashImpl(): HashImpl {
  if (defaultImpl === undefined) throw new Error('hashImpl() called before loadHasher() resolved');
  return defaultImpl;
}

/** BLAKE3-256 of `data` as 64 lowercase hex. `impl` as for `loadHasher`. */
export async function blake3Hex(data: Uint8Array, impl?: HashImpl): Promise<string> {
  const h = (await loadHasher(impl))();
  h.update(data);
  return h.digestHex();
}

async function loadDefault(): Promise<{ impl: HashImpl; factory: HasherFactory }> {
  const forced = implFromEnv(process.env.CPV_HASH_IMPL);
  let impl: HashImpl = forced ?? 'native';
  let factory: HasherFactory;
  try {
    factory = await load(impl);
  } catch (err) {
    // Only the automatic choice falls back; a forced implementation must load.
    if (forced !== undefined) throw err;
    impl = 'wasm';
    factory = await load(impl);
  }
  defaultImpl = impl;
  return { impl, factory };
}

function implFromEnv(v: string | undefined): HashImpl | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === 'native' || v === 'wasm') return v;
  throw new ConfigError(`CPV_HASH_IMPL must be "native" or "wasm", got ${JSON.stringify(v)}`, {
    hint: 'unset CPV_HASH_IMPL to pick the fastest available implementation',
  });
}

function load(impl: HashImpl): Promise<HasherFactory> {
  let p = loaded.get(impl);
  if (p === undefined) {
    p = (impl === 'native' ? loadNative() : loadWasm()).then((factory) => selfTest(impl, factory));
    loaded.set(impl, p);
  }
  return p;
}

function selfTest(impl: HashImpl, factory: HasherFactory): HasherFactory {
  const input = new Uint8Array(BLAKE3_KAT.len);
  for (let i = 0; i < input.length; i++) input[i] = i % 251;
  const h = factory();
  h.update(input);
  const got = h.digestHex();
  if (got !== BLAKE3_KAT.hex) throw new Error(`${impl} BLAKE3 failed its known-answer test: got ${got}`);
  return factory;
}

async function loadNative(): Promise<HasherFactory> {
  let Blake3Hasher: typeof import('@napi-rs/blake-hash').Blake3Hasher;
  try {
    ({ Blake3Hasher } = await import('@napi-rs/blake-hash'));
  } catch (err) {
    throw new Error('the native BLAKE3 binding (@napi-rs/blake-hash) could not be loaded', { cause: err });
  }
  return () => new NativeHasher(new Blake3Hasher());
}

class NativeHasher implements Hasher {
  readonly #h: import('@napi-rs/blake-hash').Blake3Hasher;
  #done = false;
  constructor(h: import('@napi-rs/blake-hash').Blake3Hasher) {
    this.#h = h;
  }
  update(data: Uint8Array): void {
    if (this.#done) throw spent();
    this.#h.update(data);
  }
  digestHex(): string {
    if (this.#done) throw spent();
    this.#done = true;
    return this.#h.digest('hex');
  }
  reset(): void {
    this.#h.reset();
    this.#done = false;
  }
}

async function loadWasm(): Promise<HasherFactory> {
  const { createBLAKE3 } = await import('hash-wasm');
  const engine: WasmEngine = { h: await createBLAKE3(256), owner: null };
  return () => new WasmHasher(engine);
}

/**
 * One WebAssembly BLAKE3 instance shared by every WasmHasher of a factory. Creating
 * an instance is asynchronous, but a factory must be synchronous, so hashers take
 * turns: whichever hasher used the instance last owns it, and a hasher that wants it
 * saves the owner's state (about 2 KiB) and loads its own. A lone hasher never swaps;
 * interleaved ones (a whole-file and a per-chunk hasher) swap a few times per chunk.
 */
interface WasmEngine {
  h: IHasher;
  owner: WasmHasher | null;
}

class WasmHasher implements Hasher {
  readonly #engine: WasmEngine;
  // State parked while another hasher owns the engine; null when fresh or when owning.
  #saved: Uint8Array | null = null;
  #done = false;

  constructor(engine: WasmEngine) {
    this.#engine = engine;
  }

  #acquire(): IHasher {
    const e = this.#engine;
    if (e.owner !== this) {
      if (e.owner !== null) e.owner.#saved = e.h.save();
      if (this.#saved === null) e.h.init();
      else e.h.load(this.#saved);
      this.#saved = null;
      e.owner = this;
    }
    return e.h;
  }

  update(data: Uint8Array): void {
    if (this.#done) throw spent();
    this.#acquire().update(data);
  }

  digestHex(): string {
    if (this.#done) throw spent();
    const hex = this.#acquire().digest('hex');
    this.#done = true;
    this.#engine.owner = null;
    return hex;
  }

  reset(): void {
    // A fresh hasher: nothing parked, and the engine is re-initialised on next use.
    if (this.#engine.owner === this) this.#engine.owner = null;
    this.#saved = null;
    this.#done = false;
  }
}

function spent(): Error {
  return new Error('BLAKE3 hasher used after digestHex()');
}
