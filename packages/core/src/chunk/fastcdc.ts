import { ConfigError } from '../errors.js';
import { GEAR_V1 } from './gear.js';
import { GEAR_WASM, GEAR_WASM_DATA, GEAR_WASM_MEMORY } from './gear-wasm.js';

/**
 * Parameters of the `fastcdc-v1` chunker (docs/format.md, "Chunking"). They decide
 * every cut point, so they are recorded in `.cpv/config` and in every manifest.
 */
export interface ChunkerParams {
  algorithm: 'fastcdc-v1';
  gear: 'cpv-gear-v1';
  /** No cut before this many bytes (except at the end of input). */
  min: number;
  /** Target average chunk size; a power of two. */
  avg: number;
  /** A chunk never exceeds this many bytes. */
  max: number;
  /**
   * `tensors`: also cut at the tensor boundaries a safetensors header declares, so a
   * changed tensor never drags its neighbours along. `none`: content cuts only.
   */
  align: 'none' | 'tensors';
}

/** The defaults written by `cpv init`: 16 KiB / 64 KiB / 256 KiB. */
export const DEFAULT_CHUNKER: Readonly<ChunkerParams> = Object.freeze({
  algorithm: 'fastcdc-v1',
  gear: 'cpv-gear-v1',
  min: 16 * 1024,
  avg: 64 * 1024,
  max: 256 * 1024,
  align: 'tensors',
});

const KEYS = ['algorithm', 'gear', 'min', 'avg', 'max', 'align'];
const MIN_MIN = 64;
const MAX_MAX = 64 * 1024 * 1024;

/**
 * Check untrusted chunker parameters (from a config file or a manifest) and return a
 * fresh, plain ChunkerParams with exactly the six known keys (`align` defaults to
 * `none` when absent). Throws ConfigError
 * whose message names the offending field and quotes its value (callers prefix where
 * the parameters came from) when: `p` is not an object; a key is unknown (it could
 * change cut points, so it is never ignored); `algorithm` is not `fastcdc-v1`; `gear`
 * is not `cpv-gear-v1`; a size is not an integer; `avg` is not a power of two; the
 * sizes break `64 <= min <= avg <= max <= 64 MiB`; or `min == max` (the format only
 * forces a cut at offsets `>= min`, so a chunk could never end).
 */
export function validateChunkerParams(p: unknown): ChunkerParams {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) {
    throw bad(`chunker parameters must be an object like ${JSON.stringify(DEFAULT_CHUNKER)}, got ${JSON.stringify(p)}`);
  }
  const o = p as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KEYS.includes(k)) throw bad(`unknown chunker parameter ${JSON.stringify(k)} (known: ${KEYS.join(', ')})`);
  }
  if (o.algorithm !== 'fastcdc-v1') throw bad(`unknown chunker algorithm ${JSON.stringify(o.algorithm)} (expected "fastcdc-v1")`);
  if (o.gear !== 'cpv-gear-v1') throw bad(`unknown gear table ${JSON.stringify(o.gear)} (expected "cpv-gear-v1")`);
  const min = size(o, 'min');
  const avg = size(o, 'avg');
  const max = size(o, 'max');
  if ((avg & (avg - 1)) !== 0) throw bad(`avg must be a power of two, got ${avg}`);
  if (min < MIN_MIN) throw bad(`min must be at least ${MIN_MIN}, got ${min}`);
  if (max > MAX_MAX) throw bad(`max must be at most ${MAX_MAX} (64 MiB), got ${max}`);
  if (!(min <= avg && avg <= max)) throw bad(`sizes must satisfy min <= avg <= max, got min ${min}, avg ${avg}, max ${max}`);
  if (min === max) throw bad(`min must be less than max, got ${min} for both`);
  const align = o.align ?? 'none';
  if (align !== 'none' && align !== 'tensors') throw bad(`align must be "none" or "tensors", got ${JSON.stringify(o.align)}`);
  return { algorithm: 'fastcdc-v1', gear: 'cpv-gear-v1', min, avg, max, align };
}

