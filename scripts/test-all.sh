#!/usr/bin/env bash
# `npm test`: every check and every test tier, with the slow toolchain build
# overlapped with what does not need it:
#
#   1. the toolchain (scripts/toolchain.sh: the Pulumi CLI, language host and
#      provider, and alongside them the local cluster's components) builds in the background,
#      its output in .slipway/toolchain.log, its progress lines here prefixed
#      "[toolchain]" (a cached toolchain takes seconds);
#   2. meanwhile: the test servers (scripts/install-test-servers.sh), tsc,
#      prettier --check, eslint, knip, the import rules (dependency-cruiser),
#      and the unit and providers tiers;
#   3. once the toolchain is ready: the program's build (dist/, which the
#      engine runs) and the engine tier.
#
# A failing step does not stop the later ones (one run shows every failure),
# except that the engine tier needs the toolchain: when its build fails, the
# engine tier is not run and the failure names the component. The closing
# line, "N passed, N failed, N skipped", covers every tier that ran; the exit
# status is 0 only when every step passed. Arguments go to both vitest runs
# (e.g. a file filter).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p .slipway
started=$SECONDS
failed_steps=()
say() { printf 'slipway: %s\n' "$*" >&2; }
elapsed() { local s=$1; printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# step <name> <command...>: runs one check, records it as failed when it fails.
step() {
  local name="$1" t0=$SECONDS
  shift
  say "$name…"
  if "$@"; then
    say "$name: ok ($(elapsed $((SECONDS - t0))))"
  else
    say "$name: FAILED ($(elapsed $((SECONDS - t0))))"
    failed_steps+=("$name")
  fi
}

# 1. The toolchain, in its own process group so that it can be stopped whole.
toolchain_log=.slipway/toolchain.log
: >"$toolchain_log"
toolchain_done=.slipway/toolchain.seconds
rm -f "$toolchain_done"
set -m
(
  bash scripts/toolchain.sh
  rc=$?
  echo "$SECONDS" >"$toolchain_done"
  exit $rc
) >"$toolchain_log" 2>&1 &
toolchain_pid=$!
set +m
# Its progress lines as they complete (tail ends when the build does).
tail -n +1 -F --pid="$toolchain_pid" "$toolchain_log" 2>/dev/null | sed -u 's/^/[toolchain] /' >&2 &
follower_pid=$!
stop_toolchain() {
  if kill -0 "$toolchain_pid" 2>/dev/null; then
    say "stopping the toolchain build (pid $toolchain_pid)"
    kill -TERM -- "-$toolchain_pid" 2>/dev/null || true
  fi
}
trap stop_toolchain EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 2. Everything that does not need the toolchain.
if [[ -x scripts/install-test-servers.sh ]]; then
  step "test servers (scripts/install-test-servers.sh)" bash scripts/install-test-servers.sh
fi
# The engine runs the program transpile-only (fast); types are checked here, once.
step "type check (tsc --noEmit)" tsc --noEmit -p .
# Formatting, lint (unused variables and imports, floating promises), unused files/exports/dependencies,
# and the layers (no import circle, no upward import: .dependency-cruiser.cjs).
step "prettier --check" prettier --check . --log-level warn
step "eslint" eslint .
step "knip" knip
step "import rules (dependency-cruiser)" depcruise src components bin policy lib index.ts
rm -f .slipway/vitest-*.json
step "unit and providers tiers" vitest run --project unit --project providers --passWithNoTests \
  --reporter=default --reporter=json --outputFile.json=.slipway/vitest-early.json "$@"

# 3. The toolchain, then the engine tier.
if kill -0 "$toolchain_pid" 2>/dev/null; then
  say "waiting for the toolchain build (log: $toolchain_log)…"
fi
wait "$toolchain_pid"
toolchain_rc=$?
wait "$follower_pid" 2>/dev/null || true
toolchain_took="$(elapsed $(($(cat "$toolchain_done" 2>/dev/null || echo "$SECONDS") - started)))"
if [[ $toolchain_rc -eq 0 ]]; then
  say "toolchain: ready (built or checked in $toolchain_took, alongside the steps above)"
  if env_lines="$(bash scripts/toolchain.sh --env)"; then
    eval "$env_lines"
    # What the engine runs: the program's precompiled build (dist/; bin/program-build.js).
    step "program build (npm run build)" node bin/program-build.js
    step "engine tier" vitest run --project engine --passWithNoTests \
      --reporter=default --reporter=json --outputFile.json=.slipway/vitest-engine.json "$@"
  else
    failed_steps+=("toolchain (--env)")
  fi
else
  # The component that failed, from the toolchain's own error lines.
  what="$(grep -E 'ERROR:|FAILED after' "$toolchain_log" | sed 's/^/  /')"
  say "toolchain: FAILED (exit $toolchain_rc after $toolchain_took); the engine tier is not run"
  [[ -n "$what" ]] && printf '%s\n' "$what" >&2
  say "toolchain log: $toolchain_log"
  failed_steps+=("toolchain build")
fi

# One plain closing line that any CI reads: "N passed, N failed, N skipped", over every tier that ran.
node -e '
  const fs = require("node:fs");
  const t = { passed: 0, failed: 0, skipped: 0, total: 0 };
  for (const file of process.argv.slice(1)) {
    if (!fs.existsSync(file)) continue; // the tier did not run (its failure is listed below)
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    t.passed += r.numPassedTests;
    t.failed += r.numFailedTests;
    t.skipped += (r.numPendingTests || 0) + (r.numTodoTests || 0);
    t.total += r.numTotalTests;
  }
  console.log(`${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
  if (t.total === 0) process.exit(1);
' .slipway/vitest-early.json .slipway/vitest-engine.json || failed_steps+=("test summary (no tests ran)")
say "total $(elapsed $((SECONDS - started)))"
if [[ ${#failed_steps[@]} -gt 0 ]]; then
  say "failed: $(printf '%s; ' "${failed_steps[@]}" | sed 's/; $//')"
  exit 1
fi
