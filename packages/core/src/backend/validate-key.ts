import { UsageError } from '../errors.js';

/**
 * Check that `key` is a backend key: a non-empty relative path with `/` separators,
 * whose components are not empty, `.` or `..`, with no `\` and no NUL. Every backend
 * applies the same rules, so a key accepted by one is accepted by all and can never
 * address anything outside the backend's root.
 *
 * Throws UsageError naming the key and the rule it breaks. Pure; never does IO.
 */
export function validateKey(key: string): void {
  if (typeof key !== 'string' || key === '') throw badKey(key, 'it is empty');
  checkCommon(key);
  for (const part of key.split('/')) checkComponent(key, part);
}

/**
 * Check a `list` prefix: `''` (everything), or a valid key prefix — every component
 * before the last `/` obeys {@link validateKey}'s rules; the text after it is a partial
 * name (`packs/a` matches `packs/ab/…`) and may be empty (`packs/`).
 *
 * Returns the prefix split into its directory part (`''` or components joined by
 * `/`, without trailing slash) and the partial last name. Throws UsageError. Pure.
 */
export function validateListPrefix(prefix: string): { dir: string; name: string } {
  if (typeof prefix !== 'string') throw badKey(prefix, 'it is not a string');
  if (prefix === '') return { dir: '', name: '' };
  checkCommon(prefix);
  const slash = prefix.lastIndexOf('/');
  const dir = slash < 0 ? '' : prefix.slice(0, slash);
  const name = prefix.slice(slash + 1);
  if (slash >= 0) {
    if (dir === '') throw badKey(prefix, 'it has an empty component');
    for (const part of dir.split('/')) checkComponent(prefix, part);
  }
  return { dir, name };
}

function checkCommon(key: string): void {
  if (key.startsWith('/')) throw badKey(key, 'it is absolute');
  if (key.includes('\\')) throw badKey(key, 'it contains a backslash');
  if (key.includes('\0')) throw badKey(key, 'it contains a NUL byte');
}

function checkComponent(key: string, part: string): void {
  if (part === '') throw badKey(key, 'it has an empty component');
  if (part === '.' || part === '..') throw badKey(key, `it has a "${part}" component`);
}

function badKey(key: unknown, reason: string): UsageError {
  return new UsageError(`invalid backend key ${JSON.stringify(key)}: ${reason}`, {
    hint: 'keys are relative paths like "packs/ab/cdef…" with "/" separators and no empty, "." or ".." components',
    data: { key },
  });
}

/** Check a load offset or length: a non-negative safe integer. Throws UsageError. Pure. */
export function checkCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new UsageError(`load ${name} must be a non-negative integer, got ${value}`, { data: { [name]: value } });
  }
}
