import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { AddResult, CheckoutResult, DiffResult, FetchResult, PushResult, StatusItem } from '../../packages/core/src/index.js';

/** The monorepo root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The built CLI entry point; run with the current Node binary. */
export const CPV_BIN = join(REPO_ROOT, 'packages', 'cli', 'bin', 'run.js');

/** What one cpv run produced. */
export interface CpvResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface CpvOptions {
  /** Extra environment (e.g. `CPV_JOBS`); `undefined` values are dropped. */
  env?: Record<string, string | undefined>;
  /** HOME for the run (default: the one set by `useHome`). */
  home?: string;
  /** Kill the run after this many ms (default 120 s). */
  timeout?: number;
}

let sandbox: string | undefined;

/**
 * Use `dir` (created if needed; put it inside the test's temp directory so it is
 * removed with it) as HOME for every cpv and git run of this test file. cpv reads its
 * user config from `$XDG_CONFIG_HOME/cpv/config` and git reads `~/.gitconfig`:
 * pointing both here keeps the developer's own configuration out of the tests.
 */
export function useHome(dir: string): string {
  mkdirSync(join(dir, '.config'), { recursive: true });
  sandbox = dir;
  return dir;
}

/** The HOME set by `useHome`; throws if the test file did not set one. */
export function sandboxHome(): string {
  if (sandbox === undefined) throw new Error('call useHome(join(tempRoot, "home")) in beforeAll before running cpv or git');
  return sandbox;
}

/**
 * The environment every child (cpv and git) runs with: nothing inherited but PATH,
 * so stray `CPV_*`, `GIT_*` or config variables of the developer cannot change results.
 */
export function childEnv(opts: Pick<CpvOptions, 'env' | 'home'> = {}): Record<string, string> {
  const home = opts.home ?? sandboxHome();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    TMPDIR: tmpdir(),
    LANG: 'C.UTF-8',
    NO_COLOR: '1',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
  };
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v !== undefined) env[k] = v;
  return env;
}

/**
 * Throw a clear error unless the CLI has been built. Call from `beforeAll`: the e2e
 * tests run the built binary, never the sources.
 */
export function assertBuilt(): void {
  const needed = [
    join(REPO_ROOT, 'packages', 'cli', 'dist', 'commands', 'add.js'),
    join(REPO_ROOT, 'packages', 'cli', 'oclif.manifest.json'),
    join(REPO_ROOT, 'packages', 'core', 'dist', 'index.js'),
  ];
  const missing = needed.filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(`cpv is not built (missing ${missing.map((p) => p.slice(REPO_ROOT.length + 1)).join(', ')}): run node scripts/build.js first`);
  }
}

/** Run `cpv ARGS` in `cwd`. Never rejects on a non-zero exit; inspect `exitCode`. */
export async function runCpv(cwd: string, args: readonly string[], opts: CpvOptions = {}): Promise<CpvResult> {
  // cpv looks for `.cpv/` upwards from its working directory: never let a test run it
  // inside this checkout, where it would find or create the project's own.
  if (!relative(REPO_ROOT, resolve(cwd)).startsWith('..')) throw new Error(`refusing to run cpv inside the source tree: ${cwd}`);
  const r = await execa(process.execPath, [CPV_BIN, ...args], {
    cwd,
    env: childEnv(opts),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: opts.timeout ?? 120_000,
    stripFinalNewline: false,
  });
  if (r.timedOut) throw new Error(`cpv ${args.join(' ')} timed out in ${cwd}\nstderr:\n${r.stderr}`);
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A `--json` run: the parsed stdout next to the exit code and stderr. */
export interface CpvJsonResult<T> extends CpvResult {
  json: T;
}

/**
 * Run `cpv ARGS --json` and parse stdout, whatever the exit code (for error cases).
 * Throws if stdout is not exactly one JSON document.
 */
export async function cpvJsonResult<T = unknown>(cwd: string, args: readonly string[], opts: CpvOptions = {}): Promise<CpvJsonResult<T>> {
  const r = await runCpv(cwd, [...args, '--json'], opts);
  let json: T;
  try {
    json = JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`cpv ${args.join(' ')} --json: stdout is not JSON (exit ${r.exitCode})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
  return { ...r, json };
}

/**
 * Run `cpv ARGS --json`, require exit code 0 and return the parsed result object.
 * On failure the error carries the full stdout and stderr.
 */
export async function cpvJson<T = any>(cwd: string, args: readonly string[], opts: CpvOptions = {}): Promise<T> {
  const r = await runCpv(cwd, [...args, '--json'], opts);
  if (r.exitCode !== 0) {
    throw new Error(`cpv ${args.join(' ')} --json exited ${r.exitCode} in ${cwd}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`cpv ${args.join(' ')} --json: stdout is not JSON\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}

/** Run `cpv ARGS` and require exit code 0. */
export async function cpvOk(cwd: string, args: readonly string[], opts: CpvOptions = {}): Promise<CpvResult> {
  const r = await runCpv(cwd, args, opts);
  if (r.exitCode !== 0) throw new Error(`cpv ${args.join(' ')} exited ${r.exitCode} in ${cwd}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

/**
 * The top-level `key: value` lines of a pointer file, as strings (nested `meta` keys
 * come back as `meta.<key>`). A deliberately naive reader: pointers are flat YAML, and
 * the tests should not share cpv's parser.
 */
export async function readPointerFile(file: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let section = '';
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const m = /^(\s*)([A-Za-z_][\w.-]*):\s*(.*)$/.exec(line);
    if (!m) continue;
    const [, indent, key, value] = m;
    if (indent === '') {
      section = value === '' ? key! : '';
      if (value !== '') out[key!] = value!;
    } else if (section) out[`${section}.${key}`] = value!;
  }
  return out;
}

/**
 * Where the object named `oid` (`b3:<hex>` or bare hex) lives under a fanned-out
 * directory such as `cache/files`, `remote/packs` or `remote/trees`: `<dir>/<2 hex>/<62 hex>`
 * (docs/format.md).
 */
export function objectPath(dir: string, oid: string): string {
  const hex = oid.startsWith('b3:') ? oid.slice(3) : oid;
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`not an oid: ${oid}`);
  return join(dir, hex.slice(0, 2), hex.slice(2));
}

// Shapes of `--json` results. The CLI prints core's result objects, so the tests read
// them with core's types (a type-only import: erased at run time, the binary is what runs).
export type AddJson = AddResult;
export type PushJson = PushResult & { remote: string };
export type FetchJson = FetchResult & { remote: string };
export type PullJson = { fetch: FetchJson; checkout: CheckoutResult };
export type CheckoutJson = CheckoutResult;
export type StatusJson = { items: StatusItem[]; clean: boolean };
export type DiffJson = DiffResult;
/** What every command prints on stdout with `--json` when it fails. */
export type ErrorJson = { error: { code: string; message: string; hint?: string; data?: Record<string, unknown> } };
