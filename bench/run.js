// cpv against the tools users would pick instead, on the same seeded data. Run it with
// `npm run bench` (which bootstraps through bench/run.sh) or, after a build,
// `node bench/run.js [--quick] [--runs N] [--only add,versions,push,files,status,rss]`.
//
// Sections (ratios are cpv ÷ reference; timed runs alternate their order, medians):
//   add       add a model file vs b3sum --num-threads 1, md5sum + cp (DVC), restic, borg, git-lfs
//   versions  bytes uploaded and stored for v1..v5 vs whole files, restic, borg
//   push      push and pull the model to the local Ceph radosgw vs rclone copy, aws s3 cp
//   files     the same for the dataset of small files
//   status    `cpv status` with nothing changed vs `git status` on the same tree; bytes read
//   rss       peak RSS of add / push / pull of a large file
// Writes a results file (bench/RESULTS.md for a full run) and exits 1 when a goal is missed.
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, freemem, totalmem, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rewriteTensors, writeDataset, writeModel } from '../scripts/lib/synth.js';
import { summarise, summaryMarkdown } from './lib/cpuprofile.js';
import { CEPH, cephGc, deletePrefix, ensureBucket, prefixUsage, startCeph, stopCeph } from './lib/s3.js';
import { ensureTools, versionOf } from './lib/tools.js';
import { have, ioOf, median, parseStraceSummary, readsByFile, rotate, run } from './lib/proc.js';
import { insertTensor, pokeBytes } from './lib/versions.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CPV = join(ROOT, 'packages/cli/bin/run.js');
const MEM_PROBE = join(ROOT, 'bench/lib/mem-probe.js');
const MiB = 1024 * 1024;
const SECTIONS = ['add', 'versions', 'push', 'files', 'status', 'rss'];
const SIZES = {
  full: { modelMiB: 1024, files: 20000, rssMiB: 4096 },
  quick: { modelMiB: 64, files: 2000, rssMiB: 256 },
};
const TENSORS = 200;
const BUCKET = 'cpv-bench';

// --- arguments ------------------------------------------------------------------------
function usage(code) {
  console.log(`usage: node bench/run.js [options]
  --quick               small sizes (${SIZES.quick.modelMiB} MiB model, ${SIZES.quick.files} files, ${SIZES.quick.rssMiB} MiB RSS file)
  --size full|quick     the same as a name (default full: ${SIZES.full.modelMiB} MiB, ${SIZES.full.files} files, ${SIZES.full.rssMiB} MiB)
  --model-mib N, --files N, --rss-mib N   override one size
  --runs N              timed runs per tool, alternating order, medians (default 3)
  --slow S              a tool whose first run takes longer than S seconds is not
                        repeated (default 30; 0 repeats everything)
  --all-refs            also run aws s3 cp on more than 5,000 small files (slow)
  --only LIST           comma-separated sections: ${SECTIONS.join(',')}
  --out FILE            results file (default bench/RESULTS.md for a full run of every
                        section, bench/.work/RESULTS.md otherwise)
  --work DIR            where generated data goes (default a new temp dir, removed at the end)
  --keep                keep the work directory
  --no-install          do not apt-get missing reference tools`);
  process.exit(code);
}

function parseArgs(argv) {
  const o = { size: 'full', runs: 3, slow: 30, only: [...SECTIONS], install: true, keep: false, allRefs: false };
  const over = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) usage(2);
      return v;
    };
    if (a === '--quick') o.size = 'quick';
    else if (a === '--size') o.size = val();
    else if (a === '--runs') o.runs = Number(val());
    else if (a === '--slow') o.slow = Number(val());
    else if (a === '--all-refs') o.allRefs = true;
    else if (a === '--only') o.only = val().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--out') o.out = val();
    else if (a === '--work') o.work = val();
    else if (a === '--keep') o.keep = true;
    else if (a === '--no-install') o.install = false;
    else if (a === '--model-mib') over.modelMiB = Number(val());
    else if (a === '--files') over.files = Number(val());
    else if (a === '--rss-mib') over.rssMiB = Number(val());
    else if (a === '--help' || a === '-h') usage(0);
    else {
      console.error(`unknown argument ${a}`);
      usage(2);
    }
  }
  if (!SIZES[o.size]) usage(2);
  if (!Number.isInteger(o.runs) || o.runs < 1 || !(o.slow >= 0)) usage(2);
  for (const s of o.only) if (!SECTIONS.includes(s)) (console.error(`unknown section ${s}`), usage(2));
  o.sizes = { ...SIZES[o.size], ...over };
  for (const v of Object.values(o.sizes)) if (!Number.isInteger(v) || v < 1) usage(2);
  o.complete = o.size === 'full' && Object.keys(over).length === 0 && SECTIONS.every((s) => o.only.includes(s));
  o.out ??= o.complete ? join(ROOT, 'bench/RESULTS.md') : join(ROOT, 'bench/.work/RESULTS.md');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const { sizes } = opts;
const only = new Set(opts.only);
const work = opts.work ? (mkdirSync(opts.work, { recursive: true }), opts.work) : mkdtempSync(join(tmpdir(), 'cpv-bench-'));
const profDir = join(ROOT, 'bench/.work/profiles');
const startedAt = new Date();

// --- formatting -----------------------------------------------------------------------
const log = (s) => console.log(`[bench] ${s}`);
const fmtS = (s) => (s === undefined ? 'n/a' : s < 10 ? `${s.toFixed(3)} s` : `${s.toFixed(2)} s`);
const fmtB = (b) => (b === undefined ? 'n/a' : Math.abs(b) >= MiB ? `${(b / MiB).toFixed(2)} MiB` : Math.abs(b) >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} B`);
// Three decimals below 2x, so a ratio just over a goal such as 1.02x never prints as 1.02x.
const fmtX = (x) => (x === undefined || !Number.isFinite(x) ? 'n/a' : `${x.toFixed(x < 2 ? 3 : 2)}x`);
const fmtKiB = (k) => (k === undefined ? 'n/a' : `${(k / 1024).toFixed(1)} MiB`);
const sizeLabel = (mib) => (mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`);
const count = (n) => n.toLocaleString('en-US');

/** Sections of the report, in order: { title, intro, tables: [{ header, rows }], notes }. */
const report = [];
/** Goals: { id, goal, measured, target, pass (true/false/null = not measured), why }. */
const goals = [];
/** Profiles for missed goals: { goalId, title, markdown, file }. */
const profiles = [];
/** 1-minute load average at the start of every timed run (the machine may be shared). */
const loads = [];
const skipped = [];

