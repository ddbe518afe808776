import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Every object in a 2-hex fan-out directory (`base/ab/cdef…`): yields its 64-hex name
 * (fan + rest) and path. An absent `base` yields nothing; other errors throw.
 */
export async function* walkFanout(base: string): AsyncGenerator<{ hex: string; path: string }> {
  let fans: string[];
  try {
    fans = await readdir(base);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  // Only well-formed names: stray files (editor backups, .DS_Store) are not objects.
  for (const fan of fans.filter((f) => /^[0-9a-f]{2}$/.test(f)).sort()) {
    let names: string[];
    try {
      names = await readdir(join(base, fan));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      throw err;
    }
    for (const name of names.filter((n) => /^[0-9a-f]{62}$/.test(n)).sort()) yield { hex: fan + name, path: join(base, fan, name) };
  }
}
