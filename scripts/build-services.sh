#!/usr/bin/env bash
# Deterministic builds of the reference services (examples/services/{go,rust}).
#
#   bash scripts/build-services.sh [--out DIR] [--check] [--service go|rust]...
#
# Writes DIR/slipway-demo-go and DIR/slipway-demo-rust (DIR defaults to
# .slipway/bin, which git ignores) and prints "sha256  path" for each on stdout;
# progress goes to stderr.
#
# The same sources, lockfiles and toolchain give the same bytes, wherever the
# checkout lives:
#   Go:   CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-buildid= -s -w"
#         (GOFLAGS=-mod=readonly, GOTOOLCHAIN=local, GOAMD64=v1).
#   Rust: cargo build --release --locked, SOURCE_DATE_EPOCH fixed, RUSTFLAGS
#         --remap-path-prefix for the source, ~/.cargo and the target dir, no
#         wrappers; debug info off and symbols stripped (Cargo.toml).
# Caches live outside the repo and persist: the default GOMODCACHE and GOCACHE,
# ~/.cargo, and CARGO_TARGET_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/slipway/cargo-target
# (Rust is compiled from a staging copy of its sources beside it, so that all
# checkouts share that target dir; compiler messages name the staging copy).
#
# A repeated call is fast: a service is rebuilt only when the stamp key (a hash
# of its sources, go.sum/Cargo.lock, the build flags and the toolchain versions)
# changed or its binary is missing or altered.
#
# --check builds each service a second time from scratch (Go: -a with an empty
# GOCACHE; Rust: an empty target dir) from a copy of the sources at another
# path, prints both digests and fails (exit 1) if they differ.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/.slipway/bin"
check=0
services=()

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --out) [[ $# -ge 2 ]] || { echo "build-services: --out needs a directory" >&2; exit 2; }; out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    --check) check=1; shift ;;
    --service) [[ $# -ge 2 ]] || { echo "build-services: --service needs go or rust" >&2; exit 2; }; services+=("$2"); shift 2 ;;
    --service=*) services+=("${1#--service=}"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-services: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
((${#services[@]})) || services=(go rust)
for s in "${services[@]}"; do
  [[ "$s" == go || "$s" == rust ]] || { echo "build-services: unknown service '$s' (go or rust)" >&2; exit 2; }
done

mkdir -p "$out"
out="$(cd "$out" && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/slipway"
mkdir -p "$cache_root"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
rust_target="$cache_root/cargo-target"

# Fixed inputs that tools may read (reproducible-builds.org conventions).
export SOURCE_DATE_EPOCH=315532800 # 1980-01-01T00:00:00Z
export TZ=UTC LC_ALL=C

# One build at a time per output dir (tests and people may call this together).
exec 9>"$out/.build.lock"
flock 9

scratch=""
cleanup() { [[ -z "$scratch" ]] || rm -rf "$scratch"; }
trap cleanup EXIT

log() { printf 'build-services: %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null || { log "$1 is not on PATH; $2"; exit 1; }; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
digest() { sha256sum "$1" | cut -d' ' -f1; }

# Hash of every file of a service (relative path and content), build output excluded.
source_hash() {
  (cd "$1" && find . -type f ! -path './target/*' ! -path './bin/*' -print0 | LC_ALL=C sort -z |
    xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

copy_sources() { # copy a service's sources (not its build output) to $2
  mkdir -p "$2"
  tar -C "$1" --exclude=./target --exclude=./bin -cf - . | tar -C "$2" -xf -
}

# --- Go ----------------------------------------------------------------------
go_flags=(-trimpath -buildvcs=false -ldflags "-buildid= -s -w")
go_env=(env -u GOEXPERIMENT CGO_ENABLED=0 GOFLAGS=-mod=readonly GOTOOLCHAIN=local GOAMD64=v1)

go_build() { # src dest [extra go build flags...]
  local src="$1" dest="$2"; shift 2
  (cd "$src" && "${go_env[@]}" ${GOCACHE_OVERRIDE:+GOCACHE="$GOCACHE_OVERRIDE"} \
    go build "${go_flags[@]}" "$@" -o "$dest" .)
}

go_key() {
  {
    echo "flags: ${go_flags[*]} ${go_env[*]}"
    "${go_env[@]}" go version
    "${go_env[@]}" go env GOOS GOARCH GOAMD64
    source_hash "$root/examples/services/go"
  } | sha256sum | cut -d' ' -f1
}

# --- Rust --------------------------------------------------------------------
rust_build() { # src target-dir dest
  local src="$1" target="$2" dest="$3"
  local rustflags="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$target=/target --remap-path-prefix=$src=/build/slipway-demo-rust"
  local unset_profile=()
  while IFS='=' read -r name _; do
    [[ "$name" == CARGO_PROFILE_* ]] && unset_profile+=(-u "$name")
  done < <(env)
  env -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS -u CARGO_BUILD_TARGET \
      -u RUSTC_WRAPPER -u RUSTC_WORKSPACE_WRAPPER -u CARGO_BUILD_RUSTC_WRAPPER "${unset_profile[@]}" \
      CARGO_TARGET_DIR="$target" CARGO_INCREMENTAL=0 RUSTFLAGS="$rustflags" \
      cargo build --release --locked --quiet --manifest-path "$src/Cargo.toml"
  cp "$target/release/slipway-demo-rust" "$dest"
}

# Cargo rebuilds everything when RUSTFLAGS change, and ours name the source
# path. So that every checkout (worktrees, CI's fresh clone) shares one warm
# target dir, the sources are built from a fixed staging copy. The copy is
# refreshed, with new mtimes so that Cargo sees the change, only when the
# source hash differs; a lock keeps two checkouts from building at once.
rust_stage="$cache_root/src/slipway-demo-rust"
stage_rust_sources() {
  local want have=""
  exec 8>"$cache_root/cargo-target.lock"
  flock 8
  want="$(source_hash "$root/examples/services/rust")"
  [[ -f "$rust_stage.sha256" ]] && have="$(cat "$rust_stage.sha256")"
  if [[ "$want" != "$have" || ! -f "$rust_stage/Cargo.toml" ]]; then
    rm -rf "$rust_stage" "$rust_stage.sha256"
    copy_sources "$root/examples/services/rust" "$rust_stage"
    find "$rust_stage" -type f -exec touch {} +
    echo "$want" >"$rust_stage.sha256"
  fi
}

rust_key() {
  {
    echo "flags: --release --locked remap(cargo_home,target,src) SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
    rustc -vV
    cargo -V
    source_hash "$root/examples/services/rust"
  } | sha256sum | cut -d' ' -f1
}

# --- driver ------------------------------------------------------------------
build_one() { # go|rust
  local svc="$1" bin="slipway-demo-$1" key dest stamp
  dest="$out/$bin"
  stamp="$out/.$bin.stamp"
  if [[ "$svc" == go ]]; then need go "install Go 1.26 or newer"; else need cargo "install Rust (rustup) 1.85 or newer"; fi
  key="$("${svc}_key")"

  if ((! check)) && [[ -f "$stamp" && -x "$dest" ]]; then
    local skey sdigest
    read -r skey sdigest <"$stamp" || true
    if [[ "$skey" == "$key" && "$(digest "$dest")" == "$sdigest" ]]; then
      log "$svc: up to date (sources, lockfile and toolchain unchanged)"
      printf '%s  %s\n' "$sdigest" "$dest"
      return 0
    fi
  fi

  local t0 tmp
  t0="$(now)"
  tmp="$dest.tmp.$$"
  if [[ "$svc" == go ]]; then
    log "go: building $bin ($("${go_env[@]}" go env GOVERSION) $("${go_env[@]}" go env GOOS)/$("${go_env[@]}" go env GOARCH))"
    go_build "$root/examples/services/go" "$tmp"
  else
    log "rust: building $bin ($(rustc -V), target dir $rust_target)"
    stage_rust_sources
    rust_build "$rust_stage" "$rust_target" "$tmp"
  fi
  local d1
  d1="$(digest "$tmp")"
  log "$svc: built in $(since "$t0")"

  if ((check)); then
    [[ -n "$scratch" ]] || scratch="$(mktemp -d "$cache_root/check.XXXXXX")"
    local src2="$scratch/src/$svc" tmp2="$scratch/$bin" d2
    copy_sources "$root/examples/services/$svc" "$src2"
    t0="$(now)"
    if [[ "$svc" == go ]]; then
      log "go: check build from scratch (-a, empty GOCACHE, sources copied to $src2)"
      GOCACHE_OVERRIDE="$scratch/gocache" go_build "$src2" "$tmp2" -a
    else
      log "rust: check build from scratch (empty target dir, sources copied to $src2)"
      rust_build "$src2" "$scratch/cargo-target" "$tmp2"
    fi
    d2="$(digest "$tmp2")"
    log "$svc: check build in $(since "$t0")"
    printf 'check %s: build 1 (cached)  %s\n' "$svc" "$d1"
    printf 'check %s: build 2 (scratch) %s\n' "$svc" "$d2"
    if [[ "$d1" != "$d2" ]]; then
      printf 'check %s: MISMATCH\n' "$svc"
      rm -f "$tmp"
      mismatch=1
      return 0
    fi
    printf 'check %s: identical\n' "$svc"
  fi

  mv -f "$tmp" "$dest"
  printf '%s %s\n' "$key" "$d1" >"$stamp"
  printf '%s  %s\n' "$d1" "$dest"
}

# build_one is called plainly so that `set -e` stops at the first failed command;
# a digest mismatch is recorded instead, so that every service gets checked.
mismatch=0
for svc in "${services[@]}"; do
  build_one "$svc"
done
if ((mismatch)); then
  log "reproducibility check FAILED: the two builds differ (see above)"
  exit 1
fi
