#!/bin/sh
# Build and install web10g-userland from one revision with autotools, then write the stamp.
#   build.sh WORK_DIR git|tar SOURCE REVISION PREFIX STAMP STAMP_JSON [CONFIGURE_ARG...]
# ./autogen.sh (or autoreconf) runs only when the revision has no configure script. The stamp is written
# last, so a failed build leaves none and the next run builds again.
set -eu
work=$1 kind=$2 source=$3 revision=$4 prefix=$5 stamp=$6 stamp_json=$7
shift 7
tree="$work/src"
rm -rf "$tree"
mkdir -p "$tree"
if [ "$kind" = git ]; then
  git -C "$source" archive --format=tar "$revision" | tar -x -C "$tree"
else
  tar -x -f "$source" -C "$tree"
fi
cd "$tree"
log="$work/build.log"
: > "$log"
step() {
  what=$1
  shift
  if ! "$@" >> "$log" 2>&1; then
    echo "$what failed in $tree:" >&2
    tail -n 30 "$log" >&2
    exit 5
  fi
}
if [ ! -x configure ]; then
  if [ -x autogen.sh ]; then step ./autogen.sh ./autogen.sh; else step "autoreconf -fi" autoreconf -fi; fi
fi
step ./configure ./configure --prefix="$prefix" "$@"
step make make -j"$(nproc)"
step "make install" make install
step ldconfig ldconfig
mkdir -p "$(dirname "$stamp")"
printf '%s\n' "$stamp_json" > "$stamp.tmp"
mv "$stamp.tmp" "$stamp"
echo changed
