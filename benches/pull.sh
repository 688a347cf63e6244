#!/usr/bin/env bash
# Pull benchmark: a ~300 MB image of 5 layers (incompressible data) in a local
# docker-registry, pulled into an empty store by `berth pull` (download + verify + unpack)
# and copied by `skopeo copy docker://… oci:…` (download + verify only), side by side with
# hyperfine. Prints MB/s of each and the ratio.
#
# Usage: benches/pull.sh [layer-MiB] [runs] [small-files-per-layer]
#   defaults 60, 5, 0. Needs root, docker-registry, umoci, skopeo, hyperfine; builds berth in
#   release mode. With small files, unpacking also creates that many files per layer.
#   BERTH=/path/to/berth uses that binary instead of building; BASELINE=/path/to/berth also
#   times another build in the same run (e.g. the one before a change).
set -euo pipefail

layer_mib=${1:-60}
runs=${2:-5}
small=${3:-0}
here=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
if [ -n "${BERTH:-}" ]; then
  berth=$BERTH
else
  cargo build --release -q -p berth --manifest-path "$here/Cargo.toml"
  berth=$CARGO_TARGET_DIR/release/berth
fi

work=$(mktemp -d /tmp/berth-bench-pull.XXXXXX)
registry_pid=
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YAML
/usr/bin/docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
registry_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

echo "building a 5-layer image of ${layer_mib} MiB incompressible data and $small small files per layer" >&2
umoci init --layout "$work/layout"
umoci new --image "$work/layout:bench"
for i in 1 2 3 4 5; do
  mkdir -p "$work/rootfs$i/data"
  head -c "$((layer_mib * 1024 * 1024))" /dev/urandom > "$work/rootfs$i/data/blob$i"
  for j in $(seq "$small"); do echo "file $i $j" > "$work/rootfs$i/data/small-$i-$j"; done
  umoci insert --image "$work/layout:bench" "$work/rootfs$i" /
  rm -rf "$work/rootfs$i"
done
image=127.0.0.1:$port/bench/pull:latest
skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:bench" "docker://$image"
bytes=$(skopeo inspect --tls-verify=false --raw "docker://$image" |
  python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')
echo "image: $image, $((bytes / 1000000)) MB compressed in 5 layers" >&2

cmds=(-n "berth pull" "$berth --root $work/berth-root pull -q $image")
if [ -n "${BASELINE:-}" ]; then
  cmds+=(-n "baseline pull" "$BASELINE --root $work/berth-root pull -q $image")
fi
hyperfine --runs "$runs" --warmup 1 --export-json "$work/result.json" \
  --prepare "rm -rf $work/berth-root $work/skopeo-oci; sync" \
  "${cmds[@]}" \
  -n "skopeo copy (download only)" "skopeo copy --quiet --src-tls-verify=false docker://$image oci:$work/skopeo-oci:x"

python3 - "$work/result.json" "$bytes" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
size = int(sys.argv[2])
speeds = {r["command"]: size / r["mean"] / 1e6 for r in res}
for r in res:
    print(f'{r["command"]:<30} mean {r["mean"]:.3f} s ± {r["stddev"]:.3f}  {size / r["mean"] / 1e6:7.1f} MB/s')
s = speeds["skopeo copy (download only)"]
for name in ("berth pull", "baseline pull"):
    if name in speeds:
        print(f'{name} / skopeo throughput ratio: {speeds[name] / s:.2f}')
PY
