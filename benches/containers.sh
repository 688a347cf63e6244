#!/usr/bin/env bash
# Times the single-container path end to end with hyperfine: `berth run --rm busybox true`
# (image resolve, overlay, netns + veth on the default bridge, create, start, wait, rm) and
# the same with `--network none` (no veth, no nftables). Needs root.
# Usage: benches/containers.sh [path/to/berth]   (default: target/debug/berth)
set -euo pipefail

berth=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/debug/berth}")
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
root="$work/root"
run="$work/run"
b() { "$berth" --root "$root" --run-dir "$run" "$@"; }
cleanup() {
  for id in $(b ps -aq 2>/dev/null); do b rm -f "$id" >/dev/null 2>&1 || true; done
  for n in $(b network ls -q 2>/dev/null); do b network rm "$n" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

BERTH="$berth" BERTH_ROOT="$root" BERTH_RUN_DIR="$run" \
  "$(dirname "$0")/../scripts/import-busybox.sh" busybox:latest >/dev/null
b run --rm busybox true # creates the default network outside the measurement

hyperfine --warmup 2 --runs 20 \
  -n 'run --rm busybox true' "$berth --root $root --run-dir $run run --rm busybox true" \
  -n 'run --rm --network none busybox true' \
  "$berth --root $root --run-dir $run run --rm --network none busybox true"
