// Running measured commands: wall time, peak RSS (GNU time), bytes read (/proc/<pid>/io
// of a reaped child lands in its parent's counters) and content bytes read (strace).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const GNU_TIME = '/usr/bin/time';

/** True when a program is on PATH. */
export function have(bin) {
  return spawnSync('sh', ['-c', `command -v "$1" >/dev/null 2>&1`, 'sh', bin]).status === 0;
}

/** Human-readable command line, for logs and the results file. */
export function showCmd(cmd, args) {
  return [cmd, ...args].map((a) => (/^[\w./@%+=:,-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

let scratch;
function scratchFile(name) {
  scratch ??= mkdtempSync(join(tmpdir(), 'cpv-bench-proc-'));
  return join(scratch, name);
}
process.on('exit', () => scratch && rmSync(scratch, { recursive: true, force: true }));

/**
 * Run a command to completion. Returns { stdout, stderr, wall (s), rssKiB, user, sys }.
 * Throws (with the tail of stderr) when it exits non-zero, unless `allowFail`.
 */
export function run(cmd, args, { cwd, env, allowFail = false, input } = {}) {
  const useTime = existsSync(GNU_TIME);
  const tf = scratchFile('time.out');
  const argv = useTime ? [GNU_TIME, ['-f', '%M %U %S', '-o', tf, cmd, ...args]] : [cmd, args];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv[1], { cwd, env, input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.error) throw new Error(`${showCmd(cmd, args)}: ${r.error.message}`);
  let rssKiB;
  let user;
  let sys;
  if (useTime) {
    // GNU time prefixes "Command exited with non-zero status N" on failure.
    const last = readFileSync(tf, 'utf8').trim().split('\n').pop() ?? '';
    const m = /^(\d+) ([\d.]+) ([\d.]+)$/.exec(last);
    if (m) [rssKiB, user, sys] = [Number(m[1]), Number(m[2]), Number(m[3])];
  }
  if (r.status !== 0 && !allowFail) {
    const tail = `${r.stderr}\n${r.stdout}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${showCmd(cmd, args)} (in ${cwd ?? process.cwd()}) exited ${r.status ?? r.signal}:\n${tail}`);
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, wall, rssKiB, user, sys };
}

/**
 * Bytes a command read, from the kernel's I/O accounting: a reaped child's counters
 * are added to its parent's, so a shell that runs the command and then execs `cat` on
 * its own /proc entry prints the command's totals (plus the shell's few bytes).
 */
export function ioOf(cmd, args, { cwd, env } = {}) {
  const r = spawnSync('sh', ['-c', '"$@" >/dev/null 2>&1; exec cat /proc/$$/io', 'sh', cmd, ...args], { cwd, env, encoding: 'utf8' });
  const out = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^(\w+): (\d+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return { rchar: out.rchar, readBytes: out.read_bytes };
}

/**
 * Bytes a command read per file, traced with strace: read-like calls on descriptors
 * whose path `classify(path)` names a class. Returns { [class]: bytes }.
 */
export function readsByFile(cmd, args, classify, { cwd, env } = {}) {
  const out = scratchFile('strace.out');
  const r = spawnSync('strace', ['-f', '-qq', '-y', '-e', 'trace=read,pread64,readv,preadv,preadv2,sendfile,copy_file_range', '-o', out, cmd, ...args], { cwd, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`strace ${showCmd(cmd, args)} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  const by = {};
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const m = /^\d+\s+(\w+)\((\d+)<([^>]*)>.*\)\s+=\s+(\d+)/.exec(line);
    if (!m) continue;
    const n = Number(m[4]);
    const cls = classify(m[3]);
    if (cls && n > 0) by[cls] = (by[cls] ?? 0) + n;
  }
  rmSync(out, { force: true });
  return by;
}

/** Median of numbers (mean of the middle two for an even count). */
export function median(xs) {
  const v = xs.filter((x) => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** `list` rotated left by `k`: round k of an alternating schedule. */
export function rotate(list, k) {
  if (list.length === 0) return [];
  const s = k % list.length;
  return [...list.slice(s), ...list.slice(0, s)];
}

/**
 * Parse the table `strace -c` writes: [{ syscall, calls, errors, seconds }] sorted by
 * seconds, without the total line.
 */
export function parseStraceSummary(text) {
  const rows = [];
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+([\d.]+)\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)\s*$/.exec(line);
    if (m && m[4] !== 'total') rows.push({ syscall: m[4], seconds: Number(m[1]), calls: Number(m[2]), errors: Number(m[3] ?? 0) });
  }
  return rows.sort((a, b) => b.seconds - a.seconds);
}
