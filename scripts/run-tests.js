// Runs the test suites and prints one closing line that any CI can read:
//   vitest: N passed, N failed, N skipped
// It fails when a test failed, when vitest failed, or when no test ran at all.
//
// Passes:
//   main   every unit and end-to-end test; S3 suites against Ceph radosgw (or the
//          server named by CPV_TEST_S3_ENDPOINT)
//   swift  the S3 backend conformance suite and the S3 journey again, against
//          OpenStack Swift with s3api (another implementation catches what one hides)
// `node scripts/run-tests.js` runs both; `--pass main|swift` one; extra arguments
// (files, -t filters) go to vitest and imply the main pass only.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const vitest = join(dirname(createRequire(join(root, 'package.json')).resolve('vitest/package.json')), 'vitest.mjs');

const args = process.argv.slice(2);
let passes = ['main', 'swift'];
const at = args.indexOf('--pass');
if (at >= 0) {
  passes = [args[at + 1]];
  args.splice(at, 2);
} else if (args.length > 0) passes = ['main'];

const PASSES = {
  main: { env: {}, args },
  swift: { env: { CPV_TEST_S3: 'swift' }, args: ['--project', 'e2e', 'test/s3-backend.test.ts', 'test/journey.test.ts', ...args] },
};

const total = { passed: 0, failed: 0, skipped: 0 };
let status = 0;
for (const name of passes) {
  const pass = PASSES[name];
  if (!pass) {
    console.error(`unknown pass ${name} (main or swift)`);
    process.exit(2);
  }
  if (process.env.CPV_TEST_S3_ENDPOINT && name === 'swift') continue; // an external server replaces both
  const report = join(root, `.vitest-report-${name}.json`);
  rmSync(report, { force: true });
  console.log(`\n=== test pass: ${name} ===`);
  const run = spawnSync(process.execPath, [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...pass.args], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...pass.env },
  });
  const counts = { passed: 0, failed: 0, skipped: 0 };
  if (existsSync(report)) {
    const r = JSON.parse(readFileSync(report, 'utf8'));
    counts.passed = r.numPassedTests ?? 0;
    counts.failed = r.numFailedTests ?? 0;
    counts.skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    if (r.numFailedTestSuites > 0 && counts.failed === 0) counts.failed = r.numFailedTestSuites;
  } else if (run.status !== 0) counts.failed = 1;
  console.log(`${name}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  for (const k of Object.keys(total)) total[k] += counts[k];
  if (run.status !== 0 || counts.failed > 0) status = run.status || 1;
}
console.log(`vitest: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
if (total.passed === 0) {
  console.error('no test ran');
  status ||= 1;
}
process.exit(status);
