// The reference tools: which program comes from which Debian package, installing the
// missing ones when we can (root + apt-get), and loud notices for those we cannot.
import { spawnSync } from 'node:child_process';
import { have } from './proc.js';

/** program -> Debian package. `time` and `strace` are measuring instruments. */
export const PACKAGES = {
  b3sum: 'b3sum',
  restic: 'restic',
  borg: 'borgbackup',
  rclone: 'rclone',
  aws: 'awscli',
  'git-lfs': 'git-lfs',
  md5sum: 'coreutils',
  '/usr/bin/time': 'time',
  strace: 'strace',
};

function present(bin) {
  return bin.startsWith('/') ? spawnSync('test', ['-x', bin]).status === 0 : have(bin);
}

function aptInstall(pkgs, log) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const r = spawnSync('sh', ['-c', 'apt-get -qq -o DPkg::Lock::Timeout=300 update && apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "$@"', 'sh', ...pkgs], {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0) log(`apt-get install ${pkgs.join(' ')} failed:\n${`${r.stdout}${r.stderr}`.trim().split('\n').slice(-8).join('\n')}`);
  return r.status === 0;
}

/**
 * Make sure the programs are there. Installs missing ones with apt-get when running as
 * root (all at once, then one by one if that fails). Returns the set of programs
 * available afterwards; every one still missing is announced loudly.
 */
export function ensureTools(bins, { install = true, log = console.log } = {}) {
  const missing = bins.filter((b) => !present(b));
  if (missing.length > 0 && install) {
    const pkgs = [...new Set(missing.map((b) => PACKAGES[b]).filter(Boolean))];
    const canApt = process.getuid?.() === 0 && have('apt-get');
    if (!canApt) log(`!!! cannot install ${pkgs.join(' ')}: ${process.getuid?.() === 0 ? 'apt-get not found' : 'not root'}`);
    else {
      log(`installing Debian packages: ${pkgs.join(' ')}`);
      if (!aptInstall(pkgs, log)) for (const p of pkgs) aptInstall([p], log);
    }
  }
  const ok = new Set(bins.filter((b) => present(b)));
  for (const b of bins) if (!ok.has(b)) log(`!!! ${b} is not available (Debian package ${PACKAGES[b] ?? '?'}): measurements that need it are SKIPPED !!!`);
  return ok;
}

/** One-line version of a tool, for the results file. */
export function versionOf(bin) {
  const args = { aws: ['--version'], borg: ['--version'], restic: ['version'], rclone: ['version'], b3sum: ['--version'], 'git-lfs': ['version'], git: ['--version'] }[bin] ?? ['--version'];
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0] ?? '';
}
