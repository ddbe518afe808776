/** Helpers for oids: `b3:` + 64 lowercase hex for files and trees, bare hex for chunks and packs. */

export const OID_PREFIX = 'b3:';
const HEX64 = /^[0-9a-f]{64}$/;

/** Whether `s` is a well-formed file or tree oid (`b3:` + 64 lowercase hex). */
export function isFileOid(s: string): boolean {
  return s.length === 67 && s.startsWith(OID_PREFIX) && HEX64.test(s.slice(3));
}

/** Whether `s` is 64 lowercase hex (a chunk or pack oid). */
export function isHexOid(s: string): boolean {
  return HEX64.test(s);
}

/** `b3:<hex>` → `<hex>`. Throws TypeError on a malformed oid (callers validate first). */
export function oidHex(oid: string): string {
  if (!isFileOid(oid)) throw new TypeError(`malformed oid: ${oid}`);
  return oid.slice(3);
}

/** `<hex>` → `b3:<hex>`. */
export function toFileOid(hex: string): string {
  return OID_PREFIX + hex;
}

/** Fan-out path of an oid: `ab/cdef…` (2 hex, then the remaining 62). */
export function fanout(hex: string): string {
  return `${hex.slice(0, 2)}/${hex.slice(2)}`;
}

/** Short form for messages: `b3:5c1f0a2b3c4d`. */
export function shortOid(oid: string): string {
  return oid.startsWith(OID_PREFIX) ? oid.slice(0, 15) : oid.slice(0, 12);
}
