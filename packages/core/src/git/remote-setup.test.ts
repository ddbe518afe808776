import { chmod, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, NotAGitRepoError, NotFoundError, RemoteError, UsageError } from '../errors.js';
import { gitSync, makeGitRepo } from '../testing/git-fixture.js';
import { explainRemoteFailure, parseGitUrl, setupGitRemote, sshCommandForKey } from './remote-setup.js';

let dir: string; // the work tree being configured
let tmp: string; // bare repositories, keys, fake ssh programs

const git = (...args: string[]): string => gitSync(dir, args).trim();
const configured = (key: string): string => {
  try {
    return git('config', '--local', '--get', key);
  } catch {
    return '';
  }
};

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

async function bare(name: string): Promise<string> {
  const p = path.join(tmp, name);
  gitSync(tmp, ['init', '--quiet', '--bare', p]);
  return p;
}

async function key(name: string, mode: number): Promise<string> {
  const p = path.join(tmp, name);
  await writeFile(p, '-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n-----END OPENSSH PRIVATE KEY-----\n');
  await chmod(p, mode);
  return p;
}

/** A program standing in for ssh that prints `stderr` and exits 255, as ssh does on failure. */
async function fakeSsh(stderr: string): Promise<string> {
  const p = path.join(tmp, `ssh-${Math.random().toString(36).slice(2)}`);
  await writeFile(p, `#!/bin/sh\nprintf '%s\\n' ${JSON.stringify(stderr)} >&2\nexit 255\n`);
  await chmod(p, 0o755);
  return p;
}

