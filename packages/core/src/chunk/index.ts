/** Content-defined chunking (`fastcdc-v1`) and the one-pass file scan built on it. */
export { Chunker, chunkLengths, DEFAULT_CHUNKER, validateChunkerParams, type ChunkerImpl, type ChunkerParams } from './fastcdc.js';
export { GEAR_V1 } from './gear.js';
export { scanBytes, scanFile, type ScanFileOptions, type ScanResult } from './scan.js';
