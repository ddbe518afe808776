#!/bin/sh
# The end-to-end demo on a fresh machine: needs only Node 20, npm and git.
set -eu
cd "$(dirname "$0")/.."
PNPM="npx -y pnpm@10.34.9"
$PNPM install --frozen-lockfile --reporter=silent
node scripts/build.js
exec node scripts/demo.js
