#!/usr/bin/env bash
# Makes a `busybox:latest` image (or the reference given) from Debian's busybox-static, with no
# registry: a root file system of bin/busybox plus one symlink per applet, imported with
# `berth import`. Usage: scripts/import-busybox.sh [reference] (BERTH / BERTH_ROOT honoured).
set -euo pipefail

ref=${1:-busybox:latest}
berth=${BERTH:-berth}
rootfs=$(mktemp -d /tmp/berth-busybox.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,root}
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
"$berth" import "$rootfs" "$ref" --change 'CMD ["sh"]' --change 'ENV PATH=/bin' --message "busybox-static from Debian"
