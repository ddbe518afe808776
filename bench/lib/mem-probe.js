// Loaded with `node --import` into a measured cpv process: samples
// process.memoryUsage() and, at exit, writes the sample with the highest RSS (with its
// split into V8 heap, external memory and ArrayBuffers) as JSON to $CPV_BENCH_MEM_OUT.
// It tells whether peak memory is JavaScript objects or Buffer data.
import { writeFileSync } from 'node:fs';

const out = process.env.CPV_BENCH_MEM_OUT;
if (out) {
  let peak = { rss: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    if (m.rss > peak.rss) peak = m;
  };
  setInterval(sample, 20).unref();
  process.on('exit', () => {
    sample();
    writeFileSync(out, JSON.stringify(peak));
  });
}
