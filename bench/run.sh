#!/bin/sh
# The benchmark on a fresh machine: installs the locked dependencies, builds, then runs
# bench/run.js (which installs the reference tools and starts Ceph radosgw itself).
# Arguments go to bench/run.js; try --help or --quick.
set -eu
cd "$(dirname "$0")/.."
PNPM="npx -y pnpm@10.34.9"
$PNPM install --frozen-lockfile --reporter=silent
node scripts/build.js
CPV_BENCH_COMMAND="npm run bench${*:+ -- $*}" exec node bench/run.js "$@"
