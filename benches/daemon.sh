#!/usr/bin/env bash
# Daemon benchmarks: idle memory of `berth daemon` and the round trip of
# `berth version` (CLI start + HTTP over the unix socket + daemon answer), next to
# `berth --version` (CLI start alone, no daemon) as the floor.
# Usage: benches/daemon.sh [path/to/berth]   (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ge 1 ]; then
  berth="$1"
else
  cargo build --release -p berth >&2
  berth="${CARGO_TARGET_DIR:-target}/release/berth"
fi
dir="$(mktemp -d /tmp/berth-bench-XXXXXX)"
opts=(--root "$dir/root" --run-dir "$dir/run")
cleanup() {
  "$berth" "${opts[@]}" daemon stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"$berth" "${opts[@]}" version >/dev/null   # starts the daemon
pid="$(cat "$dir/run/berth.pid")"
for _ in 1 2 3 4 5 6 7 8 9 10; do "$berth" "${opts[@]}" info >/dev/null; done
sleep 2
echo "daemon idle after 11 requests: $(grep -E 'VmRSS' /proc/"$pid"/status) ($(grep -E 'Threads' /proc/"$pid"/status | tr -s '\t' ' '))"

hyperfine --warmup 20 --runs 300 -N --export-json "$dir/hyperfine.json" \
  "$berth --version" \
  "$berth ${opts[*]} version"
python3 - "$dir/hyperfine.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
floor, rt = r[0]["median"] * 1e3, r[1]["median"] * 1e3
print(f"median: berth --version {floor:.2f} ms, berth version (round trip) {rt:.2f} ms, "
      f"daemon share {rt - floor:.2f} ms")
PY

echo "daemon after the benchmark: $(grep -E 'VmRSS' /proc/"$pid"/status)"
