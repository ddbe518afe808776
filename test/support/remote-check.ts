// An independent structural check of a cpv remote (docs/format.md, "Remote layout"),
// written from the format description rather than with cpv's own readers: every pack
// hashes to its name and its chunks to theirs, every manifest page hashes to its name,
// and every manifest, page and tree names only chunks that really are where it says.
import { createBLAKE3 } from 'hash-wasm';
import type { RemoteFixture } from './remote-fixture.js';

/** What a remote holds, and everything found wrong with it (empty when sound). */
export interface RemoteReport {
  packs: number;
  pages: number;
  manifests: number;
  trees: number;
  problems: string[];
}

const LAYOUT = /^(packs|pages|manifests|trees)\/([0-9a-f]{2})\/([0-9a-f]{62})$/;

/** BLAKE3-256 hex of `bytes` (hash-wasm, independent of cpv's native hasher). */
export async function blake3Hex(bytes: Uint8Array): Promise<string> {
  const h = await createBLAKE3();
  h.init();
  h.update(bytes);
  return h.digest('hex');
}

/** chunk oid → [offset, length] from a pack's trailer; throws on a malformed pack. */
function packIndex(pack: Buffer): Map<string, [number, number]> {
  if (pack.subarray(0, 8).toString('latin1') !== 'CPVPACK1') throw new Error('bad magic');
  if (pack.subarray(pack.length - 8).toString('latin1') !== 'CPVPEND1') throw new Error('bad end magic');
  const len = pack.readUInt32LE(pack.length - 12);
  const index = JSON.parse(pack.subarray(pack.length - 12 - len, pack.length - 12).toString('utf8')) as { version: number; chunks: Array<[string, number, number]> };
  if (index.version !== 1) throw new Error(`pack index version ${index.version}`);
  return new Map(index.chunks.map(([oid, offset, length]) => [oid, [offset, length]]));
}

/**
 * Read every object of `remote` and check it. Packs: named by their BLAKE3, magic and
 * trailer intact, each chunk hashing to its oid. Manifest pages: named by their
 * BLAKE3, every chunk location matching its pack's index. Manifests and tree indexes:
 * named by the oid they describe, every pack they name present, every chunk location
 * matching that pack's index (version 2 manifests: every page present, holding the
 * chunk and byte counts the root gives); a tree's text hashes to its oid and each of
 * its multi-chunk or unlocated files has a manifest.
 */
