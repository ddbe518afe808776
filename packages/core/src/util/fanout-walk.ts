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
  for (const fan of fans.sort()) {
    for (const name of (await readdir(join(base, fan))).sort()) yield { hex: fan + name, path: join(base, fan, name) };
  }
}
