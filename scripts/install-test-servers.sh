#!/usr/bin/env bash
# Installs the real servers that the providers test tier talks to, only when
# they are missing (a fast no-op otherwise):
#   - Prometheus (Debian package `prometheus`, binary /usr/bin/prometheus)
#   - the AWS API emulator moto (PyPI `moto[server]`, command `moto_server`)
# The tests start and stop their own instances on loopback; nothing is left
# running here (the Debian package's service is not started).
set -euo pipefail

if [[ ! -x /usr/bin/prometheus ]]; then
  echo "slipway: installing prometheus (apt)…" >&2
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq >&2
  # policy-rc.d style environments refuse to start services; the tests run their own.
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends prometheus >&2
fi

python=""
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
done
if [[ -z "$python" ]]; then
  echo "slipway: python3 is needed for moto[server] (the AWS API emulator); install python3 and pip" >&2
  exit 1
fi
if ! command -v moto_server >/dev/null 2>&1 || ! "$python" -c 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("moto") and u.find_spec("flask") and u.find_spec("flask_cors") else 1)' >/dev/null 2>&1; then
  echo "slipway: installing moto[server] (pip)…" >&2
  "$python" -m pip install --quiet --disable-pip-version-check "moto[server]>=5,<6" >&2
  hash -r
fi
command -v moto_server >/dev/null 2>&1 || {
  echo "slipway: moto_server is not on PATH after installing moto[server] (pip's script directory: $("$python" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'))" >&2
  exit 1
}
