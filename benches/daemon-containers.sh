#!/usr/bin/env bash
# Container commands through the daemon, end to end as a user runs them (each command is a
# fresh `berth` process talking to the running daemon):
#   - `run -d` + `rm -f` of a sleeping busybox, on the default bridge and on `--network none`;
#   - attached `run --rm busybox true` (create, start, follow the log, wait, remove);
#   - `ps` with 10 running containers; `inspect` of one;
#   - `network connect` + `disconnect` of a running container (veth, address, DNS zone);
#   - `run -d -p 127.0.0.1:PORT:80 … httpd` until the first HTTP answer on 127.0.0.1;
#   - 100 name lookups through berth's DNS server from inside a container.
# Prints hyperfine's table and medians. Needs root, hyperfine, busybox-static.
#
# Usage: benches/daemon-containers.sh [path/to/berth]   (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then echo "daemon-containers.sh: needs root" >&2; exit 1; fi
if [ $# -ge 1 ]; then
  berth=$(realpath "$1")
else
  cargo build --release -q -p berth >&2
  berth=$(realpath "${CARGO_TARGET_DIR:-target}/release/berth")
fi
work=$(mktemp -d /tmp/berth-bench-daemon.XXXXXX)
root="$work/root"
run="$work/run"
b() { "$berth" --root "$root" --run-dir "$run" "$@"; }
B="$berth --root $root --run-dir $run"
cleanup() {
  for id in $(b ps -aq 2>/dev/null); do b rm -f "$id" >/dev/null 2>&1 || true; done
  for n in $(b network ls -q 2>/dev/null); do b network rm "$n" >/dev/null 2>&1 || true; done
  # The default bridge cannot be removed (as Docker's docker0): delete it and the root's nft
  # table by name (bridge berth<XXXX>b0, table berth_<hash ending in XXXX>).
  local br
  br=$(b network inspect bridge 2>/dev/null | sed -n 's/.*"bridge": "\(berth[0-9a-f]*\)b0".*/\1/p' | head -1)
  b daemon stop >/dev/null 2>&1 || true
  if [ -n "$br" ]; then
    ip link del "${br}b0" 2>/dev/null || true
    for t in $(nft list tables 2>/dev/null | awk -v h="${br#berth}" '$3 ~ "^berth_" && $3 ~ h"$" {print $3}'); do
      nft delete table inet "$t" 2>/dev/null || true
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

BERTH="$berth" BERTH_ROOT="$root" BERTH_RUN_DIR="$run" \
  scripts/import-busybox.sh busybox:latest >/dev/null
# The daemon and the default network exist before anything is measured.
b run --rm busybox true >/dev/null
b network create bench >/dev/null
for i in $(seq 10); do
  b run -d --name "idle$i" --network bench busybox sleep 100000 >/dev/null
done
b run -d --name web --network bench busybox sh -c \
  'mkdir /w && echo hi > /w/index.html && exec httpd -f -p 80 -h /w' >/dev/null
b run -d --name probe busybox sleep 100000 >/dev/null

hyperfine -N --warmup 3 --runs "${RUNS:-30}" --export-json "$work/h.json" \
  -n 'run -d + rm -f (bridge)' "sh -c '$B rm -f \$($B run -d busybox sleep 100)'" \
  -n 'run -d + rm -f (none)' "sh -c '$B rm -f \$($B run -d --network none busybox sleep 100)'" \
  -n 'run --rm busybox true' "$B run --rm busybox true" \
  -n 'ps (12 running)' "$B ps" \
  -n 'inspect' "$B inspect web" \
  -n 'network connect+disconnect' \
  "sh -c '$B network connect bench probe && $B network disconnect bench probe'" >&2

python3 - "$work/h.json" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    t = sorted(r["times"])
    print(f"median {r['command']:30s} {t[len(t) // 2] * 1000:8.1f} ms")
EOF

# run -d -p until the first answer: one python process times the whole path.
python3 - "$berth" "$root" "$run" "${RUNS:-30}" <<'EOF'
import socket, subprocess, sys, time
berth, root, run, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
b = [berth, "--root", root, "--run-dir", run]
times = []
for i in range(n):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    start = time.perf_counter()
    cid = subprocess.run(b + ["run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c",
                              "echo ok > /i && exec httpd -f -p 80 -h /"],
                         check=True, capture_output=True, text=True).stdout.strip()
    while True:
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=1)
            c.sendall(b"GET /i HTTP/1.0\r\n\r\n")
            if b"200" in c.recv(100):
                break
        except OSError:
            time.sleep(0.0005)
    times.append(time.perf_counter() - start)
    subprocess.run(b + ["rm", "-f", cid], check=True, capture_output=True)
times.sort()
print(f"median {'run -d -p … until HTTP 200':30s} {times[len(times) // 2] * 1000:8.1f} ms")
EOF

# DNS: 100 lookups of a container name from inside a container on the same network.
b run -d --name asker --network bench busybox sleep 100000 >/dev/null
real=$(b exec asker time -p sh -c 'for i in $(seq 100); do nslookup web >/dev/null || exit 1; done' 2>&1 | awk '/^real/ {print $2}')
echo "mean   nslookup web in a container  $(awk -v r="$real" 'BEGIN {printf "%8.2f", r * 10}') ms (incl. nslookup's own start)"
echo "daemon RSS with 14 containers, DNS server and netlink: $(( $(ps -o rss= -p "$(cat "$run/berth.pid")") / 1024 )) MiB"
