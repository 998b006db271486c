#!/usr/bin/env bash
# Builds (once) the parts of Slipway's local Kubernetes cluster from Go modules
# and caches them outside the repository (see README.md, "Local cluster"):
#
#   ${SLIPWAY_CLUSTER_TOOLCHAIN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/slipway/cluster}/<versionkey>/
#     bin/kine                       etcd API on sqlite (the API server's storage)
#     bin/kube-apiserver             \
#     bin/kube-controller-manager     > the control plane (one go build, shared packages)
#     bin/kube-scheduler             /
#     bin/kwok                       fake node + pod status (no container runtime)
#     bin/traefik                    Gateway API data plane
#     kwok/stages.yaml               kwok's "fast" node and pod stages (from its module zip)
#     gateway-api/*.yaml             Gateway API standard CRDs (from its module zip)
#
# Usage:
#   bash scripts/cluster-toolchain.sh          build whatever is missing (idempotent)
#   bash scripts/cluster-toolchain.sh --dir    print the cache directory of this version key
#   bash scripts/cluster-toolchain.sh --check  exit 0 when everything is in place
#
# Versions come from scripts/cluster-toolchain/versions.env. A binary of the
# same name already on PATH (and not ours) is used instead of building it: the
# cache's bin/ then holds a symlink to it. SLIPWAY_CLUSTER_TOOLCHAIN_FORCE=1
# builds everything anyway. scripts/toolchain.sh runs this script; it has its
# own lock, so it can build while the Pulumi toolchain builds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wrappers="$here/cluster-toolchain"
versions_file="$wrappers/versions.env"

say() { printf '%s\n' "$*" >&2; }
die() { say "cluster toolchain: ERROR: $*"; exit 1; }

[ -f "$versions_file" ] || die "missing $versions_file"
# shellcheck source=cluster-toolchain/versions.env
. "$versions_file"

sha() { sha256sum | cut -c1-"${1:-12}"; }

