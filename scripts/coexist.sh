#!/usr/bin/env bash
# coexist.sh: run berth's network test beside a live Docker (issue 5). Starts Docker, containerd and a
# registry with ../shared/bench/anchors-setup.sh (installs them from Debian when missing), runs the
# #[ignore]d e2e test `berth_networks_work_beside_a_live_docker_and_leave_its_rules_alone` alone, then
# stops everything it started and restores the firewall (anchors-stop.sh --purge), pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${BERTH_SHARED:-../shared}
[ -x "$shared/bench/anchors-setup.sh" ] || { echo "coexist: $shared/bench/anchors-setup.sh not found" >&2; exit 1; }
export ANCHORS_DIR=${ANCHORS_DIR:-/tmp/berth-anchors}
stop() { "$shared/bench/anchors-stop.sh" --purge >/dev/null 2>&1 || true; }
trap stop EXIT
"$shared/bench/anchors-setup.sh" >/dev/null
cargo nextest run -p berth-tests --run-ignored only -E 'test(berth_networks_work_beside_a_live_docker)'
