#!/usr/bin/env bash
# All test tiers (unit, engine, providers) in one vitest run, after making sure
# the real servers the provider tier talks to are installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p .slipway
if [[ -x scripts/install-test-servers.sh ]]; then bash scripts/install-test-servers.sh; fi
# The engine runs the program transpile-only (fast); types are checked here, once.
echo "slipway: type-checking (tsc --noEmit)…" >&2
tsc --noEmit -p .
# Static checks before any tier, so a violation fails CI: formatting, lint (unused
# variables and imports, floating promises), unused files/exports/dependencies.
echo "slipway: prettier --check, eslint, knip…" >&2
prettier --check . --log-level warn
eslint .
knip
status=0
vitest run --reporter=default --reporter=json --outputFile.json=.slipway/vitest.json "$@" || status=$?
# One plain closing line that any CI reads: "N passed, N failed, N skipped".
node -e '
  const r = require("./.slipway/vitest.json");
  const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (r.numTotalTests === 0) process.exit(1);
' || status=1
exit $status