versions_hash="$(sha 10 < "$versions_file")"
version_key="k8s-${KUBERNETES_VERSION}_traefik-${TRAEFIK_VERSION}_${versions_hash}"
cache_root="${SLIPWAY_CLUSTER_TOOLCHAIN_HOME:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/slipway/cluster}"
case "$cache_root" in /*) ;; *) cache_root="$PWD/$cache_root" ;; esac
dir="$cache_root/$version_key"
bindir="$dir/bin"
stamps="$dir/stamps"
logs="$dir/logs"

binaries=(kine kube-apiserver kube-controller-manager kube-scheduler kwok traefik)
control_plane=(kube-apiserver kube-controller-manager kube-scheduler)

all_in_place() {
  local b
  for b in "${binaries[@]}"; do [ -x "$bindir/$b" ] || return 1; done
  [ -s "$dir/kwok/stages.yaml" ] && compgen -G "$dir/gateway-api/*.yaml" >/dev/null
}

mode=build
case "${1:-}" in
  "") ;;
  --dir) printf '%s\n' "$dir"; exit 0 ;;
  --check) all_in_place; exit $? ;;
  -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1 (use --dir, --check or --help)" ;;
esac

mkdir -p "$bindir" "$stamps" "$logs" "$dir/build"

# One build at a time per cache root (several checkouts may share it). A lock
# of its own: the Pulumi toolchain's lock may be held for a long build.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_root/.lock"
  if ! flock -n 9; then
    say "cluster toolchain: another build holds $cache_root/.lock; waiting for it"
    flock 9
  fi
fi

# A binary on PATH that does not live in our cache belongs to the user.
foreign() {
  local p real root_real
  [ -z "${SLIPWAY_CLUSTER_TOOLCHAIN_FORCE:-}" ] || return 1
  p="$(command -v "$1" 2>/dev/null)" || return 1
  real="$(readlink -f "$p" 2>/dev/null || printf '%s' "$p")"
  root_real="$(readlink -f "$cache_root" 2>/dev/null || printf '%s' "$cache_root")"
  case "$real" in
    "$cache_root"/* | "$root_real"/*) return 1 ;;
  esac
  printf '%s\n' "$p"
}

# use_foreign <binary>: link the user's binary into bin/; true when there is one.
# Without one, a link left from an earlier run goes, so that ours is built.
use_foreign() {
  local p
  if ! p="$(foreign "$1")"; then
    if [ -L "$bindir/$1" ]; then rm -f "$bindir/$1"; fi
    return 1
  fi
  if [ "$(readlink "$bindir/$1" 2>/dev/null)" != "$p" ]; then
    ln -sfn "$p" "$bindir/$1"
  fi
  say "$1 … using yours: $p"
}

have_go=1
command -v go >/dev/null 2>&1 || have_go=0
if [ "$have_go" = 1 ]; then
  if [ "$(go env GOCACHE 2>/dev/null)" = off ] || [ -z "$(go env GOCACHE 2>/dev/null)" ]; then
    export GOCACHE="$cache_root/go-build"
  fi
  if [ -z "$(go env GOMODCACHE 2>/dev/null)" ]; then
    export GOMODCACHE="$cache_root/go-mod"
  fi
  go_version="$(go version)"
fi
# Use the committed go.mod/go.sum exactly as they are.
export GOFLAGS="-mod=readonly -buildvcs=false"
unset GOOS GOARCH 2>/dev/null || true
export GOWORK=off

# Inputs of a component: versions.env, the Go version, its wrapper module files.
inputs_hash() {
  local c="$1"
  {
    echo "recipe 1" # bump to force a rebuild after changing how a component is built
    cat "$versions_file"
    echo "${go_version:-}"
    if [ -d "$wrappers/$c" ]; then
      find "$wrappers/$c" -type f -print0 | LC_ALL=C sort -z | xargs -0 cat
    fi
  } | sha 16
}
is_current() { [ -f "$stamps/$1" ] && [ "$(cat "$stamps/$1")" = "$(inputs_hash "$1")" ]; }
mark_done() { inputs_hash "$1" > "$stamps/$1"; }

# require_in_gomod <wrapper dir> <module path> <version>
require_in_gomod() {
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$2[[:space:]]+$3([[:space:]]|$)" "$wrappers/$1/go.mod" ||
    die "$1: scripts/cluster-toolchain/$1/go.mod does not require $2 $3 (versions.env and the wrapper disagree)"
}

# module_dir <wrapper dir> <module@version>: the module's directory in the module cache.
module_dir() {
  local d
  d="$(cd "$wrappers/$1" && go mod download -json "$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$d" ] && [ -d "$d" ] || { echo "cannot locate $2 in the module cache"; return 1; }
  printf '%s\n' "$d"
}

# run_step <component> <label> <function> <outputs...>: one progress line per
# component; the build output goes to a log that is shown on failure.
failed=()
run_step() {
  local c="$1" label="$2" fn="$3" start log rc o missing=0
  shift 3
  for o in "$@"; do [ -e "$dir/$o" ] || missing=1; done
  if [ "$missing" = 0 ] && is_current "$c"; then
    say "$label … cached"
    return 0
  fi
  if [ "$have_go" = 0 ]; then
    say "$label … FAILED: 'go' is not on PATH"
    failed+=("$c")
    return 1
  fi
  log="$logs/$c.log"
  # Whole lines: the Pulumi toolchain's build prints alongside this one.
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
    echo "$c $((SECONDS - start))s $(date -u +%FT%TZ)" >>"$logs/build-times.txt"
  else
    say "$label … FAILED after $((SECONDS - start))s"
    say "---- last lines of $log ----"
    tail -n 25 "$log" >&2 || true
    say "----"
    failed+=("$c")
    return 1
  fi
}

build_kine() {
  require_in_gomod kine github.com/k3s-io/kine "$KINE_VERSION"
  command -v "${CC:-gcc}" >/dev/null || { echo "kine needs a C compiler (cgo, sqlite): ${CC:-gcc} not found"; return 1; }
  cd "$wrappers/kine"
  CGO_ENABLED=1 go build -trimpath \
    -ldflags "-s -w -X github.com/k3s-io/kine/pkg/version.Version=$KINE_VERSION" \
    -o "$dir/build/" github.com/k3s-io/kine
  mv -f "$dir/build/kine" "$bindir/kine"
}

build_control_plane() {
  local b pkgs=()
  require_in_gomod kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION"
  for b in "${control_plane[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  local minor="${KUBERNETES_VERSION#v1.}"
  minor="${minor%%.*}"
  cd "$wrappers/kubernetes"
  # One invocation for the three: they share most packages.
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
    -o "$dir/build/" "${pkgs[@]}"
  for b in "${control_plane[@]}"; do mv -f "$dir/build/$b" "$bindir/$b"; done
  "$bindir/kube-apiserver" --version
}

build_kwok() {
  local src
  require_in_gomod kwok sigs.k8s.io/kwok "$KWOK_VERSION"
  cd "$wrappers/kwok"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/build/" sigs.k8s.io/kwok/cmd/kwok
  mv -f "$dir/build/kwok" "$bindir/kwok"
}

write_kwok_stages() {
  local src f
  require_in_gomod kwok sigs.k8s.io/kwok "$KWOK_VERSION"
  src="$(module_dir kwok "sigs.k8s.io/kwok@$KWOK_VERSION")"
  mkdir -p "$dir/kwok"
  {
    for f in node/fast/node-initialize.yaml pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      [ -f "$src/kustomize/stage/$f" ] || { echo "missing kustomize/stage/$f in $src" >&2; return 1; }
      echo "---"
      cat "$src/kustomize/stage/$f"
    done
  } >"$dir/kwok/stages.yaml.tmp"
  mv -f "$dir/kwok/stages.yaml.tmp" "$dir/kwok/stages.yaml"
}

build_traefik() {
  require_in_gomod traefik github.com/traefik/traefik/v3 "$TRAEFIK_VERSION"
  cd "$wrappers/traefik"
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
    -o "$dir/build/" github.com/traefik/traefik/v3/cmd/traefik
  mv -f "$dir/build/traefik" "$bindir/traefik"
  "$bindir/traefik" version
}

extract_gateway_api_crds() {
  local src
  src="$(cd "$dir/build" && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$src" ] && compgen -G "$src/config/crd/standard/*.yaml" >/dev/null ||
    { echo "no config/crd/standard/*.yaml in sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION ($src)"; return 1; }
  rm -rf "$dir/gateway-api.tmp"
  mkdir -p "$dir/gateway-api.tmp"
  cp "$src"/config/crd/standard/*.yaml "$dir/gateway-api.tmp/"
  chmod u+w "$dir/gateway-api.tmp"/*.yaml
  rm -rf "$dir/gateway-api"
  mv "$dir/gateway-api.tmp" "$dir/gateway-api"
  ls "$dir/gateway-api"
}

say "cluster toolchain: $dir"
use_foreign kine || run_step kine "building kine $KINE_VERSION (cgo, sqlite)" build_kine bin/kine || true
need_cp=()
for b in "${control_plane[@]}"; do use_foreign "$b" || need_cp+=("$b"); done
if [ "${#need_cp[@]}" -gt 0 ]; then
  run_step kubernetes "building kube-apiserver, kube-controller-manager, kube-scheduler $KUBERNETES_VERSION" \
    build_control_plane bin/kube-apiserver bin/kube-controller-manager bin/kube-scheduler || true
  # A user's binary wins over the one just built.
  for b in "${control_plane[@]}"; do use_foreign "$b" >/dev/null 2>&1 || true; done
fi
use_foreign kwok || run_step kwok "building kwok $KWOK_VERSION" build_kwok bin/kwok || true
run_step kwok-stages "writing kwok stage configs (kwok $KWOK_VERSION)" write_kwok_stages kwok/stages.yaml || true
use_foreign traefik || run_step traefik "building traefik $TRAEFIK_VERSION" build_traefik bin/traefik || true
run_step gateway-api "extracting Gateway API $GATEWAY_API_VERSION standard CRDs" extract_gateway_api_crds gateway-api || true

if [ "${#failed[@]}" -gt 0 ]; then
  die "could not build: ${failed[*]} (logs in $logs)"
fi
rm -rf "$dir/build"
say "cluster toolchain: ready ($bindir)"
