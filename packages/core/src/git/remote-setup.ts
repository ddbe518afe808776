import { open, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { SimpleGit } from 'simple-git';
import { loadSimpleGit } from './load-simple-git.js';
import { ConfigError, NotFoundError, RemoteError, UsageError } from '../errors.js';
import { gitRemotes, requireGit } from './git.js';

/** A git client rooted at `dir` that may read and write `core.sshCommand` (simple-git guards it). */
async function client(dir: string): Promise<SimpleGit> {
  return (await loadSimpleGit())({ baseDir: dir, binary: 'git', maxConcurrentProcesses: 4, trimmed: false, unsafe: { allowUnsafeSshCommand: true } });
}

/** How a git remote URL reaches the repository. */
export type GitUrlKind = 'ssh' | 'https' | 'http' | 'git' | 'file' | 'local';

/** A git remote URL, classified. */
export interface GitUrl {
  kind: GitUrlKind;
  /** The URL to record: as given, except that a local path is made absolute. */
  url: string;
  /** Host name, for network URLs. */
  host?: string;
  /** Port, when the URL names one. */
  port?: number;
}

const EXAMPLES = 'git@bitbucket.org:team/repo.git, ssh://git@host:2222/team/repo.git, https://github.com/team/repo.git or a path to a repository on disk';

/**
 * Classify a git remote URL as git reads it: `scheme://…` URLs (ssh, git+ssh,
 * https, http, git, file), the scp-like `[user@]host:path` (only when no `/` comes
 * before the first `:`), else a local path, resolved against `cwd`. Pure. Throws
 * UsageError for an empty URL, one with spaces or control characters, one starting
 * with `-`, an unknown scheme, or a remote-helper address (`transport::address`).
 */
export function parseGitUrl(url: string, cwd: string): GitUrl {
  const bad = (why: string): UsageError => new UsageError(`${JSON.stringify(url)} is not a git remote URL: ${why}`, { hint: `use ${EXAMPLES}` });
  if (url === '') throw bad('it is empty');
  if (/[\s\0-\x1f\x7f]/.test(url)) throw bad('it contains spaces or control characters');
  if (url.startsWith('-')) throw bad('it starts with "-"');
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(url)) throw bad('remote-helper addresses (transport::address) are not supported');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    const kinds: Record<string, GitUrlKind> = { ssh: 'ssh', 'git+ssh': 'ssh', 'ssh+git': 'ssh', https: 'https', http: 'http', git: 'git', file: 'file' };
    const kind = kinds[scheme];
    if (!kind) throw bad(`unknown scheme "${scheme}://"`);
    if (kind === 'file') return { kind, url };
    let parsed: URL;
    try {
      parsed = new URL(url.replace(/^[^:]+:/, 'http:'));
    } catch {
      throw bad('it does not parse as a URL');
    }
    if (!parsed.hostname) throw bad('it names no host');
    return { kind, url, host: parsed.hostname.replace(/^\[|\]$/g, ''), ...(parsed.port ? { port: Number(parsed.port) } : {}) };
  }
  const colon = url.indexOf(':');
  const slash = url.indexOf('/');
  if (colon > 0 && (slash < 0 || colon < slash)) {
    // scp-like syntax: [user@]host:path, host possibly in brackets.
    const hostPart = url.slice(0, colon);
    const host = hostPart.slice(hostPart.lastIndexOf('@') + 1).replace(/^\[|\]$/g, '');
    if (!host) throw bad('it names no host');
    if (url.slice(colon + 1) === '') throw bad('it names no repository path after ":"');
    return { kind: 'ssh', url, host };
  }
  return { kind: 'local', url: isAbsolute(url) ? url : resolve(cwd, url) };
}

/** Quote a word for the POSIX shell that git runs `core.sshCommand` through, only when needed. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_\/.,:@%+=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The `core.sshCommand` that makes git use exactly this key: `ssh -i KEY -o IdentitiesOnly=yes`. */
export function sshCommandForKey(absKey: string): string {
  return `ssh -i ${shellWord(absKey)} -o IdentitiesOnly=yes`;
}

