#!/bin/sh
# Every test, on a fresh machine that has only Node 20, npm and git: installs the
# locked dependencies (pnpm bootstrapped through npx), builds, runs unit and
# end-to-end tests, and prints "vitest: N passed, N failed, N skipped".
set -eu
cd "$(dirname "$0")/.."
PNPM="npx -y pnpm@10.34.9"
$PNPM install --frozen-lockfile --reporter=silent
node scripts/build.js
# Type-check the tests too (vitest strips types without checking them).
node node_modules/typescript/bin/tsc -p tsconfig.test.json
exec node scripts/run-tests.js "$@"