function size(o: Record<string, unknown>, key: 'min' | 'avg' | 'max'): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw bad(`${key} must be a positive integer number of bytes, got ${JSON.stringify(v)}`);
  }
  return v;
}

function bad(message: string): ConfigError {
  return new ConfigError(message, { hint: `the default chunker is ${JSON.stringify(DEFAULT_CHUNKER)}` });
}

// The table as int32, so the rolling hash stays in V8's small-integer range: the
// update `(h << 1) + g | 0` equals the spec's `((h << 1) + GEAR[b]) mod 2^32` bit for
// bit, and `h & mask` tests the same bits.
const GEAR_I32 = new Int32Array(GEAR_V1.buffer, GEAR_V1.byteOffset, GEAR_V1.length);

/** Which gear loop a Chunker runs: WebAssembly (faster) or plain JavaScript. Same cuts. */
export type ChunkerImpl = 'wasm' | 'js';

/**
 * A gear loop: from index `i` while below `end`, roll the hash `h` over `buf` and
 * return the index of the first byte after which `h & mask` is 0, or -1 if none is.
 * The hash after the last byte rolled is left in `gearOut.h`.
 */
type GearLoop = (buf: Uint8Array, i: number, end: number, h: number, mask: number) => number;
const gearOut = { h: 0 };

const jsGear: GearLoop = (buf, i, end, h, mask) => {
  const gear = GEAR_I32;
  for (let j = i; j < end; j++) {
    h = ((h << 1) + gear[buf[j]!]!) | 0;
    if ((h & mask) === 0) {
      gearOut.h = h;
      return j;
    }
  }
  gearOut.h = h;
  return -1;
};

interface GearWasm {
  scan: (i: number, end: number, h: number, mask: number) => number;
  /** The module's global holding the hash after the last `scan`. */
  h: { value: number };
  /** The module's input window: `push` copies each piece of its input here. */
  window: Uint8Array;
}

/** The part of the WebAssembly JS API used here (not in this project's type libraries). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

// One instance serves every Chunker: `push` is synchronous and leaves nothing in the
// window between calls. undefined = not tried yet; null = WebAssembly unavailable.
let gearWasm: GearWasm | null | undefined;

function loadGearWasm(): GearWasm | null {
  if (gearWasm !== undefined) return gearWasm;
  gearWasm = null;
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (api === undefined) return null; // the JavaScript loop gives the same cuts
  const ex = new api.Instance(new api.Module(GEAR_WASM)).exports as { scan: GearWasm['scan']; mem: { buffer: ArrayBuffer }; h: { value: number } };
  new Uint32Array(ex.mem.buffer, 0, 256).set(GEAR_V1);
  gearWasm = { scan: ex.scan, h: ex.h, window: new Uint8Array(ex.mem.buffer, GEAR_WASM_DATA, GEAR_WASM_MEMORY - GEAR_WASM_DATA) };
  return gearWasm;
}

const WASM_MIN_PUSH = 256;

/** The gear loop over the wasm window (`buf` is the window's copy of the input). */
const wasmGear: GearLoop = (_buf, i, end, h, mask) => {
  const w = gearWasm!;
  const at = w.scan(GEAR_WASM_DATA + i, GEAR_WASM_DATA + end, h, mask) - GEAR_WASM_DATA;
  gearOut.h = w.h.value;
  return at < end ? at : -1;
};

/**
 * Streaming FastCDC (`fastcdc-v1`). Feed the input in buffers of any size; the cut
 * points depend only on the bytes, never on how they were split into buffers, nor on
 * the implementation of the gear loop. Not safe to share between concurrent streams
 * (it holds the state of one stream).
 */
export class Chunker {
  /** The validated parameters this chunker cuts with. */
  readonly params: ChunkerParams;
  /** The gear loop in use: `wasm` unless asked for `js` or WebAssembly is unavailable. */
  readonly impl: ChunkerImpl;
  readonly #min: number;
  readonly #avg: number;
  readonly #max: number;
  readonly #maskS: number;
  readonly #maskL: number;
  /** Offset within the current chunk of the next byte to be pushed. */
  #pos = 0;
  /** Rolling gear hash of the current chunk (as int32). */
  #h = 0;