/** A markdown table; `left` is how many leading columns hold text (the rest are figures). */
function table(header, rows, left = 1) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((h, i) => (i < left ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

function goal(id, text, measured, target, pass, extra = {}) {
  goals.push({ id, goal: text, measured, target, pass, ...extra });
  log(`goal ${id}: ${text}: ${measured} (target ${target}) -> ${pass === null ? 'NOT MEASURED' : pass ? 'pass' : 'MISSED'}`);
}

// --- environment for every measured program -------------------------------------------
const home = join(work, 'home');
mkdirSync(join(home, '.config'), { recursive: true });
const awsConfig = join(home, 'aws-config');
writeFileSync(
  awsConfig,
  `[default]\nregion = ${CEPH.region}\ns3 =\n  addressing_style = path\nrequest_checksum_calculation = when_required\nresponse_checksum_validation = when_required\n`,
);
writeFileSync(join(home, 'rclone.conf'), '');
const ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(CPV_|AWS_|RCLONE_|RESTIC_|BORG_|GIT_)/.test(k)));
Object.assign(ENV, {
  HOME: home,
  XDG_CONFIG_HOME: join(home, '.config'),
  GIT_AUTHOR_NAME: 'bench',
  GIT_AUTHOR_EMAIL: 'bench@example.com',
  GIT_COMMITTER_NAME: 'bench',
  GIT_COMMITTER_EMAIL: 'bench@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
  AWS_ACCESS_KEY_ID: CEPH.accessKey,
  AWS_SECRET_ACCESS_KEY: CEPH.secretKey,
  AWS_REGION: CEPH.region,
  AWS_DEFAULT_REGION: CEPH.region,
  AWS_CONFIG_FILE: awsConfig,
  AWS_SHARED_CREDENTIALS_FILE: join(home, 'aws-credentials'),
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  RCLONE_CONFIG: join(home, 'rclone.conf'),
  RCLONE_CONFIG_CEPH_TYPE: 's3',
  RCLONE_CONFIG_CEPH_PROVIDER: 'Ceph',
  RCLONE_CONFIG_CEPH_ENV_AUTH: 'false',
  RCLONE_CONFIG_CEPH_ACCESS_KEY_ID: CEPH.accessKey,
  RCLONE_CONFIG_CEPH_SECRET_ACCESS_KEY: CEPH.secretKey,
  RCLONE_CONFIG_CEPH_ENDPOINT: CEPH.endpoint,
  RCLONE_CONFIG_CEPH_REGION: CEPH.region,
  RESTIC_PASSWORD: 'cpv-bench',
  RESTIC_CACHE_DIR: join(home, 'restic-cache'),
  BORG_BASE_DIR: join(home, 'borg'),
  BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
  BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
});

const sh = (cwd, cmd, ...args) => run(cmd, args, { cwd, env: ENV });
const git = (cwd, ...args) => sh(cwd, 'git', ...args);
const cpvArgs = (args) => [CPV, ...args];
const cpv = (cwd, ...args) => run(process.execPath, cpvArgs(args), { cwd, env: ENV });
const cpvJson = (cwd, ...args) => {
  const r = cpv(cwd, ...args, '--json');
  return { ...r, json: JSON.parse(r.stdout) };
};

function dirBytes(dir) {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += statSync(join(e.parentPath ?? e.path, e.name)).size;
  return n;
}
const rmrf = (p) => rmSync(p, { recursive: true, force: true });
function fresh(dir) {
  rmrf(dir);
  mkdirSync(dir, { recursive: true });
  return dir;
}
function linkTree(src, dst) {
  sh(ROOT, 'cp', '-al', src, dst);
}

/** A git repository with `cpv init` (and a remote when given). */
function cpvRepo(dir, remote) {
  fresh(dir);
  git(dir, 'init', '-q', '-b', 'main');
  cpv(dir, 'init', ...(remote ? ['--remote', remote] : []));
  return dir;
}

function s3Remote(dir, prefix) {
  cpv(dir, 'remote', 'add', 'ceph', `s3://${BUCKET}/${prefix}`, '--endpoint', CEPH.endpoint, '--region', CEPH.region, '--force', '--default');
  rmrf(join(dir, '.cpv/cache/remotes'));
}

/**
 * Run cpv once under the CPU profiler and, when strace is there, under `strace -c` (one
 * run for both, to keep the benchmark short: the syscall counts are exact, the times
 * are inflated by tracing). Returns the summary markdown and the saved profile file.
 */
function profileCpv(label, cwd, args) {
  const dir = fresh(join(work, 'prof', label));
  const node = [process.execPath, '--cpu-prof', `--cpu-prof-dir=${dir}`, ...cpvArgs(args)];
  const sumFile = join(dir, 'strace.txt');
  const traced = have('strace');
  const res = traced ? run('strace', ['-f', '-c', '-w', '-o', sumFile, ...node], { cwd, env: ENV }) : run(node[0], node.slice(1), { cwd, env: ENV });
  const f = readdirSync(dir).find((n) => n.endsWith('.cpuprofile'));
  mkdirSync(profDir, { recursive: true });
  const saved = join(profDir, `${label}.cpuprofile`);
  copyFileSync(join(dir, f), saved);
  let md = `Profiled run: ${fmtS(res.wall)}${traced ? ' (under strace)' : ''}. ${summaryMarkdown(summarise(JSON.parse(readFileSync(saved, 'utf8')), 12))}`;
  if (traced) {
    const all = parseStraceSummary(readFileSync(sumFile, 'utf8'));
    // Threads parked on a futex or in epoll are waiting, not working; the CPU
    // profiler's SIGPROF sampling makes its own calls. Both are listed apart.
    const waits = new Set(['futex', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2', 'poll', 'ppoll', 'select', 'pselect6', 'wait4', 'nanosleep', 'clock_nanosleep', 'rt_sigtimedwait']);
    const sampling = new Set(['rt_sigprocmask', 'rt_sigreturn', 'tgkill', 'getpid']);
    const rows = all.filter((r) => !waits.has(r.syscall) && !sampling.has(r.syscall));
    const calls = all.reduce((n, r) => n + r.calls, 0);
    const list = (set) => all.filter((r) => set.has(r.syscall)).map((r) => `${r.syscall} ${count(r.calls)}`).join(', ') || 'none';
    md += `\n\nSystem calls, all threads (\`strace -f -c -w\`: ${count(calls)} calls; waits: ${list(waits)}; the profiler's sampling: ${list(sampling)}). Seconds are wall time inside the calls, summed over threads; an 8-byte \`write\` and \`read\` pair is one thread-pool completion:\n\n`;
    md += table(['syscall', 'calls', 'errors', 'seconds'], rows.slice(0, 10).map((r) => [`\`${r.syscall}\``, count(r.calls), count(r.errors), r.seconds.toFixed(3)]));
  }
  return { markdown: md, file: relative(ROOT, saved) };
}

/** One timed run of tool `t` in round `r`, recorded in `acc` (name -> { walls, rss, results }). */
function runOne(t, r, acc, label = '') {
  const m = acc.get(t.name);
  if (m.once) return undefined;
  loads.push(Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]));
  t.prep?.(r);
  const [bin, args, o = {}] = t.cmd(r);
  const res = run(bin, args, { env: ENV, ...o });
  m.walls.push(res.wall);
  m.rss.push(res.rssKiB);
  m.results.push(res);
  t.after?.(r, res);
  if (opts.slow > 0 && m.walls.length === 1 && res.wall > opts.slow && opts.runs > 1) m.once = true;
  log(`  round ${r + 1}/${opts.runs} ${label}${t.name}: ${fmtS(res.wall)}, peak RSS ${fmtKiB(res.rssKiB)}${m.once ? ` (over ${opts.slow} s: not repeated)` : ''}`);
  return res;
}
/** The median wall time of a tool, marked when it ran fewer times than asked. */
const medCell = (m) => `${fmtS(median(m.walls))}${m.walls.length < opts.runs ? ` (${m.walls.length} run)` : ''}`;
const newAcc = (tools) => new Map(tools.map((t) => [t.name, { walls: [], rss: [], results: [] }]));

