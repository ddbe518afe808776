import { open, type FileHandle } from 'node:fs/promises';
import { loadHasher } from './blake3.js';

const MAX_BUFFER = 4 * 1024 * 1024;

/**
 * BLAKE3 hex of everything readable from `fh` from offset 0, and the number of bytes
 * read. The read buffer is sized to the file (at most 4 MiB), so hashing many small
 * files allocates little.
 */
export async function hashHandle(fh: FileHandle, onProgress?: (bytes: number) => void): Promise<{ hex: string; size: number }> {
  const h = (await loadHasher())();
  const { size: statSize } = await fh.stat();
  const buf = Buffer.allocUnsafe(Math.max(1, Math.min(MAX_BUFFER, statSize + 1)));
  let pos = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    h.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
    onProgress?.(bytesRead);
  }
  return { hex: h.digestHex(), size: pos };
}

/** hashHandle over the file at `path`. Throws the fs error (ENOENT, EISDIR…) as Node raises it. */
export async function hashPath(path: string, onProgress?: (bytes: number) => void): Promise<{ hex: string; size: number }> {
  const fh = await open(path, 'r');
  try {
    return await hashHandle(fh, onProgress);
  } finally {
    await fh.close();
  }
}
