import { createHash } from 'node:crypto';
import { chmod, lstat, mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A fresh directory under the OS temp dir. Removed by `removeTempDir` unless
 * `CPV_E2E_KEEP=1` is set (then its path is printed, for post-mortems).
 */
export async function makeTempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `cpv-e2e-${label}-`));
}

/** Remove a directory made by `makeTempDir` (objects are read-only; rm copes with that). */
export async function removeTempDir(dir: string | undefined): Promise<void> {
  if (!dir) return;
  if (process.env.CPV_E2E_KEEP === '1') {
    process.stderr.write(`kept ${dir}\n`);
    return;
  }
  await rm(dir, { recursive: true, force: true });
}

/** Every regular file under `dir`, as `/`-separated paths relative to it, sorted. Absent dir → []. */
export async function listFiles(dir: string, opts: { exclude?: readonly string[] } = {}): Promise<string[]> {
  const out: string[] = [];
  const exclude = new Set(opts.exclude ?? []);
  const walk = async (abs: string, rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names.sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (exclude.has(r)) continue;
      const st = await lstat(join(abs, name));
      if (st.isDirectory()) await walk(join(abs, name), r);
      else out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

/**
 * Total size in bytes of all files under `dir` (recursively; symlinks count as their
 * own size). Used to measure how much a push made a remote grow. Absent dir → 0.
 */
export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const rel of await listFiles(dir)) total += (await lstat(join(dir, rel))).size;
  return total;
}

/**
 * A map of every entry under `dir` to a fingerprint: files to `sha256:<hex>:<mode>`,
 * symlinks to `link`, directories to `dir` (so a new empty directory shows too).
 * `exclude` lists relative paths (e.g. `.git`, `.cpv`) whose subtrees are skipped, or
 * is a predicate over relative paths.
 * Compare two snapshots with `expect(after).toEqual(before)` to assert that nothing
 * under `dir` was created, deleted or changed.
 */
export async function snapshotTree(dir: string, opts: { exclude?: readonly string[] | ((rel: string) => boolean) } = {}): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const ex = opts.exclude ?? [];
  const excluded = typeof ex === 'function' ? ex : (rel: string) => ex.includes(rel);
  // Names are read as bytes: a name that is not UTF-8 must still be found (and shows with U+FFFD).
  const walk = async (abs: Buffer, rel: string): Promise<void> => {
    for (const raw of (await readdir(abs, { encoding: 'buffer' })).sort(Buffer.compare)) {
      const name = raw.toString('utf8');
      const r = rel ? `${rel}/${name}` : name;
      if (excluded(r)) continue;
      const p = Buffer.concat([abs, Buffer.from('/'), raw]);
      const st = await lstat(p);
      if (st.isDirectory()) {
        out[r + '/'] = 'dir';
        await walk(p, r);
      } else if (st.isSymbolicLink()) {
        out[r] = 'link';
      } else {
        out[r] = `sha256:${createHash('sha256').update(await readFile(p)).digest('hex')}:${(st.mode & 0o777).toString(8)}`;
      }
    }
  };
  await walk(Buffer.from(dir), '');
  return out;
}

/**
 * Flip every bit of the byte at `offset` of `file`, in place. Makes the file writable
 * first (cpv stores objects read-only, 0444). Returns the old and new byte.
 */
export async function flipByte(file: string, offset: number): Promise<{ before: number; after: number }> {
  await chmod(file, 0o644);
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    const { bytesRead } = await fh.read(b, 0, 1, offset);
    if (bytesRead !== 1) throw new Error(`flipByte: ${file} has no byte at offset ${offset}`);
    const before = b[0]!;
    b[0] = before ^ 0xff;
    await fh.write(b, 0, 1, offset);
    await fh.sync();
    return { before, after: b[0]! };
  } finally {
    await fh.close();
  }
}

/** sha256 hex of a file (a cheap content check that does not involve BLAKE3). */
export async function sha256File(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}