export async function checkRemote(remote: RemoteFixture): Promise<RemoteReport> {
  const report: RemoteReport = { packs: 0, pages: 0, manifests: 0, trees: 0, problems: [] };
  const problem = (key: string, what: string): void => void report.problems.push(`${key}: ${what}`);
  const keys = await remote.keys();
  const byKind = { packs: [] as string[], pages: [] as string[], manifests: [] as string[], trees: [] as string[] };
  for (const key of keys) {
    const m = LAYOUT.exec(key);
    if (m) byKind[m[1] as keyof typeof byKind].push(m[2]! + m[3]!);
    else if (key !== 'cpv-remote.json') problem(key, 'not part of the remote layout');
  }
  const packs = new Map<string, Map<string, [number, number]>>();
  for (const hex of byKind.packs) {
    const key = `packs/${hex.slice(0, 2)}/${hex.slice(2)}`;
    const bytes = await remote.read(key);
    if ((await blake3Hex(bytes)) !== hex) problem(key, 'does not hash to its name');
    try {
      const index = packIndex(bytes);
      for (const [oid, [offset, length]] of index) {
        if ((await blake3Hex(bytes.subarray(offset, offset + length))) !== oid) problem(key, `chunk ${oid.slice(0, 12)} does not hash to its oid`);
      }
      packs.set(hex, index);
    } catch (err) {
      problem(key, `malformed pack (${(err as Error).message})`);
    }
    report.packs++;
  }
  const located = (key: string, pack: string | undefined, chunk: string, offset: number, length: number): void => {
    const index = pack === undefined ? undefined : packs.get(pack);
    if (!index) return problem(key, `names pack ${String(pack).slice(0, 12)}, which is not on the remote`);
    const at = index.get(chunk);
    if (!at || at[0] !== offset || at[1] !== length) problem(key, `chunk ${chunk.slice(0, 12)} is not at ${offset}+${length} of pack ${pack!.slice(0, 12)}`);
  };
  // Pages: page oid → [chunks, bytes] of each sound one.
  const pages = new Map<string, [number, number]>();
  for (const hex of byKind.pages) {
    const key = `pages/${hex.slice(0, 2)}/${hex.slice(2)}`;
    report.pages++;
    try {
      const bytes = await remote.read(key);
      if ((await blake3Hex(bytes)) !== hex) {
        problem(key, 'does not hash to its name');
        continue;
      }
      const page = JSON.parse(bytes.toString('utf8')) as { format: string; version: number; packs: string[]; chunks: Array<[string, number, number, number]> };
      if (page.format !== 'cpv-manifest-page' || page.version !== 1) problem(key, `format ${page.format} version ${page.version}`);
      let total = 0;
      for (const [chunk, length, p, offset] of page.chunks) {
        located(key, page.packs[p], chunk, offset, length);
        total += length;
      }
      pages.set(hex, [page.chunks.length, total]);
    } catch (err) {
      problem(key, `unreadable (${(err as Error).message})`);
    }
  }
  const manifests = new Set(byKind.manifests);
  for (const hex of byKind.manifests) {
    const key = `manifests/${hex.slice(0, 2)}/${hex.slice(2)}`;
    report.manifests++;
    try {
      const m = JSON.parse((await remote.read(key)).toString('utf8')) as {
        format: string;
        version: number;
        oid: string;
        size: number;
        packs: string[];
        chunks: Array<[string, number, number, number]>;
        pages: Array<[string, number, number]>;
      };
      if (m.format !== 'cpv-manifest' || m.oid !== `b3:${hex}`) problem(key, `describes ${m.oid} (format ${m.format})`);
      let total = 0;
      if (m.version === 2) {
        for (const [page, chunks, bytes] of m.pages) {
          const held = pages.get(page);
          if (!held) problem(key, `names page ${page.slice(0, 12)}, which is not on the remote (or is damaged)`);
          else if (held[0] !== chunks || held[1] !== bytes) problem(key, `page ${page.slice(0, 12)} holds ${held[0]} chunks of ${held[1]} bytes, not ${chunks} of ${bytes}`);
          total += bytes;
        }
      } else {
        if (m.version !== 1) problem(key, `version ${m.version}`);
        for (const [chunk, length, p, offset] of m.chunks) {
          located(key, m.packs[p], chunk, offset, length);
          total += length;
        }
      }
      if (total !== m.size) problem(key, `chunks sum to ${total}, not ${m.size}`);
    } catch (err) {
      problem(key, `unreadable (${(err as Error).message})`);
    }
  }
  for (const hex of byKind.trees) {
    const key = `trees/${hex.slice(0, 2)}/${hex.slice(2)}`;
    report.trees++;
    try {
      const t = JSON.parse((await remote.read(key)).toString('utf8')) as { format: string; oid: string; tree: string; packs: string[]; entries: Array<[number, number] | null> };
      if (t.format !== 'cpv-tree-index' || t.oid !== `b3:${hex}`) problem(key, `describes ${t.oid} (format ${t.format})`);
      if ((await blake3Hex(Buffer.from(t.tree, 'utf8'))) !== hex) problem(key, 'its listing does not hash to its oid');
      const lines = t.tree.split('\n').slice(1, -1);
      if (lines.length !== t.entries.length) problem(key, `${t.entries.length} locations for ${lines.length} files`);
      lines.forEach((line, i) => {
        const [, size, oid] = line.split(' ') as [string, string, string];
        const loc = t.entries[i];
        if (loc) located(key, t.packs[loc[0]], oid, loc[1], Number(size));
        else if (Number(size) > 0 && !manifests.has(oid)) problem(key, `file ${oid.slice(0, 12)} has neither a location nor a manifest`);
      });
    } catch (err) {
      problem(key, `unreadable (${(err as Error).message})`);
    }
  }
  return report;
}
