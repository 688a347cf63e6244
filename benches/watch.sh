#!/usr/bin/env bash
# The file-watch dev loop, as a developer feels it:
#   - latency: a host write to a watched file -> the new content readable inside the
#     container (read through the container's root, /proc/<pid>/root), p50/p90/p99 over
#     200 edits (EDITS=n to change), one edit at a time, 300 ms apart (a person saving:
#     a change within 200 ms of the previous batch counts as part of a burst, by design);
#   - a burst: 1,000 new files written at once -> the last one readable in the container,
#     and how many batches (action lines) the watcher made of them (goal: 1, or 2 when the
#     first file went out alone);
#   - idle CPU: `berth watch` on a tree of 10,000 files (100 directories x 100 files),
#     CPU seconds used by the daemon and by the `berth watch` client over 10 idle seconds.
# Docker Compose v2 side by side only when $COMPOSE_V2 and docker are present (not installed
# here; set up with ../shared/bench/anchors-setup.sh).
# Needs root, busybox-static, python3.
#
# Usage: benches/watch.sh [path/to/berth]   (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then echo "watch.sh: needs root" >&2; exit 1; fi
if [ $# -ge 1 ]; then
  berth=$(realpath "$1")
else
  cargo build --release -q -p berth >&2
  berth=$(realpath "${CARGO_TARGET_DIR:-target}/release/berth")
fi
work=$(mktemp -d /tmp/berth-bench-watch.XXXXXX)
root="$work/root"
run="$work/run"
proj="$work/proj"
b() { "$berth" --root "$root" --run-dir "$run" "$@"; }
watch_pid=
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
  b -f "$proj/compose.yaml" down >/dev/null 2>&1 || true
  b daemon stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

BERTH="$berth" BERTH_ROOT="$root" BERTH_RUN_DIR="$run" \
  scripts/import-busybox.sh busybox:latest >/dev/null

mkdir -p "$proj/src"
for d in $(seq -w 0 99); do
  mkdir -p "$proj/src/d$d"
  for f in $(seq -w 0 99); do echo "$d$f" > "$proj/src/d$d/f$f.txt"; done
done
cat > "$proj/compose.yaml" <<'YAML'
name: wbench
services:
  app:
    image: busybox:latest
    command: ["sleep", "100000"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./src
          target: /app
          action: sync
YAML
b -f "$proj/compose.yaml" up -d >/dev/null
cpid=$(b inspect wbench-app-1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["State"]["Pid"])')
b -f "$proj/compose.yaml" watch > "$work/watch.log" 2>&1 &
watch_pid=$!
# Ready once the rule is watched.
for _ in $(seq 200); do grep -q '^watch app' "$work/watch.log" 2>/dev/null && break; sleep 0.05; done
daemon_pid=$(cat "$run/berth.pid")

python3 - "$proj/src/bench.txt" "/proc/$cpid/root/app/bench.txt" "${EDITS:-200}" <<'PY'
import sys, time, os
host, inside, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lat = []
for i in range(n):
    want = f"edit {i} {time.time_ns()}\n"
    t0 = time.perf_counter()
    with open(host, "w") as f:
        f.write(want)
    while True:
        try:
            with open(inside) as f:
                if f.read() == want:
                    break
        except FileNotFoundError:
            pass
        if time.perf_counter() - t0 > 10:
            sys.exit(f"edit {i} did not arrive within 10 s")
        time.sleep(0.0002)
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.3)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"berth watch, host write -> readable in container ({n} edits): "
      f"p50 {q(0.5):.1f} ms, p90 {q(0.9):.1f} ms, p99 {q(0.99):.1f} ms, max {lat[-1]:.1f} ms")
PY

before=$(grep -c '^app: sync' "$work/watch.log" || true)
python3 - "$proj/src/d00" "/proc/$cpid/root/app/d00" <<'PY'
import sys, time, os
host, inside = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
for i in range(1000):
    with open(f"{host}/burst{i:04}.txt", "w") as f:
        f.write(f"{i}\n")
written = time.perf_counter()
last = f"{inside}/burst0999.txt"
while not os.path.exists(last):
    if time.perf_counter() - t0 > 30:
        sys.exit("the burst did not arrive within 30 s")
    time.sleep(0.001)
done = time.perf_counter()
print(f"burst of 1,000 files: written in {(written - t0) * 1000:.0f} ms, "
      f"all readable in the container after {(done - t0) * 1000:.0f} ms")
PY
sleep 0.5
after=$(grep -c '^app: sync' "$work/watch.log" || true)
echo "burst batches: $((after - before)) ($(grep '^app: sync' "$work/watch.log" | tail -n $((after - before)) | grep -o 'and [0-9]* more' | tr '\n' ' '))"

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
sleep 2
d0=$(cpu "$daemon_pid"); w0=$(cpu "$watch_pid")
sleep 10
d1=$(cpu "$daemon_pid"); w1=$(cpu "$watch_pid")
dirs=$(grep -o '([0-9]* directories' "$work/watch.log" | head -1 | tr -d '(')
echo "idle on 10,000 files ($dirs watched), CPU over 10 s:" \
  "daemon $(( (d1 - d0) * 1000 / tck )) ms, berth watch client $(( (w1 - w0) * 1000 / tck )) ms"

if [ -n "${COMPOSE_V2:-}" ] && command -v docker >/dev/null; then
  echo "COMPOSE_V2 is set: run \`$COMPOSE_V2 watch\` on $proj side by side (not automated here)."
else
  echo "Docker Compose v2: not present (\$COMPOSE_V2 unset or no docker), no side-by-side figures."
fi
