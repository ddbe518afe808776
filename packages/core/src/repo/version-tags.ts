import { FormatError } from '../errors.js';
import { listTagRefs, requireGit } from '../git/git.js';
import { hasVersionBlock, parseVersionBlock, type VersionBlock } from '../pointer/version-block.js';
import type { Repo } from './repo.js';

/** A version tag as read from git: its block, or why the block cannot be read. */
export interface VersionTag {
  name: string;
  /** Tagger date, ISO 8601. */
  date: string;
  /** The tagged commit. */
  commit: string | undefined;
  /** The user's message (the whole message when the block is unreadable). */
  message: string;
  block?: VersionBlock;
  /** Set when the tag has a block this cpv cannot read: the reason. */
  error?: string;
}

/**
 * Every version tag (annotated tags carrying a version block), oldest first, parsed.
 * A malformed block is reported in `error`, not thrown. Read-only. Throws
 * NotAGitRepoError.
 */
export async function versionTags(repo: Repo): Promise<VersionTag[]> {
  await requireGit(repo.root);
  const out: VersionTag[] = [];
  for (const t of await listTagRefs(repo.root)) {
    if (t.type !== 'tag' || !hasVersionBlock(t.message)) continue;
    try {
      const parsed = parseVersionBlock(t.message, t.name)!;
      out.push({ name: t.name, date: t.date, commit: t.commit, message: parsed.message, block: parsed.block });
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      out.push({ name: t.name, date: t.date, commit: t.commit, message: t.message, error: err.message });
    }
  }
  return out;
}
