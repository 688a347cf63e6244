#!/usr/bin/env bash
# Build benchmark: a 10-instruction Dockerfile (2 COPY, 2 RUN, WORKDIR, ENV, EXPOSE, CMD on a
# local busybox base) built cold (--no-cache), rebuilt with nothing changed, and rebuilt
# after one source file changed; `berth build` side by side with `buildah bud --layers`
# (when buildah is installed: apt-get install buildah) using hyperfine. Prints medians and
# the ratios. berth's RUN steps run with the default network, as Docker's do: a bridge made
# for the build (and removed after it) with a veth per RUN; `--network none` skips that
# (about 70 ms per RUN step less on the 2-core test machine).
#
# Usage: benches/build.sh [runs] [source-files]
#   defaults 10, 50. Needs root, busybox-static, hyperfine; builds berth in release mode.
set -euo pipefail

runs=${1:-10}
files=${2:-50}
here=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
cargo build --release -q -p berth --manifest-path "$here/Cargo.toml"
berth=$CARGO_TARGET_DIR/release/berth

work=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
cleanup() {
  if command -v buildah >/dev/null; then
    buildah --root "$work/buildah" --runroot "$work/buildah-run" --storage-driver vfs \
      rm --all >/dev/null 2>&1 || true
  fi
  umount -R "$work/buildah" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export BERTH_ROOT=$work/root BERTH_RUN_DIR=$work/run

# A busybox root file system, imported as `busybox` into berth (and buildah).
rootfs=$work/busybox
mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
"$berth" image import "$rootfs" busybox:latest >/dev/null

ctx=$work/ctx
mkdir -p "$ctx/src"
printf 'alpha\nbeta\ngamma\n' > "$ctx/deps.txt"
for i in $(seq "$files"); do echo "echo file $i" > "$ctx/src/f$i.sh"; done
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM busybox
ENV APP=/app
WORKDIR /app
COPY deps.txt .
RUN while read d; do mkdir -p "/deps/$d"; done < deps.txt
COPY src/ ./src/
RUN cat src/*.sh > all.sh && chmod 755 all.sh
ENV MODE=prod
EXPOSE 8080
CMD ["sh", "/app/all.sh"]
DOCKERFILE

results=$work/results
mkdir -p "$results"
bench() { # name command [prepare]
  local name=$1 cmd=$2 prepare=${3:-}
  if [ -n "$prepare" ]; then
    hyperfine -N --style none --warmup 1 --runs "$runs" --prepare "$prepare" \
      --export-json "$results/$name.json" "$cmd" >/dev/null
  else
    hyperfine -N --style none --warmup 1 --runs "$runs" \
      --export-json "$results/$name.json" "$cmd" >/dev/null
  fi
}
median() { python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$1"; }

touch_src="sh -c 'echo echo \$(date +%s%N) > $ctx/src/f1.sh'"
"$berth" build -q "$ctx" >/dev/null
bench berth-cold "$berth build -q --no-cache $ctx"
bench berth-nochange "$berth build -q $ctx"
bench berth-onefile "$berth build -q $ctx" "$touch_src"

have_buildah=0
if command -v buildah >/dev/null; then
  bh="buildah --root $work/buildah --runroot $work/buildah-run --storage-driver vfs"
  printf 'FROM scratch\nCOPY busybox/ /\nCMD ["sh"]\n' > "$work/Base.Dockerfile"
  if $bh bud -q --layers -t localhost/busybox -f "$work/Base.Dockerfile" "$work" >/dev/null 2>&1; then
    sed 's|^FROM busybox|FROM localhost/busybox|' "$ctx/Dockerfile" > "$work/Buildah.Dockerfile"
    bud="$bh bud -q --layers --pull=never --isolation chroot -f $work/Buildah.Dockerfile"
    if $bud "$ctx" >/dev/null 2>&1; then
      have_buildah=1
      bench buildah-cold "$bud --no-cache $ctx"
      bench buildah-nochange "$bud $ctx"
      bench buildah-onefile "$bud $ctx" "$touch_src"
    fi
  fi
fi

printf '%-22s %12s %12s %8s\n' case "berth ms" "buildah ms" ratio
for c in cold nochange onefile; do
  b=$(median "$results/berth-$c.json")
  if [ "$have_buildah" = 1 ]; then
    a=$(median "$results/buildah-$c.json")
    r=$(python3 -c "print('%.1fx' % ($a/$b))")
  else
    a=n/a r=n/a
  fi
  printf '%-22s %12s %12s %8s\n' "$c" "$b" "$a" "$r"
done
