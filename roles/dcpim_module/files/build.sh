#!/bin/sh
# Build dcPIM's module (and util/) from one revision with a patch series, into a directory of its own.
#   build.sh BUILD_DIR git|tar SOURCE REVISION MODULE_DIR UTIL_DIR APPS(0|1) CFLAGS PATCH_DIR
# The tree is unpacked and built in BUILD_DIR.tmp and renamed to BUILD_DIR only when everything built,
# so BUILD_DIR/.labkit-built means a complete build. Prints "changed" or "unchanged" last.
set -eu
build=$1 kind=$2 source=$3 revision=$4 module_dir=$5 util_dir=$6 apps=$7 cflags=$8 patches=$9

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
done

if [ ! -f "$tmp/$module_dir/Makefile" ]; then
  echo "revision $revision has no $module_dir/Makefile (dcpim_module_module_dir)" >&2
  exit 4
fi
cd "$tmp/$module_dir"
# dcPIM's Makefile passes M=$(PWD): make takes PWD from the environment, so it must be this directory.
if ! PWD=$(pwd) make > "$tmp/build.log" 2>&1; then
  echo "make in $module_dir failed against $(uname -r):" >&2
  tail -n 30 "$tmp/build.log" >&2
  exit 5
fi
if [ ! -f dcpim_module.ko ]; then
  echo "make in $module_dir built no dcpim_module.ko" >&2
  exit 5
fi

if [ "$apps" = 1 ]; then
  cd "$tmp/$util_dir"
  # CFLAGS on the command line replaces the Makefile's: it carries -Werror and -DIPPROTO_DCPIM.
  if ! make CFLAGS="$cflags" server dcpim_test >> "$tmp/build.log" 2>&1; then
    echo "make server dcpim_test in $util_dir failed (CFLAGS=$cflags):" >&2
    tail -n 30 "$tmp/build.log" >&2
    exit 6
  fi
fi

date -u +%Y-%m-%dT%H:%M:%SZ > "$tmp/.labkit-built"
rm -rf "$build"
mv -T "$tmp" "$build"
echo changed