/**
 * Check that `absKey` can serve as an SSH private key before anything runs ssh: it
 * exists, is a regular file, is not the `.pub` half (checked first: a public key is
 * normally world-readable), and is accessible by its owner only (ssh silently ignores a key that others can read, which then looks like a
 * rejected key). Throws NotFoundError, UsageError or ConfigError naming the file.
 */
export async function checkSshKey(absKey: string): Promise<void> {
  let st;
  try {
    st = await stat(absKey);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`SSH key ${absKey} does not exist`, {
        hint: `pass the path of your private key (e.g. ~/.ssh/id_ed25519), or create one with \`ssh-keygen -t ed25519 -f ${absKey}\``,
        data: { file: absKey },
      });
    }
    throw err;
  }
  if (!st.isFile()) throw new UsageError(`SSH key ${absKey} is not a regular file`, { hint: 'pass the path of your private key file (e.g. ~/.ssh/id_ed25519)' });
  const head = (await readHead(absKey)).slice(0, 64);
  if (absKey.endsWith('.pub') || /^(ssh-|ecdsa-|sk-)/.test(head)) {
    throw new UsageError(`${absKey} is a public key; git needs the private key`, { hint: `pass ${absKey.replace(/\.pub$/, '')} instead (the file without .pub)` });
  }
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(`SSH key ${absKey} is accessible by other users (mode ${mode.toString(8).padStart(4, '0')}); ssh refuses to use such a key`, {
      hint: `restrict it to yourself: \`chmod 600 ${absKey}\``,
      data: { file: absKey, mode: mode.toString(8).padStart(4, '0') },
    });
  }
}

