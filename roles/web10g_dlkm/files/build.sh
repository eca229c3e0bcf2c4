#!/bin/sh
# Build tcp_estats_nl.ko from one source revision and a patch series, against one kernel tree.
#   build.sh BUILD_DIR git|tar SOURCE REVISION KDIR PATCH_DIR [MAKE_VAR...]
# Runs under a lock per BUILD_DIR (hosts of a play that share a build host wait for one build). The
# tree is built in BUILD_DIR.tmp and renamed to BUILD_DIR only when the module built, so
# BUILD_DIR/.labkit-built marks a complete build. Prints "changed" or "unchanged" last.
set -eu
build=$1 kind=$2 source=$3 revision=$4 kdir=$5 patches=$6
shift 6
module=tcp_estats_nl.ko

mkdir -p "$(dirname "$build")"
exec 9> "$build.lock"
flock 9

if [ -e "$build/.labkit-built" ]; then
  echo unchanged
  exit 0
fi
tmp="$build.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
if [ "$kind" = git ]; then
  git -C "$source" archive --format=tar "$revision" | tar -x -C "$tmp"
else
  tar -x -f "$source" -C "$tmp"
fi

for patch in "$patches"/*.patch; do
  [ -e "$patch" ] || continue
  if ! out=$(cd "$tmp" && patch -p1 --forward --batch --no-backup-if-mismatch -r - < "$patch" 2>&1); then
    echo "patch ${patch##*/} does not apply to $revision: $(echo "$out" | tr '\n' ' ')" >&2
    exit 3
  fi
  echo "${patch##*/}" >> "$tmp/.labkit-patches"
done

# Kbuild's own interface (obj-m in the source's Makefile), so the source's "all" target and its
# idea of the kernel tree do not matter.
if ! make -C "$kdir" M="$tmp" -j"$(nproc)" "$@" modules > "$tmp/build.log" 2>&1; then
  echo "make -C $kdir M=$tmp modules failed:" >&2
  tail -n 30 "$tmp/build.log" >&2
  exit 5
fi
if [ ! -f "$tmp/$module" ]; then
  echo "the build made no $module (is $revision web10g-dlkm?)" >&2
  exit 5
fi
date -u +%Y-%m-%dT%H:%M:%SZ > "$tmp/.labkit-built"
rm -rf "$build"
mv -T "$tmp" "$build"
echo changed
