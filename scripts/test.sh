#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test (unit, integration with
# real containers, networks and a local registry, end-to-end). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: berth's tests create real containers and networks and must run as root" >&2
  exit 1
fi

scripts/setup.sh
export BERTH_COMPOSE_V2="${BERTH_TOOLS_DIR:-$HOME/.cache/berth-tools}/venv/bin/docker-compose"

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

# berth beside a live Docker (FORWARD policy DROP, br_netfilter): started, tested and stopped on its own,
# so that no other test runs under another engine's firewall by accident.
scripts/coexist.sh