/**
 * Timed runs of several tools, alternating order: round r runs the tools rotated by r.
 * Each tool: { name, prep(r), cmd(r) -> [bin, args, { cwd }], after(r, result) }.
 * Returns name -> { walls, rss, results }.
 */
function timed(tools) {
  const acc = newAcc(tools);
  for (let r = 0; r < opts.runs; r++) for (const t of rotate(tools, r)) runOne(t, r, acc);
  return acc;
}

// --- data -----------------------------------------------------------------------------
const gen = join(work, 'gen');
const genModel = join(gen, 'model/model.safetensors');
const genData = join(gen, 'data');
const genRss = join(gen, 'rss/model.safetensors');
const dataFacts = {};

function generate() {
  const needModel = ['add', 'versions', 'push', 'status'].some((s) => only.has(s));
  const needData = ['files', 'status'].some((s) => only.has(s));
  if (needModel) {
    const t0 = Date.now();
    writeModel(genModel, { bytes: sizes.modelMiB * MiB, tensors: TENSORS, seed: 7 });
    dataFacts.model = statSync(genModel).size;
    log(`generated model.safetensors: ${fmtB(dataFacts.model)}, ${TENSORS} tensors (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
  if (needData) {
    const t0 = Date.now();
    dataFacts.dataBytes = writeDataset(genData, { files: sizes.files, seed: 11 });
    log(`generated data/: ${count(sizes.files)} files, ${fmtB(dataFacts.dataBytes)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
}

// --- section: add ---------------------------------------------------------------------
function sectionAdd(tools) {
  const title = `Add a ${sizeLabel(sizes.modelMiB)} model`;
  log(`== ${title}`);
  const dir = join(work, 'add');
  const list = [
    {
      name: 'cpv add',
      prep: () => {
        cpvRepo(dir);
        linkSync(genModel, join(dir, 'model.safetensors'));
      },
      cmd: () => [process.execPath, cpvArgs(['add', 'model.safetensors', '--json']), { cwd: dir }],
      after: (r, res) => {
        dataFacts.cpvOid = JSON.parse(res.stdout).items[0].oid;
        rmrf(dir);
      },
    },
  ];
  if (tools.has('b3sum')) list.push({ name: 'b3sum --num-threads 1', cmd: () => ['b3sum', ['--num-threads', '1', genModel]], after: (r, res) => (dataFacts.b3sum = res.stdout.split(' ')[0]) });
  if (tools.has('md5sum'))
    list.push({
      name: 'md5sum + cp (DVC)',
      prep: () => fresh(dir),
      cmd: () => ['sh', ['-c', 'md5sum "$1" >/dev/null && cp "$1" "$2" && sync "$2"', 'sh', genModel, join(dir, 'obj')]],
      after: () => rmrf(dir),
    });
  if (tools.has('restic'))
    list.push({
      name: 'restic backup',
      prep: () => {
        rmrf(dir);
        sh(work, 'restic', 'init', '--quiet', '--repo', dir);
      },
      cmd: () => ['restic', ['--repo', dir, 'backup', '--quiet', 'model.safetensors'], { cwd: dirname(genModel) }],
      after: () => rmrf(dir),
    });
  if (tools.has('borg'))
    list.push({
      name: 'borg create',
      prep: () => {
        rmrf(dir);
        sh(work, 'borg', 'init', '-e', 'none', dir);
      },
      cmd: () => ['borg', ['create', `${dir}::v1`, 'model.safetensors'], { cwd: dirname(genModel) }],
      after: () => rmrf(dir),
    });
  if (tools.has('git-lfs'))
    list.push({
      name: 'git lfs (git add)',
      prep: () => {
        fresh(dir);
        git(dir, 'init', '-q', '-b', 'main');
        git(dir, 'lfs', 'install', '--local');
        git(dir, 'lfs', 'track', '*.safetensors');
        linkSync(genModel, join(dir, 'model.safetensors'));
      },
      cmd: () => ['git', ['add', 'model.safetensors'], { cwd: dir }],
      after: () => rmrf(dir),
    });
  const m = timed(list);
  const cpvMed = median(m.get('cpv add').walls);
  const rows = list.map((t) => {
    const med = median(m.get(t.name).walls);
    return [t.name, medCell(m.get(t.name)), `${((dataFacts.model / MiB) / med).toFixed(0)} MiB/s`, fmtKiB(median(m.get(t.name).rss)), t.name === 'cpv add' ? '' : fmtX(cpvMed / med)];
  });
  const notes = [];
  if (dataFacts.b3sum) notes.push(`cpv's file oid ${dataFacts.cpvOid === `b3:${dataFacts.b3sum}` ? 'equals' : 'DIFFERS FROM'} \`b3sum\`'s digest.`);
  notes.push('All tools read the same file from a warm page cache. cpv copies it into its cache and fsyncs; `md5sum + cp` is followed by `sync FILE` so it is durable too. restic encrypts; borg runs with `-e none`; each gets a fresh repository per run.');
  report.push({ title, tables: [table(['tool', 'median', 'throughput', 'peak RSS', 'cpv ÷ tool'], rows)], notes });
  dataFacts.addRss1 = median(m.get('cpv add').rss);
  if (!m.has('b3sum --num-threads 1')) {
    goal('add', `add ${sizeLabel(sizes.modelMiB)}: time ≤ 3.0x b3sum --num-threads 1`, 'b3sum unavailable', '≤ 3.00x', null);
    return;
  }
  const ratio = cpvMed / median(m.get('b3sum --num-threads 1').walls);
  const pass = ratio <= 3.0;
  goal('add', `add ${sizeLabel(sizes.modelMiB)}: time ≤ 3.0x b3sum --num-threads 1`, `${fmtX(ratio)} (${fmtS(cpvMed)} vs ${fmtS(median(m.get('b3sum --num-threads 1').walls))})`, '≤ 3.00x', pass);
  if (!pass) {
    cpvRepo(dir);
    linkSync(genModel, join(dir, 'model.safetensors'));
    profiles.push({ goalId: 'add', title: `cpv add ${sizeLabel(sizes.modelMiB)}`, ...profileCpv('add', dir, ['add', 'model.safetensors']) });
    rmrf(dir);
  }
}

// --- section: versions ----------------------------------------------------------------
function sectionVersions(tools) {
  const title = 'Bytes uploaded and stored per version';
  log(`== ${title}`);
  const ver = join(work, 'ver');
  const verRemote = join(work, 'ver-remote');
  const none = join(work, 'ver-none');
  const noneRemote = join(work, 'ver-none-remote');
  const resticRepo = join(work, 'ver-restic');
  const borgRepo = join(work, 'ver-borg');
  rmrf(verRemote);
  rmrf(noneRemote);
  cpvRepo(ver, verRemote);
  copyFileSync(genModel, join(ver, 'model.safetensors'));
  const model = join(ver, 'model.safetensors');
  // The same series with content-defined cuts only (no tensor alignment), v1 and v2.
  cpvRepo(none, noneRemote);
  const cfgPath = join(none, '.cpv/config');
  writeFileSync(cfgPath, readFileSync(cfgPath, 'utf8').replace(/align: tensors/, 'align: none'));
  if (!/align: none/.test(readFileSync(cfgPath, 'utf8'))) throw new Error(`could not set align: none in ${cfgPath}`);
  linkSync(model, join(none, 'model.safetensors'));
  if (tools.has('restic')) {
    rmrf(resticRepo);
    sh(work, 'restic', 'init', '--quiet', '--repo', resticRepo);
  }
  if (tools.has('borg')) {
    rmrf(borgRepo);
    sh(work, 'borg', 'init', '-e', 'none', borgRepo);
  }
  const inserted = MiB;
  const edits = [
    { v: 'v1', what: 'new model', apply: () => statSync(model).size },
    { v: 'v2', what: '5% of tensors rewritten in place', apply: () => rewriteTensors(model, { fraction: 0.05, seed: 21 }) },
    { v: 'v3', what: 'another 5% rewritten', apply: () => rewriteTensors(model, { fraction: 0.05, seed: 33 }) },
    { v: 'v4', what: `${fmtB(inserted)} tensor inserted in the middle`, apply: () => insertTensor(model, { bytes: inserted, seed: 4 }) },
    { v: 'v5', what: '1 byte changed in each of 10 tensors', apply: () => pokeBytes(model, { count: 10, seed: 5 }) },
  ];
  const rows = [];
  const facts = {};
  for (const e of edits) {
    const changed = e.apply();
    const size = statSync(model).size;
    const add = cpvJson(ver, 'add', 'model.safetensors');
    const before = dirBytes(verRemote);
    const push = cpvJson(ver, 'push');
    const grew = dirBytes(verRemote) - before;
    let noneWire;
    let noneChunk;
    if (e.v === 'v1' || e.v === 'v2') {
      cpvJson(none, 'add', 'model.safetensors');
      const p = cpvJson(none, 'push');
      noneWire = p.json.wireBytes;
      noneChunk = p.json.bytes;
    }
    let restic;
    let borg;
    if (tools.has('restic')) {
      const b = dirBytes(resticRepo);
      sh(ver, 'restic', '--repo', resticRepo, 'backup', '--quiet', 'model.safetensors');
      restic = dirBytes(resticRepo) - b;
    }
    if (tools.has('borg')) {
      const b = dirBytes(borgRepo);
      sh(ver, 'borg', 'create', `${borgRepo}::${e.v}`, 'model.safetensors');
      borg = dirBytes(borgRepo) - b;
    }
    facts[e.v] = { changed, wire: push.json.wireBytes, chunk: push.json.bytes, grew, noneWire, noneChunk };
    log(`  ${e.v}: changed ${fmtB(changed)}; cpv uploaded ${fmtB(push.json.wireBytes)} (chunks ${fmtB(push.json.bytes)}, add ${fmtS(add.wall)}, push ${fmtS(push.wall)}); restic +${fmtB(restic)}; borg +${fmtB(borg)}`);
    rows.push([
      e.v,
      e.what,
      fmtB(changed),
      fmtB(size),
      fmtB(push.json.bytes),
      fmtB(push.json.wireBytes),
      fmtB(grew),
      e.v === 'v1' || changed < 1024 ? '' : fmtX(push.json.wireBytes / changed),
      noneWire === undefined ? '' : fmtB(noneWire),
      fmtB(restic),
      fmtB(borg),
    ]);
  }
  report.push({
    title,
    tables: [
      table(['version', 'change', 'bytes changed', 'whole file', 'cpv chunk bytes', 'cpv uploaded', 'cpv remote grew', 'cpv uploaded ÷ changed', 'cpv uploaded, align: none', 'restic repo grew', 'borg repo grew'], rows),
    ],
    notes: [
      '"cpv uploaded" is every byte cpv wrote to the remote (packs with their index, manifests); "chunk bytes" is the chunk data inside the packs. The remote is a directory (the same objects go to S3). "whole file" is what whole-file storage (DVC, git-lfs) adds per version.',
      '"align: none" is a second repository whose chunker config has tensor alignment switched off (content-defined cuts only), run for v1 and v2.',
      `restic ${tools.has('restic') ? '(encrypted, default compression)' : 'SKIPPED (not installed)'}; borg ${tools.has('borg') ? '(`-e none`, default lz4 compression, default chunker params)' : 'SKIPPED (not installed)'}: growth of the repository directory after each backup.`,
    ],
  });
  const v2 = facts.v2;
  goal('v2-aligned', 'v2 bytes uploaded ≤ 1.02x bytes changed (tensor-aligned cuts, the default)', `${fmtX(v2.wire / v2.changed)} (${fmtB(v2.wire)} for ${fmtB(v2.changed)}; chunk data alone ${fmtX(v2.chunk / v2.changed)})`, '≤ 1.02x', v2.wire <= 1.02 * v2.changed);
  goal('v2-cdc', 'v2 bytes uploaded ≤ 1.15x bytes changed (content-defined cuts only)', `${fmtX(v2.noneWire / v2.changed)} (${fmtB(v2.noneWire)}; chunk data alone ${fmtX(v2.noneChunk / v2.changed)})`, '≤ 1.15x', v2.noneWire <= 1.15 * v2.changed);
  goal('v5', 'v5 (1 byte in each of 10 tensors) bytes uploaded ≤ 1 MiB', `${fmtB(facts.v5.wire)} (chunk data ${fmtB(facts.v5.chunk)}, ${fmtB(facts.v5.wire - facts.v5.chunk)} packs' index and manifest)`, '≤ 1.00 MiB', facts.v5.wire <= MiB);
  dataFacts.versions = facts;
  for (const d of [ver, none, verRemote, noneRemote, resticRepo, borgRepo]) rmrf(d);
}

// --- the workspace shared by push, files and status -----------------------------------
let wsReady;
const ws = join(work, 'ws');
const pullws = join(work, 'pullws');
function workspace(what) {
  wsReady ??= {};
  if (!wsReady.repo) {
    cpvRepo(ws);
    wsReady.repo = true;
  }
  if (what === 'model' && !wsReady.model) {
    linkSync(genModel, join(ws, 'model.safetensors'));
    cpv(ws, 'add', 'model.safetensors', '--kind', 'model');
    wsReady.model = true;
  }
  if (what === 'data' && !wsReady.data) {
    linkTree(genData, join(ws, 'data'));
    const r = cpv(ws, 'add', 'data', '--kind', 'data');
    dataFacts.addData = r;
    log(`  cpv add data/ (${count(sizes.files)} files): ${fmtS(r.wall)}, peak RSS ${fmtKiB(r.rssKiB)}`);
    wsReady.data = true;
  }
  git(ws, 'add', '-A');
  git(ws, 'commit', '-q', '--allow-empty', '-m', `bench ${what}`);
  rmrf(pullws);
  git(work, 'clone', '-q', ws, pullws);
}

// --- sections: push and files ---------------------------------------------------------
async function sectionTransfer(kind, tools) {
  const isModel = kind === 'push';
  const target = isModel ? 'model.safetensors' : 'data';
  const src = isModel ? dirname(genModel) : genData;
  const what = isModel ? `a ${sizeLabel(sizes.modelMiB)} model` : `${count(sizes.files)} small files (${fmtB(dataFacts.dataBytes)})`;
  const title = `Push and pull ${what} to Ceph radosgw`;
  log(`== ${title}`);
  workspace(isModel ? 'model' : 'data');
  const dest = join(work, 'dest');
  const prefix = (tool, r) => `${kind}-${tool}-r${r}`;
  const check = (r, got) => {
    if (r !== 0) return;
    const want = isModel ? genModel : genData;
    const res = isModel ? run('cmp', [want, got], { allowFail: true }) : run('diff', ['-rq', want, got], { allowFail: true });
    if (res.status !== 0) throw new Error(`pulled content in ${got} differs from ${want}:\n${res.stdout.slice(0, 2000)}`);
  };
  const pushers = [
    {
      name: 'cpv',
      prep: (r) => s3Remote(ws, prefix('cpv', r)),
      cmd: () => [process.execPath, cpvArgs(['push', target, '--json']), { cwd: ws }],
      after: (r, res) => (r === 0 ? (dataFacts[`${kind}Push`] = JSON.parse(res.stdout)) : undefined),
    },
  ];
  const pullers = [
    {
      name: 'cpv',
      prep: (r) => {
        s3Remote(pullws, prefix('cpv', r));
        rmrf(join(pullws, target));
        rmrf(join(pullws, '.cpv/cache'));
        rmrf(join(pullws, '.cpv/tmp'));
      },
      cmd: () => [process.execPath, cpvArgs(['pull', target, '--json']), { cwd: pullws }],
      after: (r) => {
        check(r, join(pullws, target));
        rmrf(join(pullws, target));
        rmrf(join(pullws, '.cpv/cache'));
      },
    },
  ];
  if (tools.has('rclone')) {
    pushers.push({ name: 'rclone copy', cmd: (r) => ['rclone', ['copy', src, `ceph:${BUCKET}/${prefix('rclone', r)}`]] });
    pullers.push({
      name: 'rclone copy',
      prep: () => fresh(dest),
      cmd: (r) => ['rclone', ['copy', `ceph:${BUCKET}/${prefix('rclone', r)}`, dest]],
      after: (r) => (check(r, isModel ? join(dest, 'model.safetensors') : dest), rmrf(dest)),
    });
  }
  const awsHere = tools.has('aws') && (isModel || sizes.files <= 5000 || opts.allRefs);
  if (tools.has('aws') && !awsHere) skipped.push(`aws s3 cp on ${count(sizes.files)} small files (about 10 ms per object each way here, minutes per run; --all-refs includes it)`);
  if (awsHere) {
    const ep = ['--endpoint-url', CEPH.endpoint, '--only-show-errors'];
    pushers.push({ name: 'aws s3 cp --recursive', cmd: (r) => ['aws', ['s3', 'cp', '--recursive', src, `s3://${BUCKET}/${prefix('aws', r)}/`, ...ep]] });
    pullers.push({
      name: 'aws s3 cp --recursive',
      prep: () => fresh(dest),
      cmd: (r) => ['aws', ['s3', 'cp', '--recursive', `s3://${BUCKET}/${prefix('aws', r)}/`, dest, ...ep]],
      after: (r) => (check(r, isModel ? join(dest, 'model.safetensors') : dest), rmrf(dest)),
    });
  }
  const push = newAcc(pushers);
  const pull = newAcc(pullers);
  const stored = {};
  for (let r = 0; r < opts.runs; r++) {
    for (const t of rotate(pushers, r)) runOne(t, r, push, 'push ');
    if (r === 0) for (const t of pushers) stored[t.name] = await prefixUsage(BUCKET, `${prefix(t.name.split(' ')[0], 0)}/`);
    for (const t of rotate(pullers, r)) runOne(t, r, pull, 'pull ');
    for (const t of pushers) await deletePrefix(BUCKET, `${prefix(t.name.split(' ')[0], r)}/`);
    cephGc();
  }
  const limit = isModel ? 1.0 : 0.2;
  const rows = [];
  for (const [phase, acc] of [['push', push], ['pull', pull]]) {
    const cpvMed = median(acc.get('cpv').walls);
    for (const [name, m] of acc) {
      const med = median(m.walls);
      const bytes = isModel ? dataFacts.model : dataFacts.dataBytes;
      rows.push([
        `${phase}: ${name}`,
        medCell(m),
        `${(bytes / MiB / med).toFixed(0)} MiB/s`,
        fmtKiB(median(m.rss)),
        phase === 'push' && stored[name] ? `${count(stored[name].objects)} / ${fmtB(stored[name].bytes)}` : '',
        name === 'cpv' ? '' : fmtX(cpvMed / med),
      ]);
    }
  }
  const pj = dataFacts[`${kind}Push`];
  report.push({
    title,
    tables: [table(['operation', 'median', 'throughput', 'peak RSS', 'objects / bytes stored', 'cpv ÷ tool'], rows)],
    notes: [
      `cpv pushed ${count(pj.files)} file(s) as ${count(pj.chunks)} chunks in ${count(pj.packs)} pack(s), ${fmtB(pj.wireBytes)} written. Every tool starts from an empty prefix and, for pull, an empty destination (cpv: empty cache and workspace path). cpv pull verifies every chunk and file and writes the cache and the workspace file; the first round's pulled content of every tool is compared with the source.`,
      'Default settings everywhere: cpv 8 jobs, rclone 4 transfers (multipart 5 MiB chunks, 4 streams), aws cli 10 concurrent requests (8 MiB parts). Same machine as the server (loopback); the memstore OSD keeps data in RAM.',
    ],
  });
  dataFacts[`${kind}Rss1`] = { push: median(push.get('cpv').rss), pull: median(pull.get('cpv').rss) };
  const label = isModel ? sizeLabel(sizes.modelMiB) : `${count(sizes.files)} files`;
  for (const [phase, acc] of [['push', push], ['pull', pull]]) {
    const id = `${kind}-${phase}`;
    const text = `${phase} ${label} to Ceph: time ≤ ${limit.toFixed(1)}x rclone copy`;
    if (!acc.has('rclone copy')) {
      goal(id, text, 'rclone unavailable', `≤ ${limit.toFixed(2)}x`, null);
      continue;
    }
    const c = median(acc.get('cpv').walls);
    const ref = median(acc.get('rclone copy').walls);
    const pass = c / ref <= limit;
    goal(id, text, `${fmtX(c / ref)} (${fmtS(c)} vs ${fmtS(ref)})`, `≤ ${limit.toFixed(2)}x`, pass);
    if (pass) continue;
    const p = `${kind}-cpv-prof`;
    if (phase === 'push') {
      s3Remote(ws, p);
      profiles.push({ goalId: id, title: `cpv push ${label}`, ...profileCpv(id, ws, ['push', target]) });
    } else {
      s3Remote(ws, p);
      if ((await prefixUsage(BUCKET, `${p}/`)).objects === 0) cpv(ws, 'push', target);
      s3Remote(pullws, p);
      rmrf(join(pullws, target));
      rmrf(join(pullws, '.cpv/cache'));
      profiles.push({ goalId: id, title: `cpv pull ${label}`, ...profileCpv(id, pullws, ['pull', target]) });
      rmrf(join(pullws, target));
      rmrf(join(pullws, '.cpv/cache'));
    }
  }
  await deletePrefix(BUCKET, `${kind}-cpv-prof/`);
  cephGc();
}

// --- section: status ------------------------------------------------------------------
async function sectionStatus() {
  const title = 'Status with nothing changed';
  log(`== ${title}`);
  workspace('model');
  workspace('data');
  const gitDir = join(work, 'status.git');
  rmrf(gitDir);
  const g = (...args) => git(ws, `--git-dir=${gitDir}`, `--work-tree=${ws}`, ...args);
  g('init', '-q', '-b', 'main');
  const t0 = Date.now();
  // Same tree, tracked by git itself (stored uncompressed to keep the setup short).
  g('-c', 'core.compression=0', '-c', 'core.bigFileThreshold=1', 'add', '-f', 'model.safetensors', 'data');
  log(`  git add of the same tree for git status: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const gitStatus = ['git', [`--git-dir=${gitDir}`, `--work-tree=${ws}`, 'status'], { cwd: ws }];
  const cpvStatus = [process.execPath, cpvArgs(['status']), { cwd: ws }];
  // Warm-up: both refresh their stat caches once (git's index, cpv's state file).
  for (const [b, a, o] of [gitStatus, cpvStatus]) run(b, a, { env: ENV, ...o });
  const out = run(...cpvStatus.slice(0, 2), { env: ENV, ...cpvStatus[2] });
  if (!/up to date/.test(out.stdout)) throw new Error(`cpv status in the benchmark workspace is not clean:\n${out.stdout}`);
  const m = timed([
    { name: 'cpv status', cmd: () => cpvStatus },
    { name: 'git status', cmd: () => gitStatus },
  ]);
  const classify = (p) => {
    if (p === join(ws, 'model.safetensors') || p.startsWith(join(ws, 'data') + '/')) return 'workspace content';
    if (p.startsWith(join(ws, '.cpv/cache/files') + '/')) return 'cache content';
    if (p.startsWith(join(ws, '.cpv') + '/')) return 'cpv state and trees';
    if (p.startsWith(gitDir + '/')) return 'git index and objects';
    if (p.startsWith(ROOT + '/') || p.includes('/node_modules/')) return 'program code';
    return 'other';
  };
  const io = {};
  const traced = {};
  for (const [name, [b, a, o]] of [['cpv status', cpvStatus], ['git status', gitStatus]]) {
    io[name] = ioOf(b, a, { env: ENV, ...o });
    traced[name] = have('strace') ? readsByFile(b, a, classify, { env: ENV, ...o }) : undefined;
  }
  const cpvMed = median(m.get('cpv status').walls);
  const gitMed = median(m.get('git status').walls);
  const rows = ['cpv status', 'git status'].map((n) => {
    const t = traced[n];
    const content = t ? (t['workspace content'] ?? 0) + (t['cache content'] ?? 0) : undefined;
    return [n, medCell(m.get(n)), fmtKiB(median(m.get(n).rss)), fmtB(io[n].rchar), fmtB(io[n].readBytes), fmtB(content), t ? Object.entries(t).map(([k, v]) => `${k} ${fmtB(v)}`).join('; ') : 'strace unavailable'];
  });
  rows[0].push(fmtX(cpvMed / gitMed));
  rows[1].push('');
  report.push({
    title,
    tables: [table(['command', 'median', 'peak RSS', 'bytes read (rchar)', 'from disk (read_bytes)', 'content bytes read', 'read by file class (strace)', 'cpv ÷ git'], rows)],
    notes: [
      `The workspace holds the model and the ${count(sizes.files)}-file dataset, both added and unchanged. git status runs on the same files with its own git directory in which they are tracked. Both ran once before timing (stat caches warm). "content bytes" are reads of the tracked files or of cpv's cached file objects; rchar also counts the program's own code and state files.`,
    ],
  });
  const tc = traced['cpv status'];
  const content = tc ? (tc['workspace content'] ?? 0) + (tc['cache content'] ?? 0) : undefined;
  goal('status-bytes', 'cpv status unchanged: 0 content bytes read', tc ? fmtB(content) : 'strace unavailable', '0 B', tc ? content === 0 : null);
  const pass = cpvMed / gitMed <= 5;
  goal('status-time', 'cpv status unchanged: time ≤ 5x git status', `${fmtX(cpvMed / gitMed)} (${fmtS(cpvMed)} vs ${fmtS(gitMed)})`, '≤ 5.00x', pass);
  if (!pass) {
    profiles.push({ goalId: 'status-time', title: 'cpv status', ...profileCpv('status', ws, ['status']) });
    // What the bare CLI costs: the same process answering --version.
    const v = timed([{ name: 'cpv --version', cmd: () => [process.execPath, cpvArgs(['--version']), { cwd: ws }] }, { name: 'node -e 0', cmd: () => [process.execPath, ['-e', '0'], { cwd: ws }] }]);
    report.at(-1).notes.push(`For scale: \`cpv --version\` takes ${fmtS(median(v.get('cpv --version').walls))} and \`node -e 0\` ${fmtS(median(v.get('node -e 0').walls))} on this machine.`);
  }
  rmrf(gitDir);
}

// --- section: rss ---------------------------------------------------------------------
async function sectionRss() {
  const title = `Peak memory for a ${sizeLabel(sizes.rssMiB)} file`;
  log(`== ${title}`);
  const t0 = Date.now();
  writeModel(genRss, { bytes: sizes.rssMiB * MiB, tensors: TENSORS, seed: 17 });
  log(`  generated ${fmtB(statSync(genRss).size)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  const repo = join(work, 'rss');
  const clone = join(work, 'rss-clone');
  cpvRepo(repo);
  linkSync(genRss, join(repo, 'model.safetensors'));
  const probe = (label, cwd, args) => {
    const memOut = join(work, `mem-${label}.json`);
    const res = run(process.execPath, ['--import', MEM_PROBE, ...cpvArgs(args)], { cwd, env: { ...ENV, CPV_BENCH_MEM_OUT: memOut } });
    const mem = existsSync(memOut) ? JSON.parse(readFileSync(memOut, 'utf8')) : undefined;
    log(`  ${label}: ${fmtS(res.wall)}, peak RSS ${fmtKiB(res.rssKiB)}`);
    return { ...res, mem };
  };
  const add = probe('add', repo, ['add', 'model.safetensors']);
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', 'rss');
  s3Remote(repo, 'rss');
  const push = probe('push', repo, ['push']);
  rmrf(clone);
  git(work, 'clone', '-q', repo, clone);
  s3Remote(clone, 'rss');
  const pull = probe('pull', clone, ['pull']);
  const small = { add: dataFacts.addRss1, push: dataFacts.pushRss1?.push, pull: dataFacts.pushRss1?.pull };
  const rows = [];
  for (const [name, r] of [['add', add], ['push', push], ['pull', pull]]) {
    const m = r.mem;
    rows.push([
      `cpv ${name}`,
      fmtS(r.wall),
      `${(statSync(genRss).size / MiB / r.wall).toFixed(0)} MiB/s`,
      fmtKiB(r.rssKiB),
      m ? `${fmtB(m.heapUsed)} / ${fmtB(m.external)} / ${fmtB(m.arrayBuffers)}` : 'n/a',
      fmtKiB(small[name]),
    ]);
    const limit = 150 * 1024;
    const grows = small[name] !== undefined ? r.rssKiB - small[name] > Math.max(16 * 1024, 0.1 * small[name]) : undefined;
    const pass = r.rssKiB <= limit && grows !== true;
    const growth = small[name] !== undefined ? `; ${fmtKiB(small[name])} for ${sizeLabel(sizes.modelMiB)}, ${grows ? 'GROWS' : 'flat'}` : '; no smaller run to compare';
    goal(`rss-${name}`, `peak RSS of ${name} of a ${sizeLabel(sizes.rssMiB)} file ≤ 150 MiB, not growing with size`, `${fmtKiB(r.rssKiB)}${growth}`, '≤ 150.0 MiB, flat', pass);
  }
  report.push({
    title,
    tables: [table(['command', 'time', 'throughput', `peak RSS (${sizeLabel(sizes.rssMiB)})`, 'at peak: V8 heap used / external / ArrayBuffers', `peak RSS (${sizeLabel(sizes.modelMiB)} runs, median)`], rows)],
    notes: [
      `One run each, against Ceph radosgw. Peak RSS from GNU time (\`%M\`); the split at the peak comes from sampling \`process.memoryUsage()\` every 20 ms inside the same process (bench/lib/mem-probe.js). "Not growing" means within 10% (or 16 MiB) of the ${sizeLabel(sizes.modelMiB)} runs of the add and push sections.`,
    ],
  });
  await deletePrefix(BUCKET, 'rss/');
  cephGc();
  rmrf(repo);
  rmrf(clone);
  rmrf(genRss);
}

// --- report ---------------------------------------------------------------------------
function machine() {
  const os = (() => {
    try {
      return /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))[1];
    } catch {
      return 'unknown';
    }
  })();
  return {
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
    ram: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB (${(freemem() / 1024 ** 3).toFixed(1)} GiB free at the end)`,
    kernel: run('uname', ['-sr']).stdout.trim(),
    os,
    node: process.version,
    fs: run('sh', ['-c', 'findmnt -no FSTYPE -T "$1" 2>/dev/null || echo ?', 'sh', work]).stdout.trim(),
  };
}

function writeReport(tools, cephInfo, elapsed) {
  const mc = machine();
  const cmd = process.env.CPV_BENCH_COMMAND || `node bench/run.js ${process.argv.slice(2).join(' ')}`.trim();
  const missed = goals.filter((g) => g.pass !== true);
  const lines = [];
  lines.push('# cpv benchmark results', '');
  lines.push(`Produced by \`${cmd}\` on ${startedAt.toISOString().replace('T', ' ').slice(0, 16)} UTC in ${(elapsed / 60000).toFixed(1)} minutes (sizes: ${sizeLabel(sizes.modelMiB)} model, ${count(sizes.files)} small files, ${sizeLabel(sizes.rssMiB)} memory file; ${opts.runs} timed run(s) per tool, alternating order, medians). Ratios are cpv ÷ reference: below 1 cpv is faster or smaller.`, '');
  lines.push('## Goals', '');
  lines.push(table(['goal', 'measured', 'target', 'result'], goals.map((g) => [g.goal, g.measured, g.target, g.pass === null ? 'NOT MEASURED' : g.pass ? 'met' : '**missed**']), 4));
  lines.push('', `${goals.length - missed.length} of ${goals.length} goals met.`, '');
  for (const s of report) {
    lines.push(`## ${s.title}`, '');
    for (const t of s.tables) lines.push(t, '');
    for (const n of s.notes) lines.push(n, '');
  }
  if (profiles.length > 0) {
    lines.push('## Profiles of the missed time goals', '');
    lines.push('Each is one extra run of the cpv CLI under `node --cpu-prof` (and `strace -c`) in the same setup as the timed runs; the profile files are kept under `bench/.work/profiles/` (open them in Chrome DevTools, or summarise them with `node bench/lib/cpuprofile.js FILE`). The tables give self time on the main thread: "idle" is the main thread waiting for I/O, the network or the libuv thread pool (file reads, writes and fsync run there); "module loading" is start-up.', '');
    for (const p of profiles) lines.push(`### ${p.title} (goal \`${p.goalId}\`)`, '', p.markdown, '', `Profile: \`${p.file}\``, '');
  }
  lines.push('## Machine', '');
  lines.push(`- CPU: ${mc.cpus} (\`nproc\` ${run('nproc', []).stdout.trim()})`);
  lines.push(`- RAM: ${mc.ram}`);
  if (loads.length) lines.push(`- 1-minute load average at the start of the timed runs: median ${median(loads).toFixed(2)}, max ${Math.max(...loads).toFixed(2)} (with ${cpus().length} cores, anything near or above ${cpus().length} means other work shared the CPUs)`);
  lines.push(`- OS: ${mc.os}, kernel ${mc.kernel}; work directory on ${mc.fs}`);
  lines.push(`- Node ${mc.node}; S3 server: Ceph radosgw (test/servers/ceph.sh, memstore OSD) ${cephInfo}`);
  lines.push(`- Reference tools: ${[...tools].filter((t) => !t.startsWith('/') && !['strace', 'md5sum'].includes(t)).map((t) => `${versionOf(t)}`).join('; ')}`);
  if (skipped.length) lines.push(`- SKIPPED: ${skipped.join('; ')}`);
  lines.push('');
  writeFileSync(opts.out, lines.join('\n'));
  return { text: lines.join('\n'), missed };
}

