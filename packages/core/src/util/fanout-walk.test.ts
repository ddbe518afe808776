import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { walkFanout } from './fanout-walk.js';

let base: string;
beforeEach(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'cpv-fanout-'));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function put(rel: string): Promise<void> {
  const abs = path.join(base, rel);
  await mkdir(path.dirname(abs), { recursive: true });
  await writeFile(abs, 'x');
}

async function walk(dir: string): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for await (const { hex, path: p } of walkFanout(dir)) out.push([hex, path.relative(dir, p)]);
  return out;
}

const rest = (c: string): string => c.repeat(62);

describe('walkFanout', () => {
  it('yields every object, sorted, with its 64-hex name and path', async () => {
    await put(`cd/${rest('1')}`);
    await put(`ab/${rest('2')}`);
    await put(`ab/${rest('0')}`);
    expect(await walk(base)).toEqual([
      [`ab${rest('0')}`, `ab/${rest('0')}`],
      [`ab${rest('2')}`, `ab/${rest('2')}`],
      [`cd${rest('1')}`, `cd/${rest('1')}`],
    ]);
  });

  it('yields nothing for an absent directory', async () => {
    expect(await walk(path.join(base, 'absent'))).toEqual([]);
  });

  it('skips stray files and names that are not objects instead of failing', async () => {
    await put(`ab/${rest('a')}`);
    // Files where fan-out directories go: a Finder file, a file named like a fan.
    await put('.DS_Store');
    await put('ef');
    await put('README');
    // Directories that are not fans.
    await put(`AB/${rest('b')}`);
    await put(`zz/${rest('c')}`);
    await put(`abc/${rest('d')}`);
    // Names inside a fan that are not objects.
    await put('ab/junk');
    await put('ab/.DS_Store');
    await put(`ab/${rest('e')}.tmp`);
    await put(`ab/${rest('e').slice(1)}`);
    await put(`ab/${rest('F')}`);
    await mkdir(path.join(base, '01'));
    expect(await walk(base)).toEqual([[`ab${rest('a')}`, `ab/${rest('a')}`]]);
  });
});