/** A TCP port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeEach(async () => {
  dir = await makeGitRepo('git-config');
  tmp = await realpath(await mkdtemp(path.join(tmpdir(), 'cpv-git-config-')));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(tmp, { recursive: true, force: true });
});

describe('parseGitUrl', () => {
  it.each([
    ['git@bitbucket.org:team/repo.git', 'ssh', 'bitbucket.org', undefined],
    ['bitbucket.org:team/repo.git', 'ssh', 'bitbucket.org', undefined],
    ['ssh://git@bitbucket.org:2222/team/repo.git', 'ssh', 'bitbucket.org', 2222],
    ['git+ssh://git@[::1]/team/repo.git', 'ssh', '::1', undefined],
    ['https://github.com/team/repo.git', 'https', 'github.com', undefined],
    ['http://git.internal:8080/team/repo.git', 'http', 'git.internal', 8080],
    ['git://git.internal/repo.git', 'git', 'git.internal', undefined],
    ['file:///srv/git/repo.git', 'file', undefined, undefined],
    ['/srv/git/repo.git', 'local', undefined, undefined],
  ])('%s is %s', (url, kind, host, port) => {
    const u = parseGitUrl(url, '/work');
    expect(u.kind).toBe(kind);
    expect(u.host).toBe(host);
    expect(u.port).toBe(port);
    expect(u.url).toBe(url);
  });

  it('makes a relative local path absolute (a colon after a slash is part of the path)', () => {
    expect(parseGitUrl('../repos/x.git', '/work/a')).toEqual({ kind: 'local', url: '/work/repos/x.git' });
    expect(parseGitUrl('./odd:name.git', '/work')).toEqual({ kind: 'local', url: '/work/odd:name.git' });
  });

  it.each(['', 'has space:repo.git', '-oProxyCommand=evil', 'ext::sh -c evil', 'ftp://host/repo.git', 'host:'])('rejects %j', (url) => {
    expect(() => parseGitUrl(url, '/work')).toThrow(UsageError);
  });
});

describe('explainRemoteFailure', () => {
  const ssh = parseGitUrl('git@bitbucket.org:team/repo.git', '/');
  it.each([
    ['Host key verification failed.', 'host-key-unknown', 'ssh-keyscan bitbucket.org >> ~/.ssh/known_hosts'],
    ['@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@', 'host-key-changed', 'ssh-keygen -R bitbucket.org'],
    ['Permissions 0644 for \'/k\' are too open.', 'key-permissions', 'chmod 600 /k'],
    ['Warning: Identity file /k not accessible: No such file or directory.', 'key-missing', '--ssh-key'],
    ['git@bitbucket.org: Permission denied (publickey).', 'auth-publickey', 'Bitbucket account'],
    ['repository access denied. forbidden. conq: repository does not exist.', 'not-found', 'repository path'],
    ['ssh: Could not resolve hostname bitbucket.org: Name or service not known', 'dns', 'host in the URL'],
    ['ssh: connect to host bitbucket.org port 22: Connection refused', 'connect', 'host and port'],
    ['block timeout reached', 'timeout', 'network'],
    ['something else entirely', 'other', 'git ls-remote'],
  ])('%s -> %s', (text, reason, hint) => {
    const why = explainRemoteFailure(text, ssh, '/k');
    expect(why.reason).toBe(reason);
    expect(why.hint).toContain(hint);
  });

  it('names GitHub settings for a GitHub host and https credential failures', () => {
    expect(explainRemoteFailure('Permission denied (publickey).', parseGitUrl('git@github.com:t/r.git', '/')).hint).toContain('GitHub account');
    expect(explainRemoteFailure("fatal: Authentication failed for 'https://github.com/t/r.git/'", parseGitUrl('https://github.com/t/r.git', '/')).reason).toBe('auth');
    expect(explainRemoteFailure("remote: Repository not found.\nfatal: repository 'https://github.com/t/r.git/' not found", parseGitUrl('https://github.com/t/r.git', '/')).reason).toBe('not-found');
  });
});

describe('setupGitRemote', () => {
  it('adds a remote at a local bare repository and verifies it', async () => {
    const origin = await bare('origin.git');
    const r = await setupGitRemote({ cwd: dir, url: origin });
    expect(r).toEqual({ remote: 'origin', url: origin, kind: 'local', action: 'added', verified: true, warnings: [] });
    expect(git('remote', 'get-url', 'origin')).toBe(origin);
  });

  it('replaces the URL of an existing remote, and is idempotent', async () => {
    const first = await bare('first.git');
    const second = await bare('second.git');
    git('remote', 'add', 'origin', first);
    const r = await setupGitRemote({ cwd: dir, url: second });
    expect(r).toMatchObject({ action: 'updated', previousUrl: first, verified: true });
    expect(git('remote', 'get-url', 'origin')).toBe(second);
    expect((await setupGitRemote({ cwd: dir, url: second })).action).toBe('unchanged');
    expect(git('remote')).toBe('origin');
  });

  it('takes another remote name and a relative path', async () => {
    await bare('up.git');
    const r = await setupGitRemote({ cwd: dir, url: path.relative(dir, path.join(tmp, 'up.git')), remote: 'upstream' });
    expect(r.url).toBe(path.join(tmp, 'up.git'));
    expect(git('remote', 'get-url', 'upstream')).toBe(path.join(tmp, 'up.git'));
  });

  it('with dryRun writes nothing', async () => {
    const origin = await bare('origin.git');
    const r = await setupGitRemote({ cwd: dir, url: origin, dryRun: true });
    expect(r).toMatchObject({ action: 'added', verified: true });
    expect(git('remote')).toBe('');
  });

  it('writes core.sshCommand with the absolute key path for this repository only', async () => {
    const k = await key('id_bitbucket', 0o600);
    const r = await setupGitRemote({ cwd: dir, url: 'git@bitbucket.org:team/repo.git', sshKey: path.relative(dir, k), verify: false, env: { PATH: process.env.PATH } });
    expect(r).toMatchObject({ action: 'added', kind: 'ssh', sshCommand: `ssh -i ${k} -o IdentitiesOnly=yes`, sshCommandAction: 'set', verified: false });
    expect(configured('core.sshCommand')).toBe(`ssh -i ${k} -o IdentitiesOnly=yes`);
    expect(git('remote', 'get-url', 'origin')).toBe('git@bitbucket.org:team/repo.git');
    const again = await setupGitRemote({ cwd: dir, url: 'git@bitbucket.org:team/repo.git', sshKey: k, verify: false, env: {} });
    expect(again.sshCommandAction).toBe('unchanged');
  });

  it('expands ~ in the key path and quotes paths with spaces', async () => {
    const k = await key('my key', 0o600);
    const r = await setupGitRemote({ cwd: dir, url: 'git@bitbucket.org:t/r.git', sshKey: '~/my key', verify: false, env: { HOME: tmp } });
    expect(r.sshCommand).toBe(`ssh -i '${k}' -o IdentitiesOnly=yes`);
    expect(sshCommandForKey("/it's")).toBe(`ssh -i '/it'\\''s' -o IdentitiesOnly=yes`);
  });

  it('refuses a key file others can read, naming it, before writing anything or running ssh', async () => {
    const k = await key('id_open', 0o644);
    const started = Date.now();
    const err = await rejection(setupGitRemote({ cwd: dir, url: 'git@127.0.0.1:team/repo.git', sshKey: k }));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(`SSH key ${k} is accessible by other users (mode 0644)`);
    expect((err as ConfigError).hint).toContain(`chmod 600 ${k}`);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(git('remote')).toBe('');
    expect(configured('core.sshCommand')).toBe('');
  });

  it('refuses a missing key file, a public key and a key with a non-SSH URL', async () => {
    const missing = await rejection(setupGitRemote({ cwd: dir, url: 'git@bitbucket.org:t/r.git', sshKey: path.join(tmp, 'nope') }));
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as NotFoundError).message).toContain(path.join(tmp, 'nope'));
    const pub = path.join(tmp, 'id.pub');
    await writeFile(pub, 'ssh-ed25519 AAAAC3Nza test\n');
    expect(await rejection(setupGitRemote({ cwd: dir, url: 'git@bitbucket.org:t/r.git', sshKey: pub }))).toBeInstanceOf(UsageError);
    const k = await key('id', 0o600);
    expect(await rejection(setupGitRemote({ cwd: dir, url: 'https://github.com/t/r.git', sshKey: k }))).toBeInstanceOf(UsageError);
    expect(git('remote')).toBe('');
  });

  it('rejects bad remote names and works only in a git repository', async () => {
    expect(await rejection(setupGitRemote({ cwd: dir, url: '/x.git', remote: '-f' }))).toBeInstanceOf(UsageError);
    expect(await rejection(setupGitRemote({ cwd: dir, url: '/x.git', remote: 'a..b' }))).toBeInstanceOf(UsageError);
    expect(await rejection(setupGitRemote({ cwd: tmp, url: '/x.git', verify: false }))).toBeInstanceOf(NotAGitRepoError);
  });

  it('explains a repository that does not exist, and keeps the remote for a retry', async () => {
    const err = await rejection(setupGitRemote({ cwd: dir, url: path.join(tmp, 'missing.git') }));
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).data).toMatchObject({ reason: 'not-found', remote: 'origin', saved: true });
    expect(git('remote', 'get-url', 'origin')).toBe(path.join(tmp, 'missing.git'));
  });

  it('says it cannot connect to an SSH port nobody listens on, quickly and without prompting', async () => {
    const port = await closedPort();
    const k = await key('id', 0o600);
    const started = Date.now();
    const err = await rejection(setupGitRemote({ cwd: dir, url: `ssh://git@127.0.0.1:${port}/team/repo.git`, sshKey: k, timeoutMs: 10_000 }));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).data.reason).toBe('connect');
    expect((err as RemoteError).message).toContain(`cannot connect to 127.0.0.1 port ${port}`);
    // Settings are written before the check, so fixing the network is enough.
    expect(configured('core.sshCommand')).toBe(`ssh -i ${k} -o IdentitiesOnly=yes`);
  });

  it.each([
    ['Host key verification failed.', 'host-key-unknown', 'ssh-keyscan bitbucket.org >> ~/.ssh/known_hosts'],
    ['git@bitbucket.org: Permission denied (publickey).', 'auth-publickey', 'Bitbucket'],
    ['conq: repository does not exist.', 'not-found', 'repository path'],
  ])('explains what ssh says: %s', async (stderr, reason, hint) => {
    const fake = await fakeSsh(stderr);
    // GIT_SSH_COMMAND wins over core.sshCommand in git; the check uses the same precedence.
    const err = await rejection(setupGitRemote({ cwd: dir, url: 'git@bitbucket.org:team/repo.git', env: { ...process.env, GIT_SSH_COMMAND: fake } }));
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).data.reason).toBe(reason);
    expect((err as RemoteError).hint).toContain(hint);
  });

  it('gives up on a remote that never answers', async () => {
    const slow = path.join(tmp, 'slow-ssh');
    await writeFile(slow, '#!/bin/sh\nexec sleep 5\n');
    await chmod(slow, 0o755);
    const started = Date.now();
    const err = await rejection(setupGitRemote({ cwd: dir, url: 'git@bitbucket.org:team/repo.git', timeoutMs: 800, env: { ...process.env, GIT_SSH_COMMAND: slow } }));
    expect(Date.now() - started).toBeLessThan(4000);
    expect((err as RemoteError).data.reason).toBe('timeout');
  });

  it('warns when GIT_SSH_COMMAND would hide the key', async () => {
    const k = await key('id', 0o600);
    const r = await setupGitRemote({ cwd: dir, url: 'git@bitbucket.org:t/r.git', sshKey: k, verify: false, env: { GIT_SSH_COMMAND: 'ssh -i /other' } });
    expect(r.warnings).toEqual([expect.stringContaining('GIT_SSH_COMMAND')]);
  });
});
