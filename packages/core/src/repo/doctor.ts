import { randomBytes } from 'node:crypto';
import { rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CpvError } from '../errors.js';
import { hashImpl, loadHasher } from '../hash/blake3.js';
import { gitRemotes, gitTopLevel } from '../git/git.js';
import { checkGitRemote } from '../git/remote-setup.js';
import { Remote } from '../remote/remote.js';
import type { Repo } from './repo.js';

/** One check and its outcome. */
export interface DoctorCheck {
  /** What was checked, e.g. `remote origin: write`. */
  check: string;
  ok: boolean;
  /** What was found (or went wrong). */
  detail: string;
  /** What to do about a failure. */
  hint?: string;
}

export interface DoctorOptions {
  /** Remotes to probe (default: every configured remote). */
  remotes?: readonly string[];
  /** Also ask every git remote with `git ls-remote` (default true). */
  git?: boolean;
  onCheck?: (c: DoctorCheck) => void;
}

/**
 * Check that this workspace can do its job, without changing anything that matters:
 * the cache is writable; each cpv remote is reachable and the credentials can list,
 * write, read back and delete a probe object (each permission reported on its own);
 * each git remote answers `git ls-remote`. Never throws for a failed check: failures
 * are results. Probe objects live under `tmp/` on the remote and are removed.
 */
export async function doctor(repo: Repo, opts: DoctorOptions = {}): Promise<{ ok: boolean; checks: DoctorCheck[] }> {
  const checks: DoctorCheck[] = [];
  const report = (c: DoctorCheck): void => {
    checks.push(c);
    opts.onCheck?.(c);
  };

  await loadHasher();
  report({ check: 'hashing', ok: true, detail: hashImpl() === 'native' ? 'native BLAKE3' : 'WebAssembly BLAKE3 (the native binding did not load; slower)' });

  const probe = join(repo.cache.tmpDir, `doctor-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(probe, 'cpv doctor\n');
    if ((await readFile(probe, 'utf8')) !== 'cpv doctor\n') throw new Error('read back different bytes');
    report({ check: 'cache', ok: true, detail: `${repo.cache.dir} is writable` });
  } catch (err) {
    report({ check: 'cache', ok: false, detail: `${repo.cache.dir}: ${(err as Error).message}`, hint: 'fix the permissions, or set another cache with `cpv config cache.dir DIR`' });
  } finally {
    await rm(probe, { force: true });
  }

  const names = opts.remotes ?? Object.keys(repo.config.remotes);
  if (names.length === 0) report({ check: 'remotes', ok: true, detail: 'no cpv remote configured (add one with `cpv remote add`)' });
  for (const name of names) await probeRemote(repo, name, report);

  if (opts.git !== false) {
    const top = await gitTopLevel(repo.root);
    if (!top) report({ check: 'git', ok: true, detail: 'not a git repository (cpv works without one, but cannot version pointers)' });
    else {
      const remotes = await gitRemotes(top);
      if (remotes.length === 0) report({ check: 'git', ok: true, detail: 'no git remote configured' });
      for (const r of remotes) {
        const failure = await checkGitRemote(top, r);
        report(
          failure === undefined
            ? { check: `git remote ${r.name}`, ok: true, detail: `${r.url} answers git ls-remote` }
            : { check: `git remote ${r.name}`, ok: false, detail: `${r.url}: ${failure.message}`, hint: failure.hint },
        );
      }
    }
  }
  return { ok: checks.every((c) => c.ok), checks };
}

async function probeRemote(repo: Repo, name: string, report: (c: DoctorCheck) => void): Promise<void> {
  let remote: Remote;
  try {
    remote = await Remote.open(repo.config, repo.root, repo.cache, name);
  } catch (err) {
    report(failure(`remote ${name}`, err));
    return;
  }
  const key = `tmp/doctor-${randomBytes(6).toString('hex')}`;
  const body = Buffer.from(`cpv doctor probe ${key}\n`);
  const step = async (what: string, fn: () => Promise<string>): Promise<boolean> => {
    try {
      report({ check: `remote ${name}: ${what}`, ok: true, detail: await fn() });
      return true;
    } catch (err) {
      report(failure(`remote ${name}: ${what}`, err, what));
      return false;
    }
  };
  try {
    if (
      !(await step('list', async () => {
        for await (const _ of remote.backend.list('cpv-remote.json')) break;
        return `${remote.backend.location} is reachable`;
      }))
    ) {
      return;
    }
    if (!(await step('write', async () => (await remote.backend.save(key, body), `wrote ${key}`)))) return;
    await step('read', async () => {
      const got = await remote.backend.load(key);
      if (Buffer.compare(Buffer.from(got), body) !== 0) throw new Error('read back different bytes than were written');
      return `read ${key} back`;
    });
    await step('delete', async () => {
      await remote.backend.remove(key);
      if (await remote.backend.exists(key)) throw new Error('the probe object is still there after delete');
      return `deleted ${key}`;
    });
  } finally {
    await remote.close();
  }
}

const PERMISSION: Record<string, string> = { list: 's3:ListBucket', write: 's3:PutObject', read: 's3:GetObject', delete: 's3:DeleteObject' };

function failure(check: string, err: unknown, op?: string): DoctorCheck {
  if (err instanceof CpvError) {
    const code = err.data.code as string | undefined;
    // A rejected key or signature is also a 403, but the fix is the key, not a permission.
    const rejected = code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || code === 'InvalidToken' || code === 'ExpiredToken';
    const denied = !rejected && (code === 'AccessDenied' || err.data.status === 403);
    return {
      check,
      ok: false,
      detail: denied && op ? `access denied: the credentials lack ${PERMISSION[op] ?? op} (${err.message})` : err.message,
      hint: denied && op ? `grant ${PERMISSION[op] ?? op} on the bucket to these credentials` : err.hint,
    };
  }
  return { check, ok: false, detail: (err as Error)?.message ?? String(err) };
}
