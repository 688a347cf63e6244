#!/usr/bin/env bash
# Benchmark: load + interpolate + merge + normalize a generated 1,000-service stack plus
# an override file, with the release `berth config -q` (validation only, no output).
# Goal: under 50 ms. Needs hyperfine (Debian package `hyperfine`).
#
#   benches/compose-load.sh            # 1000 services
#   SERVICES=5000 benches/compose-load.sh
#   BASELINE=/tmp/berth-old benches/compose-load.sh   # also time another build, same run
#   BERTH=/path/to/berth benches/compose-load.sh      # time that binary, do not build
set -euo pipefail
cd "$(dirname "$0")/.."

n="${SERVICES:-1000}"
target="${CARGO_TARGET_DIR:-target}"
if [ -n "${BERTH:-}" ]; then
  berth="$BERTH"
else
  cargo build --release -p berth --quiet
  berth="$target/release/berth"
fi

dir="$(mktemp -d)"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$dir"' EXIT
echo "stack in $dir" >&2

{
  echo 'name: bench'
  echo 'x-defaults: &defaults'
  echo '  image: "busybox:${TAG:-latest}"'
  echo '  restart: unless-stopped'
  echo '  healthcheck:'
  echo '    test: ["CMD", "true"]'
  echo '    interval: 10s'
  echo '    timeout: 1s'
  echo '  logging:'
  echo '    driver: json-file'
  echo '    options: {max-size: 10m}'
  echo 'services:'
  for i in $(seq 1 "$n"); do
    echo "  svc$i:"
    echo "    <<: *defaults"
    echo "    command: sh -c \"echo service $i && sleep 3600\""
    echo "    environment:"
    echo "      - INDEX=$i"
    echo "      - REGION=\${REGION:-eu}"
    echo "      - HOME"
    echo "    ports:"
    echo "      - \"127.0.0.1:$((10000 + i)):80\""
    echo "    volumes:"
    echo "      - data:/data"
    echo "      - ./conf/$i:/etc/conf:ro"
    echo "    labels: [\"com.example.index=$i\", \"com.example.tier=\${TIER:-back}\"]"
    echo "    deploy:"
    echo "      resources: {limits: {memory: 64m, cpus: '0.5'}}"
    if [ "$i" -gt 1 ]; then
      echo "    depends_on:"
      echo "      svc$((i - 1)):"
      echo "        condition: service_healthy"
    fi
  done
  echo 'volumes:'
  echo '  data: {}'
} > "$dir/compose.yaml"

{
  echo 'services:'
  for i in $(seq 1 "$n"); do
    echo "  svc$i:"
    echo "    environment:"
    echo "      INDEX: \"override-$i\""
    echo "      EXTRA: \"\${EXTRA:-x}\""
    echo "    ports:"
    echo "      - \"127.0.0.1:$((20000 + i)):81\""
  done
} > "$dir/compose.override.yaml"

echo "stack: $n services, $(wc -l < "$dir/compose.yaml") + $(wc -l < "$dir/compose.override.yaml") lines" >&2
"$berth" --project-directory "$dir" -f "$dir/compose.yaml" -f "$dir/compose.override.yaml" config --services | wc -l >&2
args="--project-directory $dir -f $dir/compose.yaml -f $dir/compose.override.yaml config -q"
cmds=(-n berth "$berth $args")
if [ -n "${BASELINE:-}" ]; then
  cmds+=(-n baseline "$BASELINE $args")
fi
hyperfine --warmup 3 --runs "${RUNS:-20}" -N --export-json "$dir/result.json" "${cmds[@]}"
python3 - "$dir/result.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f'{r["command"]:<10} median {r["median"] * 1e3:6.1f} ms  min {r["min"] * 1e3:6.1f} ms  '
          f'user {r["user"] * 1e3:5.1f} ms  system {r["system"] * 1e3:5.1f} ms')
PY
