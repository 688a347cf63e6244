#!/usr/bin/env bash
# Supervisor benchmarks: the daemon's idle memory (VmRSS, threads) and CPU with 0 and N running
# containers under supervision (`--restart always`, no network), and with N containers each
# health-checked every second (`--health-cmd true --health-interval 1s`).
#
# CPU is read from /proc/<daemon>/stat over a quiet window: `self` is the daemon's own time,
# `children` the exec helpers of health checks it waited for.
#
# Usage: benches/supervise.sh [containers] [window-seconds] [path/to/berth]
#   defaults 50, 20, a release build. Needs root and busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-50}
window=${2:-20}
if [ $# -ge 3 ]; then
  berth="$3"
else
  cargo build --release -q -p berth >&2
  berth="${CARGO_TARGET_DIR:-target}/release/berth"
fi
dir="$(mktemp -d /tmp/berth-bench-sup-XXXXXX)"
opts=(--root "$dir/root" --run-dir "$dir/run")
b() { "$berth" "${opts[@]}" "$@"; }
stop_daemon() { b daemon stop >/dev/null 2>&1 || true; }
remove_all() {
  stop_daemon
  for id in $(b ps -aq 2>/dev/null); do b rm -f "$id" >/dev/null 2>&1 || true; done
  stop_daemon
}
cleanup() {
  remove_all
  rm -rf "$dir"
}
trap cleanup EXIT

rootfs=$dir/busybox
mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
b import "$rootfs" busybox:latest --change 'ENV PATH=/bin' >/dev/null

ticks=$(getconf CLK_TCK)
# measure <label>: starts a daemon if none runs, lets it settle, samples memory and CPU.
measure() {
  b version >/dev/null # starts the daemon (which re-adopts the containers) if needed
  local pid
  pid=$(cat "$dir/run/berth.pid")
  sleep 3
  read -r -a s0 < <(cut -d' ' -f14-17 "/proc/$pid/stat")
  sleep "$window"
  read -r -a s1 < <(cut -d' ' -f14-17 "/proc/$pid/stat")
  local self=$(((s1[0] + s1[1]) - (s0[0] + s0[1])))
  local kids=$(((s1[2] + s1[3]) - (s0[2] + s0[3])))
  local rss threads
  rss=$(awk '/VmRSS/ {print $2 " " $3}' "/proc/$pid/status")
  threads=$(awk '/Threads/ {print $2}' "/proc/$pid/status")
  awk -v l="$1" -v r="$rss" -v t="$threads" -v s="$self" -v k="$kids" -v hz="$ticks" -v w="$window" \
    'BEGIN { printf "%-34s RSS %-10s threads %-3s CPU self %.2f%% (%.1f ms/s), children %.2f%%\n",
             l, r, t, 100 * s / hz / w, 1000 * s / hz / w, 100 * k / hz / w }'
}

measure "daemon, 0 containers"

stop_daemon
for i in $(seq "$n"); do
  b run -d --network none --restart always --name "idle$i" busybox sleep 1000000 >/dev/null
done
stop_daemon # the next daemon re-adopts all of them
measure "daemon, $n supervised containers"

remove_all
for i in $(seq "$n"); do
  b run -d --network none --name "hc$i" --health-cmd true --health-interval 1s \
    busybox sleep 1000000 >/dev/null
done
stop_daemon
measure "daemon, $n health-checked (1/s)"
stop_daemon
b ps --format json > "$dir/ps.json"
echo "ps after the health-checked run: $(head -1 "$dir/ps.json" | grep -o '"Status":"[^"]*"')"
