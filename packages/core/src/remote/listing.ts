import type { Backend } from '../backend/backend.js';
import { toFileOid } from '../util/oid.js';

/** An object of the remote layout (docs/format.md, "Remote layout"), as listed. */
export interface LayoutObject {
  kind: 'tree' | 'manifest' | 'page' | 'pack';
  /** Backend key: `packs/ab/cd…`. */
  key: string;
  /** File or tree oid (`b3:…`) for trees and manifests, hex for packs and manifest pages. */
  oid: string;
  size: number;
  /** Last modification, ms since the epoch (0 when the backend does not know). */
  mtimeMs: number;
}

/** The top-level prefixes of the layout, in write order. */
export const LAYOUT_PREFIXES = ['packs/', 'pages/', 'manifests/', 'trees/'] as const;

const LAYOUT_KEY = /^(trees|manifests|pages|packs)\/([0-9a-f]{2})\/([0-9a-f]{62})$/;
const KIND_OF = { trees: 'tree', manifests: 'manifest', pages: 'page', packs: 'pack' } as const;

/**
 * Every object of the remote layout under `prefixes` (some of {@link LAYOUT_PREFIXES}),
 * in no particular order. Keys outside the layout (the `cpv-remote.json` marker,
 * strays) are not listed, so nothing built on this ever touches them. Read-only.
 * Throws RemoteError when the backend fails.
 */
export async function listLayout(backend: Backend, prefixes: readonly string[] = LAYOUT_PREFIXES, signal?: AbortSignal): Promise<LayoutObject[]> {
  const out: LayoutObject[] = [];
  for (const prefix of prefixes) {
    for await (const info of backend.list(prefix, { signal })) {
      const m = LAYOUT_KEY.exec(info.key);
      if (!m) continue;
      const kind = KIND_OF[m[1] as keyof typeof KIND_OF];
      const hex = m[2]! + m[3]!;
      out.push({ kind, key: info.key, oid: kind === 'pack' || kind === 'page' ? hex : toFileOid(hex), size: info.size, mtimeMs: info.mtimeMs });
    }
  }
  return out;
}
