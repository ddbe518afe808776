/** BLAKE3-256, the one hash behind every cpv oid (see docs/format.md, "Identities"). */
export { blake3Hex, hashImpl, loadHasher, type HashImpl, type Hasher, type HasherFactory } from './blake3.js';
