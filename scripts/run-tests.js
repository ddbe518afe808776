// Runs every vitest project once, then prints one closing line that any CI can read:
//   vitest: N passed, N failed, N skipped
// and fails when a test failed, when vitest failed, or when no test ran at all.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const report = join(root, '.vitest-report.json');
rmSync(report, { force: true });
const vitest = join(dirname(createRequire(join(root, 'package.json')).resolve('vitest/package.json')), 'vitest.mjs');
const run = spawnSync(process.execPath, [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
});
let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests ?? 0;
  failed = r.numFailedTests ?? 0;
  skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  if (r.numFailedTestSuites > 0 && failed === 0) failed = r.numFailedTestSuites;
}
console.log(`vitest: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (run.status !== 0 || failed > 0 || passed === 0) {
  if (passed === 0 && failed === 0) console.error('no test ran');
  process.exit(run.status || 1);
}
