#!/usr/bin/env bash
# Builds (once) an offline Pulumi toolchain from Go modules and caches it
# outside the repository:
#
#   ${SLIPWAY_TOOLCHAIN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/slipway/toolchain}/<versionkey>/
#     bin/pulumi                          the CLI / engine
#     bin/pulumi-language-nodejs          the Node.js language host
#     bin/pulumi-resource-pulumi-nodejs   shim that runs Node.js dynamic providers
#     pulumi-home/plugins/resource-kubernetes-v<ver>/   installed provider plugin
#
# It then runs scripts/cluster-toolchain.sh, which builds the local
# Kubernetes cluster's components into a cache of their own.
#
# Usage:
#   bash scripts/toolchain.sh          build whatever is missing (idempotent)
#   bash scripts/toolchain.sh --env    print the shell lines that select the toolchain:
#                                      eval "$(bash scripts/toolchain.sh --env)"
#   bash scripts/toolchain.sh --dir    print the cache directory of this version key
#
# Versions come from scripts/toolchain/versions.env. If a `pulumi` that is not
# ours is already on PATH (the normal case on a machine with internet access),
# the script says so and builds nothing; set SLIPWAY_TOOLCHAIN_FORCE=1 to build
# anyway.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wrappers="$here/toolchain"
versions_file="$wrappers/versions.env"

say() { printf '%s\n' "$*" >&2; }
die() { say "toolchain: ERROR: $*"; exit 1; }

[ -f "$versions_file" ] || die "missing $versions_file"
# shellcheck source=toolchain/versions.env
. "$versions_file"

sha() { sha256sum | cut -c1-"${1:-12}"; }