  /**
   * Throws ConfigError if `params` is invalid (see validateChunkerParams). `impl`
   * picks the gear loop (default `wasm`, falling back to `js` where WebAssembly
   * cannot run); it never changes the cuts.
   */
  constructor(params: ChunkerParams, opts: { impl?: ChunkerImpl } = {}) {
    this.params = validateChunkerParams(params);
    this.impl = opts.impl !== 'js' && loadGearWasm() !== null ? 'wasm' : 'js';
    const { min, avg, max } = this.params;
    const bits = Math.log2(avg);
    this.#min = min;
    this.#avg = avg;
    this.#max = max;
    // Top bits + 2 (harder to match, before avg) and top bits - 2 (easier, after avg).
    this.#maskS = -1 << (32 - (bits + 2));
    this.#maskL = -1 << (32 - (bits - 2));
  }

  /**
   * Consume `buf` and return the lengths of the chunks that end inside it, in order.
   * The first length may include bytes from earlier buffers. Bytes after the last cut
   * stay pending until later pushes or `finish`. Does not keep a reference to `buf`.
   */
  push(buf: Uint8Array): number[] {
    // Tiny buffers are not worth copying into the wasm window; both loops cut alike.
    if (this.impl === 'js' || buf.length < WASM_MIN_PUSH) return this.#push(buf, jsGear, []);
    const win = gearWasm!.window;
    const out: number[] = [];
    for (let off = 0; off < buf.length; off += win.length) {
      const piece = buf.subarray(off, off + win.length);
      win.set(piece);
      this.#push(win.subarray(0, piece.length), wasmGear, out);
    }
    return out;
  }

  /** `push` with the given gear loop; appends the lengths to `out` and returns it. */
  #push(buf: Uint8Array, gear: GearLoop, out: number[]): number[] {
    const n = buf.length;
    const min = this.#min;
    const max = this.#max;
    const maskS = this.#maskS;
    const maskL = this.#maskL;
    // Offsets below `normal` (= avg - 1) have `offset + 1 < avg` and use maskS.
    const normal = this.#avg - 1;
    let pos = this.#pos;
    let h = this.#h;
    let i = 0; // index in buf of the byte at chunk offset `pos`

    while (i < n) {
      if (pos < min) {
        // Offsets below min are not hashed: jump over them.
        const skip = min - pos;
        if (skip >= n - i) {
          pos += n - i;
          break;
        }
        pos = min;
        i += skip;
      }
      let cut = -1; // index in buf of the chunk's last byte
      if (pos < normal) {
        let end = i + (normal - pos);
        if (end > n) end = n;
        cut = gear(buf, i, end, h, maskS);
        h = gearOut.h;
        if (cut < 0) {
          pos += end - i;
          i = end;
          if (i === n) break;
        }
      }
      if (cut < 0) {
        // Offsets up to max - 1 use maskL; the byte at offset max - 1 ends the chunk.
        let end = i + (max - pos);
        const forced = end <= n;
        if (!forced) end = n;
        cut = gear(buf, i, end, h, maskL);
        h = gearOut.h;
        if (cut < 0) {
          if (!forced) {
            pos += end - i;
            break;
          }
          cut = end - 1;
        }
      }
      out.push(pos + (cut - i) + 1);
      i = cut + 1;
      pos = 0;
      h = 0;
    }
    this.#pos = pos;
    this.#h = h;
    return out;
  }

  /**
   * End the input: return the length of the final chunk (0 if no bytes are pending)
   * and reset, so the chunker can start a new stream.
   */
  finish(): number {
    const last = this.#pos;
    this.#pos = 0;
    this.#h = 0;
    return last;
  }
}

/** Chunk lengths of `data` in order; they sum to `data.length` (none for empty input). */
export function chunkLengths(data: Uint8Array, params: ChunkerParams, opts: { impl?: ChunkerImpl } = {}): number[] {
  const c = new Chunker(params, opts);
  const out = c.push(data);
  const last = c.finish();
  if (last > 0) out.push(last);
  return out;
}
