#!/usr/bin/env bash
# Stack benchmarks: `up -d` (until every container runs), `down`, and a no-op `up` for stacks
# of 1, 10 and 30 flat busybox services on one network, and a 30-service depends_on chain.
# Medians of hyperfine runs. With Docker Compose v2 present ($COMPOSE_V2, else
# `docker compose`; ../shared/bench/anchors-setup.sh installs it and starts Docker), the same
# stacks run side by side with it. Needs root.
# With BASELINE=path/to/other/berth, that binary runs the same stacks too (its own root and
# daemon), side by side in the same table: before/after comparisons in one run.
# Usage: benches/stack.sh [path/to/berth]   (default: target/release/berth; or $BERTH)
set -euo pipefail

berth=$(realpath "${1:-${BERTH:-${CARGO_TARGET_DIR:-target}/release/berth}}")
baseline=${BASELINE:+$(realpath "$BASELINE")}
runs=${RUNS:-5}
work=$(mktemp -d /tmp/berth-bench-stack.XXXXXX)
# One root and daemon per binary: label -> binary.
declare -A bins=([berth]="$berth")
[ -n "$baseline" ] && bins[baseline]="$baseline"
bq_of() { echo "${bins[$1]} --root $work/$1/root --run-dir $work/$1/run"; }
cleanup() {
  for label in "${!bins[@]}"; do
    for d in "$work"/stacks/*/; do
      [ -f "$d/compose.yaml" ] && $(bq_of "$label") -f "$d/compose.yaml" down >/dev/null 2>&1 || true
    done
    $(bq_of "$label") daemon stop >/dev/null 2>&1 ||
      kill "$(cat "$work/$label/run/berth.pid" 2>/dev/null)" 2>/dev/null || true
  done
  if [ -n "${compose:-}" ]; then
    for d in "$work"/stacks/*/; do
      $compose -f "$d/compose.yaml" down >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

for label in "${!bins[@]}"; do
  BERTH="${bins[$label]}" BERTH_ROOT="$work/$label/root" BERTH_RUN_DIR="$work/$label/run" \
    "$(dirname "$0")/../scripts/import-busybox.sh" busybox:latest >/dev/null
done

# stack NAME N chain|flat: writes $work/stacks/NAME/compose.yaml
stack() {
  local name=$1 n=$2 shape=$3 dir="$work/stacks/$1"
  mkdir -p "$dir"
  {
    echo "name: $name"
    echo "services:"
    for i in $(seq 1 "$n"); do
      echo "  s$i:"
      echo "    image: busybox:latest"
      echo "    command: [\"sleep\", \"100000\"]"
      echo "    stop_signal: SIGKILL"
      if [ "$shape" = chain ] && [ "$i" -gt 1 ]; then
        echo "    depends_on: [s$((i - 1))]"
      fi
    done
  } >"$dir/compose.yaml"
  echo "$dir/compose.yaml"
}

compose=""
if [ -n "${COMPOSE_V2:-}" ]; then
  compose="$COMPOSE_V2"
elif command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
  compose="docker compose"
fi
if [ -n "$compose" ] && ! docker image inspect busybox:latest >/dev/null 2>&1; then
  echo "docker has no busybox:latest image: skipping Docker Compose" >&2
  compose=""
fi

results="$work/results.md"
echo "| stack | tool | up -d | no-op up | down |" >"$results"
echo "| --- | --- | --- | --- | --- |" >>"$results"

median() { # hyperfine JSON -> median seconds
  python3 -c 'import json,sys; print("%.3f s" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"
}

bench() { # tool-label up-cmd down-cmd name
  local label=$1 up=$2 down=$3 name=$4
  hyperfine --runs "$runs" --prepare "$down" -n "$label up -d" "$up" \
    --export-json "$work/up.json" >/dev/null
  hyperfine --runs "$runs" --setup "$up" -n "$label no-op up" "$up" \
    --export-json "$work/noop.json" >/dev/null
  hyperfine --runs "$runs" --prepare "$up" -n "$label down" "$down" \
    --export-json "$work/down.json" >/dev/null
  echo "| $name | $label | $(median "$work/up.json") | $(median "$work/noop.json") | $(median "$work/down.json") |" >>"$results"
}

for spec in "flat1 1 flat" "flat10 10 flat" "flat30 30 flat" "chain30 30 chain"; do
  set -- $spec
  file=$(stack "$@")
  for label in $([ -n "$baseline" ] && echo baseline) berth; do
    bq="$(bq_of "$label") -f $file"
    $bq up -d >/dev/null 2>&1 # creates the network and warms the daemon
    $bq down >/dev/null 2>&1
    bench "$label" "$bq up -d --progress quiet" "$bq down --progress quiet" "$1"
    $bq down >/dev/null 2>&1
  done
  if [ -n "$compose" ]; then
    cq="$compose -f $file"
    bench compose-v2 "$cq up -d --quiet-pull" "$cq down" "$1"
    $compose -f "$file" down >/dev/null 2>&1 || true
  fi
done

for label in "${!bins[@]}"; do
  echo "$label daemon RSS after the runs: $(ps -o rss= -p "$(cat "$work/$label/run/berth.pid")" 2>/dev/null || echo ?) KiB"
done
cat "$results"
