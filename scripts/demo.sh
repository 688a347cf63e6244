#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build berth, make a
# busybox:latest base image from Debian's busybox-static (no registry needed), then
# bring up the demo stack in examples/demo.
#
# Until `berth up` exists (the engine issue), the demo validates the stack and prints
# its canonical model. Needs root.
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
fi