/** The first bytes of a file as text ('' if unreadable: ssh will say why). */
async function readHead(file: string): Promise<string> {
  const fh = await open(file, 'r').catch(() => undefined);
  if (!fh) return '';
  try {
    const buf = Buffer.alloc(64);
    const { bytesRead } = await fh.read(buf, 0, 64, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Why a git remote did not answer, in terms a user can act on. */
export type RemoteFailure = 'host-key-unknown' | 'host-key-changed' | 'key-permissions' | 'key-missing' | 'auth-publickey' | 'auth' | 'not-found' | 'dns' | 'connect' | 'timeout' | 'other';

/**
 * Turn git's error text from `git ls-remote` into a reason, a sentence and a hint.
 * `url` and `key` (the private key in use, if known) make the hint concrete. Pure.
 */
export function explainRemoteFailure(text: string, url: GitUrl, key?: string): { reason: RemoteFailure; message: string; hint: string } {
  const host = url.host ?? 'HOST';
  const where = url.host ? `${url.host}${url.port ? ` port ${url.port}` : ''}` : url.url;
  const scanPort = url.port && url.port !== 22 ? `-p ${url.port} ` : '';
  const keyName = key ?? 'your key';
  const pub = key ? `${key}.pub` : 'your public key (~/.ssh/id_ed25519.pub)';
  const account = /bitbucket/i.test(host) ? 'your Bitbucket account (Personal settings > SSH keys) or the repository (Repository settings > Access keys)' : /github/i.test(host) ? 'your GitHub account (Settings > SSH and GPG keys) or the repository (Settings > Deploy keys)' : 'your account on the git server';
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED/i.test(text)) {
    return { reason: 'host-key-changed', message: `the SSH host key of ${host} has changed since you last connected`, hint: `make sure the new key is genuine (the provider publishes its fingerprints), then \`ssh-keygen -R ${host}\` and \`ssh-keyscan ${scanPort}${host} >> ~/.ssh/known_hosts\`` };
  }
  if (/Host key verification failed|No .*host key is known/i.test(text)) {
    return { reason: 'host-key-unknown', message: `the SSH host key of ${host} is not known on this machine (host key verification failed)`, hint: `add it: \`ssh-keyscan ${scanPort}${host} >> ~/.ssh/known_hosts\`, and check the fingerprint against the one ${host} publishes` };
  }
  if (/UNPROTECTED PRIVATE KEY FILE|are too open/i.test(text)) {
    return { reason: 'key-permissions', message: `ssh refused the key ${keyName}: other users can read it`, hint: `\`chmod 600 ${keyName}\`` };
  }
  if (/no such identity|Identity file .* not accessible|Load key .*No such file/i.test(text)) {
    return { reason: 'key-missing', message: `the SSH key ${keyName} does not exist`, hint: 'pass the path of your private key with --ssh-key' };
  }
  if (/Permission denied \(publickey/i.test(text)) {
    return { reason: 'auth-publickey', message: `${host} did not accept the SSH key (permission denied, publickey)`, hint: `add ${pub} to ${account}; or pass the key it knows with --ssh-key` };
  }
  if (/Authentication failed|could not read (Username|Password)|terminal prompts disabled|HTTP Basic: Access denied|returned error: 40[13]/i.test(text)) {
    return { reason: 'auth', message: `${host} asked for credentials that git does not have`, hint: 'use an SSH URL with --ssh-key, or set up a credential helper with an app password / access token (`git config credential.helper store`)' };
  }
  if (/Could not resolve host|Name or service not known|nodename nor servname|Temporary failure in name resolution/i.test(text)) {
    return { reason: 'dns', message: `cannot resolve the host name ${host}`, hint: 'check the host in the URL for typos, and your network or VPN' };
  }
  if (/Connection refused|Connection timed out|Operation timed out|No route to host|Network is unreachable|Couldn't connect to server|Failed to connect|Connection reset|Connection closed by/i.test(text)) {
    return { reason: 'connect', message: `cannot connect to ${where}`, hint: 'check the host and port in the URL, and that your network (firewall, VPN, proxy) lets you reach it' };
  }
  if (/ssh: (command )?not found|ssh: No such file/i.test(text)) {
    return { reason: 'other', message: 'the ssh program is not installed', hint: 'install an SSH client (e.g. `apt-get install openssh-client`)' };
  }
  if (/Repository not found|repository does not exist|does not appear to be a git repository|repository .* not found|not found|returned error: 404|No such file or directory/i.test(text)) {
    return { reason: 'not-found', message: `the repository ${url.url} was not found (or you may not see it)`, hint: 'check the repository path in the URL (team/repo.git) and that your account has access to it' };
  }
  if (/block timeout reached|timed out/i.test(text)) {
    return { reason: 'timeout', message: `${where} did not answer in time`, hint: 'check your network, or run `git ls-remote` yourself to see where it stops' };
  }
  return { reason: 'other', message: 'git ls-remote failed', hint: 'run `git ls-remote URL` yourself to see the full error' };
}

/**
 * Environment variables a non-interactive `git ls-remote` has no use for: editors and
 * pagers, and the askpass programs that could open a password window. simple-git
 * refuses to run with most of them set, so they are left out of the probe.
 */
const NOT_FOR_PROBE = new Set(['EDITOR', 'VISUAL', 'PAGER', 'GIT_EDITOR', 'GIT_SEQUENCE_EDITOR', 'GIT_PAGER', 'GIT_EXTERNAL_DIFF', 'GIT_ASKPASS', 'SSH_ASKPASS']);

/**
 * Ask `url` for its branches with `git ls-remote --heads`, never prompting: SSH runs in
 * BatchMode with a connect timeout, terminal prompts are off, and the whole call is
 * abandoned after `timeoutMs` without output. `sshCommand` is the ssh command git will
 * use (the key's, or the user's own). Returns undefined on success, else git's error
 * text without its generic closing lines.
 */
export async function probeGitUrl(dir: string, url: string, opts: { sshCommand: string; timeoutMs: number; env: Record<string, string | undefined> }): Promise<string | undefined> {
  const connectTimeout = Math.max(1, Math.min(10, Math.floor(opts.timeoutMs / 2000)));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.env)) if (v !== undefined && !NOT_FOR_PROBE.has(k.toUpperCase())) env[k] = v;
  env.GIT_TERMINAL_PROMPT = '0';
  env.GIT_SSH_COMMAND = `${opts.sshCommand} -o BatchMode=yes -o ConnectTimeout=${connectTimeout}`;
  const git = (await loadSimpleGit())({
    baseDir: dir,
    timeout: { block: opts.timeoutMs },
    // The user's own config locations, proxy and ssh settings shape how git reaches the
    // remote, exactly as in their plain `git fetch`: simple-git refuses them unless told.
    unsafe: { allowUnsafeSshCommand: true, allowUnsafeConfigPaths: true, allowUnsafeConfigEnvCount: true, allowUnsafeGitProxy: true, allowUnsafeExec: true, allowUnsafeTemplateDir: true },
    // simple-git refuses GIT_* variables it is not told about: these are the user's own plus the two above.
    allowEnvironment: Object.keys(env).filter((k) => /^GIT_/i.test(k)),
  }).env(env);
  try {
    await git.raw(['ls-remote', '--heads', url]);
    return undefined;
  } catch (err) {
    const text = String((err as Error).message ?? err);
    const lines = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !/^(fatal: Could not read from remote repository\.?|Please make sure you have the correct access rights|and the repository exists\.?)$/.test(l));
    return (lines.length > 0 ? lines : [text.trim()]).slice(-3).join(' ');
  }
}

