#!/usr/bin/env bash
# berth-net benchmarks (needs root): attach latency, TCP throughput between two containers on
# one bridge and through a published port, each against host loopback. Prints medians/ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p berth-net --bench net "$@"
