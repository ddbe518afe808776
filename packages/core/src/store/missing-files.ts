import { readdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Cache } from './cache.js';

/** Oids sharing a fan-out directory from which one listing is cheaper than a stat each. */
const LIST_AT = 4;

/**
 * The oids among `oids` whose whole-file object is absent from `cache` (the same
 * answer as `cache.hasFile` for each, without verifying content). Oids that share a
 * fan-out directory with others are answered by one listing of that directory
 * instead of a stat each: a 20,000-file tree needs 256 listings, not 20,000 stats.
 * Throws any fs error other than "absent" (so "cannot tell" is never "missing").
 * Read-only; idempotent.
 */
export function missingFiles(cache: Cache, oids: Iterable<string>): Set<string> {
  // Grouped by fan-out directory (the first two hex digits); cache.filePath validates
  // every oid once, and its layout is `files/<2 hex>/<62 hex>`.
  const byDir = new Map<string, string[]>();
  for (const oid of new Set(oids)) {
    const key = oid.slice(3, 5);
    const group = byDir.get(key);
    if (group) group.push(oid);
    else byDir.set(key, [oid]);
  }
  const missing = new Set<string>();
  for (const group of byDir.values()) {
    if (group.length >= LIST_AT) {
      const dir = dirname(cache.filePath(group[0]!));
      let names: Set<string>;
      try {
        names = new Set(readdirSync(dir));
      } catch (err) {
        if (!isAbsent(err)) throw err;
        names = new Set();
      }
      // Names are compared, never opened: an oid that is not well formed is just absent.
      for (const oid of group) if (!names.has(oid.slice(5))) missing.add(oid);
      continue;
    }
    for (const oid of group) {
      try {
        statSync(cache.filePath(oid));
      } catch (err) {
        if (!isAbsent(err)) throw err;
        missing.add(oid);
      }
    }
  }
  return missing;
}

function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
