#!/bin/sh
# Pack a kernel artifact for GRUB hosts, once, where it was built.
#   pack.sh OUT_DIR RELEASE IMAGE CONFIG SYSTEM_MAP MODULES_ROOT HEADERS
# MODULES_ROOT (an INSTALL_MOD_PATH root) and HEADERS may be empty. OUT_DIR/bundle.tar.gz holds
# vmlinuz, config, System.map, modules/ (lib/modules/RELEASE) and headers/, and appears complete or not at all.
set -eu
out=$1 release=$2 image=$3 config=$4 system_map=$5 modules=$6 headers=$7
mkdir -p "$out"
stage=$(mktemp -d "$out/bundle.XXXXXX")
trap 'rm -rf "$stage" "$stage.tar.gz"' EXIT
cp "$image" "$stage/vmlinuz"
cp "$config" "$stage/config"
cp "$system_map" "$stage/System.map"
members="vmlinuz config System.map"
if [ -n "$modules" ] && [ -d "$modules/lib/modules/$release" ]; then
  cp -a "$modules/lib/modules/$release" "$stage/modules"
  members="$members modules"
fi
if [ -n "$headers" ] && [ -d "$headers" ]; then
  cp -a "$headers" "$stage/headers"
  members="$members headers"
fi
# shellcheck disable=SC2086 # members are the fixed names above
tar --use-compress-program='gzip -1' -C "$stage" -cf "$stage.tar.gz" $members
mv "$stage.tar.gz" "$out/bundle.tar.gz"