versions_hash="$(sha 10 < "$versions_file")"
version_key="pulumi-${PULUMI_VERSION}_k8s-${KUBERNETES_PROVIDER_VERSION}_${versions_hash}"
cache_root="${SLIPWAY_TOOLCHAIN_HOME:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/slipway/toolchain}"
case "$cache_root" in /*) ;; *) cache_root="$PWD/$cache_root" ;; esac
dir="$cache_root/$version_key"
bindir="$dir/bin"
pulumi_home="$dir/pulumi-home"
stamps="$dir/stamps"
logs="$dir/logs"

mode=build
case "${1:-}" in
  "") ;;
  --env) mode=env ;;
  --dir) printf '%s\n' "$dir"; exit 0 ;;
  -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1 (use --env, --dir or --help)" ;;
esac

# The local cluster's components (kine, control plane, kwok, Traefik, Gateway
# API CRDs) have a script, cache and lock of their own; they build alongside
# the Pulumi part (each go build leaves a core idle in its serial phases, the
# big packages and the link, which the other fills), and this script ends when
# both have, with a failure if either failed. SLIPWAY_CLUSTER_TOOLCHAIN=off
# skips them (render mode only).
if [ "$mode" = build ] && [ "${SLIPWAY_CLUSTER_TOOLCHAIN:-on}" != off ]; then
  bash "$here/cluster-toolchain.sh" &
  cluster_pid=$!
  finish_cluster_toolchain() {
    local rc=$?
    trap - EXIT
    if ! wait "$cluster_pid"; then
      say "toolchain: the local cluster's components did not build (see above); SLIPWAY_CLUSTER_TOOLCHAIN=off skips them"
      [ "$rc" -ne 0 ] || rc=1
    fi
    exit "$rc"
  }
  trap finish_cluster_toolchain EXIT
fi

# A pulumi on PATH that does not live in our cache belongs to the user.
foreign_pulumi() {
  local p real root_real
  p="$(command -v pulumi 2>/dev/null)" || return 1
  real="$(readlink -f "$p" 2>/dev/null || printf '%s' "$p")"
  root_real="$(readlink -f "$cache_root" 2>/dev/null || printf '%s' "$cache_root")"
  case "$real" in
    "$cache_root"/* | "$root_real"/*) return 1 ;;
  esac
  printf '%s\n' "$p"
}

components=(pulumi-cli language-nodejs dynamic-provider-shim kubernetes-provider)

built() {
  local c
  for c in "${components[@]}"; do
    [ -f "$stamps/$c" ] || return 1
  done
  [ -x "$bindir/pulumi" ]
}

if [ "$mode" = env ]; then
  if [ -z "${SLIPWAY_TOOLCHAIN_FORCE:-}" ] && other="$(foreign_pulumi)"; then
    echo "# toolchain: using the pulumi already on PATH ($other); Slipway's offline toolchain is not selected"
    echo "export SLIPWAY_K8S_PLUGIN_VERSION=$KUBERNETES_PROVIDER_VERSION"
    exit 0
  fi
  built || die "the toolchain for $version_key is not built; run: bash scripts/toolchain.sh"
  cat <<EOF
export PATH="$bindir:\$PATH"
export PULUMI_HOME="$pulumi_home"
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
export SLIPWAY_K8S_PLUGIN_VERSION=$KUBERNETES_PROVIDER_VERSION
EOF
  exit 0
fi

if [ -z "${SLIPWAY_TOOLCHAIN_FORCE:-}" ] && other="$(foreign_pulumi)"; then
  say "toolchain: a pulumi that is not Slipway's is already on PATH: $other ($("$other" version 2>/dev/null || echo 'version unknown'))"
  say "toolchain: building nothing (set SLIPWAY_TOOLCHAIN_FORCE=1 to build the offline toolchain anyway)"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  if built; then
    say "toolchain: 'go' is not on PATH; keeping the existing build in $dir"
    exit 0
  fi
  die "cannot build any component (pulumi-cli, language-nodejs, kubernetes-provider): 'go' is not on PATH"
fi

mkdir -p "$bindir" "$pulumi_home" "$stamps" "$logs" "$dir/build"

# One build at a time per cache root (several checkouts may share it).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_root/.lock"
  if ! flock -n 9; then
    say "toolchain: another toolchain build holds $cache_root/.lock; waiting for it"
    flock 9
  fi
fi

# Default GOMODCACHE/GOCACHE live outside the repo and persist; only step in
# when the build cache is disabled or not set up.
if [ "$(go env GOCACHE 2>/dev/null)" = off ] || [ -z "$(go env GOCACHE 2>/dev/null)" ]; then
  export GOCACHE="$cache_root/go-build"
fi
if [ -z "$(go env GOMODCACHE 2>/dev/null)" ]; then
  export GOMODCACHE="$cache_root/go-mod"
fi
# Use the committed go.mod/go.sum exactly as they are.
export GOFLAGS="-mod=readonly -buildvcs=false"
unset GOOS GOARCH GOWORK 2>/dev/null || true
export GOWORK=off

# Inputs of a component: versions.env, the Go version, its wrapper module files.
inputs_hash() {
  local c="$1"
  {
    echo "recipe 1"  # bump to force a rebuild after changing how a component is built
    cat "$versions_file"
    go version
    if [ -d "$wrappers/$c" ]; then
      find "$wrappers/$c" -type f -print0 | LC_ALL=C sort -z | xargs -0 cat
    fi
  } | sha 16
}

is_current() { [ -f "$stamps/$1" ] && [ "$(cat "$stamps/$1")" = "$(inputs_hash "$1")" ]; }
mark_done() { inputs_hash "$1" > "$stamps/$1"; }

# require_in_gomod <module dir> <module path> <version>
require_in_gomod() {
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$2[[:space:]]+$3([[:space:]]|$)" "$wrappers/$1/go.mod" ||
    die "$1: scripts/toolchain/$1/go.mod does not require $2 $3 (versions.env and the wrapper disagree)"
}

# run_step <component> <label> <function>: one progress line per component;
# the build output goes to a log that is shown on failure.
failed=()
run_step() {
  local c="$1" label="$2" fn="$3" start log rc
  if is_current "$c"; then
    say "$label … cached"
    return 0
  fi
  log="$logs/$c.log"
  # Whole lines: the cluster's build prints alongside this one.
  say "$label …"
  start=$SECONDS
  # Not inside an `if`: bash ignores `set -e` in a condition, even in a subshell.
  set +e
  ( set -euo pipefail; "$fn" ) >"$log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    mark_done "$c"
    say "$label … done in $((SECONDS - start))s"
  else
    say "$label … FAILED after $((SECONDS - start))s"
    say "---- last lines of $log ----"
    tail -n 25 "$log" >&2 || true
    say "----"
    failed+=("$c")
    return 1
  fi
}

build_pulumi_cli() {
  require_in_gomod pulumi-cli github.com/pulumi/pulumi/pkg/v3 "$PULUMI_VERSION"
  require_in_gomod pulumi-cli github.com/pulumi/pulumi/sdk/v3 "$PULUMI_VERSION"
  cd "$wrappers/pulumi-cli"
  CGO_ENABLED=0 go build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    -o "$bindir/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  mv -f "$bindir/pulumi.tmp" "$bindir/pulumi"
  local got
  got="$("$bindir/pulumi" version)"
  echo "pulumi version: $got"
  [ "$got" = "$PULUMI_VERSION" ] || { echo "expected $PULUMI_VERSION"; return 1; }
}

build_language_nodejs() {
  require_in_gomod language-nodejs "$NODEJS_LANGUAGE_HOST_MODULE" "$NODEJS_LANGUAGE_HOST_VERSION"
  cd "$wrappers/language-nodejs"
  CGO_ENABLED=0 go build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$NODEJS_LANGUAGE_HOST_VERSION" \
    -o "$bindir/pulumi-language-nodejs.tmp" "$NODEJS_LANGUAGE_HOST_PACKAGE"
  mv -f "$bindir/pulumi-language-nodejs.tmp" "$bindir/pulumi-language-nodejs"
}

build_dynamic_provider_shim() {
  cat >"$bindir/pulumi-resource-pulumi-nodejs.tmp" <<'EOF'
#!/bin/sh
# Slipway's pulumi-resource-pulumi-nodejs: runs Pulumi dynamic providers written
# in Node.js with the @pulumi/pulumi package of the project being deployed. The
# engine starts it in the program's directory.
entry=./node_modules/@pulumi/pulumi/cmd/dynamic-provider
if [ ! -f "$entry/index.js" ]; then
  # Not installed right here (e.g. hoisted to a parent workspace): let node
  # find the package from the current directory.
  if found=$(node -e 'const p=require("path");process.stdout.write(p.dirname(require.resolve("@pulumi/pulumi/package.json",{paths:[process.cwd()]})))' 2>/dev/null); then
    entry="$found/cmd/dynamic-provider"
  fi
fi
exec node "$entry" "$@"
EOF
  chmod +x "$bindir/pulumi-resource-pulumi-nodejs.tmp"
  mv -f "$bindir/pulumi-resource-pulumi-nodejs.tmp" "$bindir/pulumi-resource-pulumi-nodejs"
}

build_kubernetes_provider() {
  local c=kubernetes-provider src work out
  require_in_gomod "$c" "$KUBERNETES_PROVIDER_MODULE" "$KUBERNETES_PROVIDER_PSEUDO_VERSION"
  require_in_gomod "$c" github.com/pulumi/pulumi-kubernetes/sdk/v4 "$KUBERNETES_SDK_VERSION"
  [ -x "$bindir/pulumi" ] || { echo "the pulumi CLI is needed to install the plugin"; return 1; }
  src="$(cd "$wrappers/$c" && go mod download -json "$KUBERNETES_PROVIDER_MODULE@$KUBERNETES_PROVIDER_PSEUDO_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$src" ] && [ -d "$src" ] || { echo "cannot locate $KUBERNETES_PROVIDER_MODULE in the module cache"; return 1; }
  echo "provider source: $src"
  # go:embed only reaches files inside the module, so build in a scratch copy
  # of the wrapper with the schema and mapping from the provider module.
  work="$dir/build/$c"
  rm -rf "$work"
  mkdir -p "$work"
  cp "$wrappers/$c/go.mod" "$wrappers/$c/go.sum" "$wrappers/$c/main.go" "$work/"
  cp "$src/cmd/pulumi-resource-kubernetes/schema.json" "$src/cmd/pulumi-resource-kubernetes/terraform-mapping.json" "$work/"
  chmod u+w "$work"/*.json
  out="$dir/build/pulumi-resource-kubernetes"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$KUBERNETES_PROVIDER_VERSION" \
    -o "$out" .)
  PULUMI_HOME="$pulumi_home" PULUMI_SKIP_UPDATE_CHECK=true "$bindir/pulumi" plugin rm resource kubernetes --all --yes || true
  PULUMI_HOME="$pulumi_home" PULUMI_SKIP_UPDATE_CHECK=true \
    "$bindir/pulumi" plugin install resource kubernetes "$KUBERNETES_PROVIDER_VERSION" --file "$out"
  PULUMI_HOME="$pulumi_home" PULUMI_SKIP_UPDATE_CHECK=true "$bindir/pulumi" plugin ls
  rm -rf "$work" "$out"
}

say "toolchain: $dir"
run_step pulumi-cli "building pulumi CLI $PULUMI_VERSION" build_pulumi_cli || true
run_step language-nodejs "building pulumi-language-nodejs (from $NODEJS_LANGUAGE_HOST_MODULE $NODEJS_LANGUAGE_HOST_VERSION)" build_language_nodejs || true
run_step dynamic-provider-shim "writing pulumi-resource-pulumi-nodejs shim" build_dynamic_provider_shim || true
if [ -x "$bindir/pulumi" ] && [ -f "$stamps/pulumi-cli" ]; then
  run_step kubernetes-provider "building kubernetes provider $KUBERNETES_PROVIDER_VERSION ($KUBERNETES_PROVIDER_PSEUDO_VERSION)" build_kubernetes_provider || true
else
  say "building kubernetes provider $KUBERNETES_PROVIDER_VERSION … skipped: needs the pulumi CLI"
  failed+=(kubernetes-provider)
fi
if [ -z "${RANDOM_PROVIDER_PSEUDO_VERSION:-}" ]; then
  say "random provider $RANDOM_PROVIDER_VERSION … not built: $RANDOM_PROVIDER_MODULE is not available from the Go module proxy (see scripts/toolchain/versions.env)"
fi

if [ "${#failed[@]}" -gt 0 ]; then
  die "could not build: ${failed[*]} (logs in $logs)"
fi
say "toolchain: ready. Use it with: eval \"\$(bash scripts/toolchain.sh --env)\""
