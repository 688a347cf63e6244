#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build berth, make a
# busybox:latest base image from Debian's busybox-static (no registry needed), then
# bring up the demo stack in examples/demo.
#
# `berth up -d --wait` brings the stack up (networks, the named volume, containers in
# dependency order behind the api's health check), then the page the worker writes is
# fetched from web's published port 127.0.0.1:8080. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: berth runs real containers and must run as root" >&2
  exit 1
fi

scripts/setup.sh
cargo build --release --locked -p berth
export BERTH="${CARGO_TARGET_DIR:-$PWD/target}/release/berth"
export BERTH_ROOT="${BERTH_ROOT:-/var/lib/berth}"

scripts/import-busybox.sh busybox:latest
"$BERTH" images

stack=examples/demo/compose.yaml
echo "== berth up -d (api first; web and worker once the api is healthy)"
"$BERTH" -f "$stack" up -d --wait --wait-timeout 60
"$BERTH" -f "$stack" stack ps
for _ in $(seq 100); do
  if page=$(/bin/busybox wget -q -O- http://127.0.0.1:8080/ 2>/dev/null); then break; fi
  sleep 0.1
done
echo "GET http://127.0.0.1:8080/ -> ${page:-no answer}"
echo "(logs: $BERTH -f $stack stack logs; take it down with: $BERTH -f $stack down)"
