#!/usr/bin/env bash
# Runtime-core benchmark: `berth runtime run` (create + start + wait + delete of `true` in a
# busybox bundle, Docker's default namespaces, mounts, seccomp and capabilities) side by
# side with `runc run` and `crun run` on the same bundle, then the memory of a
# container's monitor.
#
# crun 1.8 (Debian 12) refuses this host's hybrid cgroup layout; it runs in a private mount
# namespace with /sys/fs/cgroup/unified unmounted, and that wrapper alone is measured too
# so its cost can be subtracted.
#
# Usage: benches/run.sh [path/to/berth]   (default: a release build). Needs root, hyperfine;
# runc/crun are used when installed (`apt-get install runc crun`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then echo "run.sh: needs root" >&2; exit 1; fi
if [ $# -ge 1 ]; then
  berth="$1"
else
  cargo build --release -p berth >&2
  berth="${CARGO_TARGET_DIR:-target}/release/berth"
fi
dir="$(mktemp -d /tmp/berth-bench-run-XXXXXX)"
root="$dir/root"
bundle="$dir/bundle"
cleanup() {
  for id in $("$berth" --root "$root" runtime list 2>/dev/null | awk 'NR>1 {print $1}'); do
    "$berth" --root "$root" runtime delete -f "$id" >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT

# Bundle: busybox-static plus the applets the benchmark uses.
mkdir -p "$bundle/rootfs"/{bin,etc,proc,sys,dev,tmp}
cp /bin/busybox "$bundle/rootfs/bin/"
for a in sh true sleep; do ln -s busybox "$bundle/rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" >"$bundle/rootfs/etc/passwd"
echo "root:x:0:" >"$bundle/rootfs/etc/group"
(cd "$bundle" && "$berth" --root "$root" runtime spec)
python3 - "$bundle/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["args"] = ["true"]
json.dump(c, open(path, "w"), indent=1)
EOF

cmds=(-n "berth runtime run" "$berth --root $root runtime run -b $bundle bench-berth")
if command -v runc >/dev/null; then
  cmds+=(-n "runc run" "runc --root $dir/runc run -b $bundle bench-runc")
fi
if command -v crun >/dev/null; then
  wrap="unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec \"\$0\" \"\$@\"'"
  cmds+=(-n "crun run (in wrapper)" "$wrap crun --root $dir/crun run -b $bundle bench-crun")
  cmds+=(-n "wrapper alone" "$wrap true")
fi
hyperfine --warmup 10 --runs "${RUNS:-200}" -N --export-json "$dir/hyperfine.json" "${cmds[@]}" >&2

python3 - "$dir/hyperfine.json" <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {k: sorted(v["times"])[len(v["times"]) // 2] * 1000 for k, v in res.items()}
for k, v in med.items():
    print(f"median {k:24s} {v:7.2f} ms")
b = med["berth runtime run"]
if "runc run" in med:
    print(f"ratio berth/runc            {b / med['runc run']:7.2f}")
if "crun run (in wrapper)" in med:
    crun = med["crun run (in wrapper)"] - med["wrapper alone"]
    print(f"median crun run (adjusted)  {crun:7.2f} ms")
    print(f"ratio berth/crun            {b / crun:7.2f}")
EOF

# Monitor memory: a detached container, then the monitor's own numbers.
"$berth" --root "$root" runtime spec -b "$bundle" >/dev/null 2>&1 || true
python3 - "$bundle/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["args"] = ["sleep", "30"]
json.dump(c, open(path, "w"), indent=1)
EOF
"$berth" --root "$root" runtime run -d -b "$bundle" bench-rss </dev/null >/dev/null 2>&1
monitor="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["monitor_pid"])' "$root/containers/bench-rss/state.json")"
sleep 0.5
echo "monitor pid $monitor: $(grep -E '^(VmRSS|RssAnon|RssFile)' /proc/"$monitor"/status | tr -s '\t ' ' ' | tr '\n' ' ')"
echo "monitor $(grep -E '^Pss:' /proc/"$monitor"/smaps_rollup | tr -s ' ')"
"$berth" --root "$root" runtime delete -f bench-rss