export interface GitRemoteSetupOptions {
  /** A directory inside the git work tree. */
  cwd: string;
  /** Remote URL: SSH (`git@host:team/repo.git`, `ssh://…`), https, or a local path. */
  url: string;
  /** Private key to use for this repository (sets `core.sshCommand`); SSH URLs only. */
  sshKey?: string;
  /** Remote name (default `origin`). */
  remote?: string;
  /** Check the remote with `git ls-remote` (default true). */
  verify?: boolean;
  dryRun?: boolean;
  /** Give up on `git ls-remote` after this long without output (default 20 s). */
  timeoutMs?: number;
  /** Environment for git and ssh (the CLI passes process.env; default process.env). */
  env?: Record<string, string | undefined>;
}

export interface GitRemoteSetupResult {
  remote: string;
  url: string;
  kind: GitUrlKind;
  /** What happened to the remote (or would, with dryRun). */
  action: 'added' | 'updated' | 'unchanged';
  /** The URL before, when it changed. */
  previousUrl?: string;
  /** `core.sshCommand` for this repository when a key was given, and whether it changed. */
  sshCommand?: string;
  sshCommandAction?: 'set' | 'unchanged';
  /** Whether `git ls-remote` answered (false when not asked to verify). */
  verified: boolean;
  /** Things the user should know that do not stop the setup. */
  warnings: string[];
}

const REMOTE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/;

/**
 * Point git remote `remote` (default origin) of the repository around `cwd` at `url`
 * (add it, or set its URL), optionally make git use `sshKey` for this repository
 * (`core.sshCommand = ssh -i KEY -o IdentitiesOnly=yes`), then check it with
 * `git ls-remote`, bounded in time and never prompting. Everything that can be
 * checked locally is checked before anything is written: the URL (UsageError), the
 * key file (NotFoundError if missing, ConfigError if others may read it, checked
 * without running ssh). A remote that does not answer throws RemoteError with
 * `data.reason` (see RemoteFailure) and a hint; the settings stay written, so
 * fixing the cause and running again is enough. Idempotent. With dryRun nothing is
 * written, but the URL is still checked.
 */
