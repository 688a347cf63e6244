#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build berth, make a
# busybox:latest base image from Debian's busybox-static (no registry needed), then
# bring up the demo stack in examples/demo.
#
# Until `berth up` exists (the engine issue), the demo validates the stack, prints its
# canonical model, and runs the stack's web service as a real container with
# `berth run -d -p 8080:80`, then fetches its page from 127.0.0.1:8080. Needs root.
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
if "$BERTH" up --help >/dev/null 2>&1; then
  "$BERTH" -f "$stack" up -d
  "$BERTH" -f "$stack" ps
else
  echo "== berth config (the stack, validated and in canonical form)"
  "$BERTH" -f "$stack" config
  echo "== the web service as a real container: berth run -d -p 8080:80"
  "$BERTH" rm -f demo-web >/dev/null 2>&1 || true
  "$BERTH" run -d --name demo-web -p 8080:80 busybox:latest sh -c \
    'mkdir -p /www && echo "<h1>hello from berth</h1>" > /www/index.html && exec httpd -f -p 80 -h /www'
  for _ in $(seq 50); do
    if page=$(/bin/busybox wget -q -O- http://127.0.0.1:8080/ 2>/dev/null); then break; fi
    sleep 0.1
  done
  echo "GET http://127.0.0.1:8080/ -> ${page:-no answer}"
  "$BERTH" ps
  echo "(remove it with: $BERTH rm -f demo-web)"
fi
