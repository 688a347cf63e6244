#!/usr/bin/env bash
# The per-service stack commands against their single-container counterparts, end to end as
# a user runs them (each a fresh `berth` process talking to the running daemon):
#   - `stack exec -T web true` beside `exec web-container true` (the stack lookup's cost);
#   - `stack run --rm --no-deps web true` beside `run --rm busybox true` (one-off container:
#     project load, the run route, networks checked, then the same attach/wait/remove);
#   - `run --rm -i busybox cat` with input from a pipe beside `run --rm busybox true`;
#   - `stack top web`, `stack cp` of a small file into the service's container.
# Prints hyperfine's table and medians. Needs root, hyperfine, busybox-static.
#
# Usage: benches/stack-commands.sh [path/to/berth]   (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then echo "stack-commands.sh: needs root" >&2; exit 1; fi
if [ $# -ge 1 ]; then
  berth=$(realpath "$1")
else
  cargo build --release -q -p berth >&2
  berth=$(realpath "${CARGO_TARGET_DIR:-target}/release/berth")
fi
work=$(mktemp -d /tmp/berth-bench-stackcmd.XXXXXX)
root="$work/root"
run="$work/run"
b() { "$berth" --root "$root" --run-dir "$run" "$@"; }
B="$berth --root $root --run-dir $run"
cleanup() {
  b -f "$work/app/compose.yaml" down -t 1 --progress quiet >/dev/null 2>&1 || true
  for id in $(b ps -aq 2>/dev/null); do b rm -f "$id" >/dev/null 2>&1 || true; done
  # The default bridge too: networks outlive the daemon by design.
  for n in $(b network ls -q 2>/dev/null); do b network rm "$n" >/dev/null 2>&1 || true; done
  b daemon stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

BERTH="$berth" BERTH_ROOT="$root" BERTH_RUN_DIR="$run" \
  scripts/import-busybox.sh busybox:latest >/dev/null
mkdir -p "$work/app"
cat > "$work/app/compose.yaml" <<'EOF'
name: bench
services:
  web:
    image: busybox
    command: sleep 100000
    stop_grace_period: 1s
EOF
S="$B -f $work/app/compose.yaml"
b -f "$work/app/compose.yaml" up -d --progress quiet
echo hello > "$work/note.txt"

hyperfine -N --warmup 3 --runs "${RUNS:-30}" --export-json "$work/h.json" \
  -n 'exec bench-web-1 true' "$B exec bench-web-1 true" \
  -n 'stack exec -T web true' "$S stack exec -T web true" \
  -n 'run --rm busybox true' "$B run --rm busybox true" \
  -n 'stack run --rm --no-deps web true' "$S stack run --rm --no-deps -T --progress quiet web true" \
  -n 'echo hi | run --rm -i busybox cat' "sh -c 'echo hi | $B run --rm -i busybox cat'" \
  -n 'stack top web' "$S stack top web" \
  -n 'stack cp FILE web:/tmp' "$S stack cp $work/note.txt web:/tmp/note.txt" >&2

python3 - "$work/h.json" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    t = sorted(r["times"])
    print(f"median {r['command']:36s} {t[len(t) // 2] * 1000:8.1f} ms")
EOF