export async function setupGitRemote(opts: GitRemoteSetupOptions): Promise<GitRemoteSetupResult> {
  const name = opts.remote ?? 'origin';
  if (!REMOTE_NAME.test(name) || name.includes('..') || name.endsWith('.lock') || name.endsWith('.')) {
    throw new UsageError(`invalid git remote name ${JSON.stringify(name)}`, { hint: 'use letters, digits, ".", "_" and "-", e.g. origin' });
  }
  const url = parseGitUrl(opts.url, opts.cwd);
  const env = opts.env ?? process.env;
  // A quoted `~/.ssh/key` reaches us unexpanded: expand it as the shell would have.
  const home = env.HOME;
  const keyArg = opts.sshKey !== undefined && home && /^~(\/|$)/.test(opts.sshKey) ? home + opts.sshKey.slice(1) : opts.sshKey;
  const key = keyArg !== undefined ? resolve(opts.cwd, keyArg) : undefined;
  if (key !== undefined && url.kind !== 'ssh') {
    throw new UsageError(`--ssh-key only applies to SSH URLs, and ${opts.url} is ${url.kind === 'local' || url.kind === 'file' ? 'a local path' : `an ${url.kind} URL`}`, { hint: 'use an SSH URL such as git@bitbucket.org:team/repo.git, or leave out --ssh-key' });
  }
  if (key !== undefined) await checkSshKey(key);
  const top = await requireGit(opts.cwd);
  const git = await client(top);
  const warnings: string[] = [];

  const previous = (await gitRemotes(top)).find((r) => r.name === name)?.url;
  const action = previous === undefined ? 'added' : previous === url.url ? 'unchanged' : 'updated';
  const result: GitRemoteSetupResult = { remote: name, url: url.url, kind: url.kind, action, ...(action === 'updated' ? { previousUrl: previous } : {}), verified: false, warnings };
  // An unset key is exit code 1 without output: simple-git resolves that with ''.
  const configured = (await git.raw(['config', '--local', '--get', 'core.sshCommand'])).trim() || undefined;
  if (key !== undefined) {
    result.sshCommand = sshCommandForKey(key);
    result.sshCommandAction = configured === result.sshCommand ? 'unchanged' : 'set';
    if (env.GIT_SSH_COMMAND) warnings.push('GIT_SSH_COMMAND is set in your environment and overrides core.sshCommand: git will not use this key while it is set');
  }

  if (!opts.dryRun) {
    if (action === 'added') await git.raw(['remote', 'add', name, url.url]);
    else if (action === 'updated') await git.raw(['remote', 'set-url', name, url.url]);
    if (result.sshCommandAction === 'set') await git.raw(['config', '--local', 'core.sshCommand', result.sshCommand!]);
  }
  if (opts.verify === false) return result;

  // The ssh command git itself will use: the environment's, else this repository's.
  const sshCommand = env.GIT_SSH_COMMAND || result.sshCommand || configured || 'ssh';
  const failure = await probeGitUrl(top, url.url, { sshCommand, timeoutMs: opts.timeoutMs ?? 20_000, env });
  if (failure !== undefined) {
    const why = explainRemoteFailure(failure, url, key);
    const saved = opts.dryRun ? '' : ` (the remote ${name} is saved; fix this and run the command again)`;
    throw new RemoteError(`git remote ${name} (${url.url}) does not answer: ${why.message}${saved}`, {
      hint: why.hint,
      data: { reason: why.reason, remote: name, url: url.url, detail: failure, saved: !opts.dryRun },
    });
  }
  result.verified = true;
  return result;
}

/**
 * Check one configured git remote of the repository at `dir` the way `git fetch` would
 * reach it (the environment's GIT_SSH_COMMAND, else this repository's core.sshCommand),
 * never prompting. Returns undefined when it answers, else what went wrong and what to
 * do, as explainRemoteFailure words it.
 */
export async function checkGitRemote(
  dir: string,
  remote: { name: string; url: string },
  opts: { timeoutMs?: number; env?: Record<string, string | undefined> } = {},
): Promise<{ message: string; hint: string } | undefined> {
  const env = opts.env ?? process.env;
  const configured = (await (await loadSimpleGit())({ baseDir: dir }).raw(['config', '--get', 'core.sshCommand']).catch(() => '')).trim() || undefined;
  const sshCommand = env.GIT_SSH_COMMAND || configured || 'ssh';
  const failure = await probeGitUrl(dir, remote.url, { sshCommand, timeoutMs: opts.timeoutMs ?? 20_000, env });
  if (failure === undefined) return undefined;
  let url: GitUrl;
  try {
    url = parseGitUrl(remote.url, dir);
  } catch {
    return { message: failure, hint: 'check the URL (`git remote -v`) and your credentials' };
  }
  const why = explainRemoteFailure(failure, url);
  return { message: why.message, hint: why.hint };
}