// --- main -----------------------------------------------------------------------------
let cephStarted = false;
function cleanup() {
  if (cephStarted) {
    stopCeph(ROOT);
    cephStarted = false;
  }
  if (!opts.keep && !opts.work) rmrf(work);
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`\n[bench] ${sig}: cleaning up`);
    cleanup();
    process.exit(130);
  });
}

async function main() {
  const t0 = Date.now();
  log(`sizes: model ${sizeLabel(sizes.modelMiB)}, ${count(sizes.files)} files, memory file ${sizeLabel(sizes.rssMiB)}; ${opts.runs} run(s); sections ${opts.only.join(', ')}; work dir ${work}`);
  if (!existsSync(CPV) || !existsSync(join(ROOT, 'packages/cli/dist'))) throw new Error('cpv is not built: run `node scripts/build.js` (or `npm run bench`, which builds)');
  const want = ['/usr/bin/time', 'strace'];
  if (only.has('add')) want.push('b3sum', 'md5sum', 'restic', 'borg', 'git-lfs');
  if (only.has('versions')) want.push('restic', 'borg');
  if (only.has('push') || only.has('files')) want.push('rclone', 'aws');
  const tools = ensureTools([...new Set(want)], { install: opts.install, log });
  for (const t of want) if (!tools.has(t)) skipped.push(`${t} (not installed)`);
  let cephInfo = '';
  const needS3 = ['push', 'files', 'rss'].some((s) => only.has(s));
  if (needS3) {
    // Room for the three tools' copies of the model, or the memory file, in RAM.
    const memstore = Math.max(3 * sizes.modelMiB, sizes.rssMiB) * MiB + 2 * 1024 * MiB;
    log(`starting Ceph radosgw on port ${CEPH.port} (state ${CEPH.root})`);
    const c = startCeph(ROOT, memstore);
    if (!c.ok) {
      console.log(`\n!!! CEPH RADOSGW COULD NOT START: ${c.reason}\n!!! push, files and rss sections SKIPPED !!!\n`);
      for (const s of ['push', 'files', 'rss']) if (only.delete(s)) skipped.push(`${s} section (Ceph did not start: ${c.reason})`);
    } else {
      cephStarted = true;
      cephInfo = `(${c.reason.replace(/^ceph: /, '')})`;
      await ensureBucket(BUCKET);
    }
  }
  generate();
  if (only.has('add')) sectionAdd(tools);
  if (only.has('versions')) sectionVersions(tools);
  if (only.has('push')) await sectionTransfer('push', tools);
  if (only.has('files')) await sectionTransfer('files', tools);
  if (only.has('status')) await sectionStatus();
  if (only.has('rss')) await sectionRss();
  for (const s of skipped.filter((x) => / section /.test(x))) {
    const id = s.split(' ')[0];
    goal(id, `${id} section`, 'skipped', '', null);
  }
  const { text, missed } = writeReport(tools, cephInfo, Date.now() - t0);
  console.log(`\n${text}`);
  log(`results written to ${relative(process.cwd(), opts.out)}`);
  if (missed.length > 0) log(`${missed.length} goal(s) missed or not measured: ${missed.map((g) => g.id).join(', ')}`);
  return missed.length === 0 ? 0 : 1;
}

main()
  .then((code) => {
    cleanup();
    process.exit(code);
  })
  .catch((err) => {
    console.error(`\n[bench] FAILED: ${err.stack ?? err}`);
    if (opts.keep || opts.work) console.error(`[bench] work directory kept at ${work}`);
    cleanup();
    process.exit(2);
  });
