// Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per
// area (cpv core, cpv cli, a dependency, Node internals, GC, idle). Usable as a module
// or from the shell: `node bench/lib/cpuprofile.js FILE.cpuprofile [TOP]`.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where a function lives, shortened: `core/chunk/fastcdc.js`, `node_modules/@aws-sdk/...`. */
function where(url) {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  const pkg = /\/packages\/(core|cli)\/dist\/(.*)$/.exec(u);
  if (pkg) return `${pkg[1]}/${pkg[2]}`;
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    u = u.slice(nm + '/node_modules/'.length).replace(/^\.pnpm\/[^/]+\/node_modules\//, '');
    return u;
  }
  return u;
}

function area(fn, url) {
  if (fn === '(idle)') return 'idle (waiting for I/O)';
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)') return 'V8 and native code (program)';
  if (fn === '(root)') return 'root';
  if (url.startsWith('node:internal/modules') || url.includes('cjs-module-lexer') || ['internalModuleStat', 'compileFunction'].includes(fn)) return 'module loading';
  if (!url) return 'native bindings (fs, crypto, zlib…)';
  const w = where(url);
  if (w.startsWith('core/')) return `cpv core: ${w.slice(5).split('/')[0]}`;
  if (w.startsWith('cli/')) return 'cpv cli';
  if (url.startsWith('node:')) return 'node internals';
  if (/node_modules\//.test(url)) {
    const parts = w.split('/');
    return `dependency: ${parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  return w;
}

/**
 * Summarise a profile. Returns { totalMs, top: [{ name, where, selfMs, pct }], areas:
 * [{ area, selfMs, pct }] } sorted by self time.
 */
export function summarise(profile, top = 15) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    // V8 records the time since the previous sample with each sample; the interval a
    // sample stands for is the one that follows it.
    const dt = (timeDeltas[i + 1] ?? timeDeltas[i] ?? 0) / 1000;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }
  const fns = new Map();
  const areas = new Map();
  let total = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const name = cf.functionName || '(anonymous)';
    const loc = where(cf.url);
    const key = `${name}\u0000${loc}:${cf.lineNumber + 1}`;
    const e = fns.get(key) ?? { name, where: cf.url ? `${loc}:${cf.lineNumber + 1}` : '', selfMs: 0 };
    e.selfMs += ms;
    fns.set(key, e);
    const a = area(name, cf.url);
    areas.set(a, (areas.get(a) ?? 0) + ms);
    total += ms;
  }
  const pct = (ms) => (total > 0 ? (100 * ms) / total : 0);
  return {
    totalMs: total,
    top: [...fns.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, top).map((e) => ({ ...e, pct: pct(e.selfMs) })),
    areas: [...areas].map(([a, ms]) => ({ area: a, selfMs: ms, pct: pct(ms) })).sort((a, b) => b.selfMs - a.selfMs),
  };
}

/** Markdown tables for a summary. */
export function summaryMarkdown(s, { areas = 8 } = {}) {
  const f = (ms) => ms.toFixed(0);
  const lines = [`Main-thread profile, ${(s.totalMs / 1000).toFixed(2)} s sampled.`, '', '| area | self ms | % |', '|---|---:|---:|'];
  for (const a of s.areas.slice(0, areas)) lines.push(`| ${a.area} | ${f(a.selfMs)} | ${a.pct.toFixed(1)} |`);
  lines.push('', '| function | where | self ms | % |', '|---|---|---:|---:|');
  for (const e of s.top) lines.push(`| \`${e.name}\` | ${e.where ? `\`${e.where}\`` : ''} | ${f(e.selfMs)} | ${e.pct.toFixed(1)} |`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node bench/lib/cpuprofile.js FILE.cpuprofile [TOP]');
    process.exit(2);
  }
  console.log(summaryMarkdown(summarise(JSON.parse(readFileSync(file, 'utf8')), Number(top ?? 15))));
}
