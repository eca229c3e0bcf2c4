#!/bin/sh
# Install an unpacked-once artifact bundle on a Pi, beside the stock kernel, in one round trip.
# Usage: install.sh BUNDLE RELEASE HASH BOOT_DIR PREFIX IMAGE INITRAMFS(0|1) CMDLINE EXTRA KEEP_PREFIX
#                   REMOVE_STALE(0|1) INITRAMFS_MODULES(most|dep|netboot|list)
#   BUNDLE   tar.gz made by the role on the controller: modules/<release>/, boot/, config, System.map
#   CMDLINE  the artifact's kernel command line ("" = the boot partition's cmdline.txt), EXTRA appended
#   KEEP_PREFIX  the committed labkit directory, never removed as stale
# Never writes the stock kernel*.img, initramfs*, *.dtb or overlays/, nor another kernel's modules.
# Prints "changed" or "unchanged" last; exits 3 with the reason when installing would be unsafe.
set -eu
bundle=$1 release=$2 hash=$3 boot=$4 prefix=$5 image=$6 initramfs=$7 cmdline=$8 extra=$9
shift 9
keep=$1 remove_stale=$2 initramfs_modules=${3:-dep}
state=/var/lib/labkit/rpi_kernel/$(printf %.16s "$hash")
modules=/lib/modules/$release
changed=false
refuse() { echo "$*" >&2; exit 3; }

# Modules: our own directory, or one an older labkit artifact of another hash left (not running).
marker=""
if [ -f "$modules/.labkit-artifact" ]; then marker=$(tr -d '\n' < "$modules/.labkit-artifact"); fi
if [ -d "$modules" ] && [ -z "$marker" ]; then
  refuse "$modules exists and was not installed by labkit.cluster.rpi_kernel (it belongs to another kernel, e.g. the distribution's); build the artifact with a LOCALVERSION of its own"
fi
if [ -n "$marker" ] && [ "$marker" != "$hash" ]; then
  if [ "$(uname -r)" = "$release" ]; then
    refuse "the running kernel $release comes from another artifact ($marker); its modules are not replaced: give the new build its own LOCALVERSION"
  fi
  rm -rf "$modules"
  marker=""
fi
if [ -z "$marker" ]; then
  rm -rf "$state"
  mkdir -p "$state"
  tar -xzf "$bundle" -C "$state"
  if [ -d "$state/modules/$release" ]; then  # an artifact without modules gets an empty directory
    cp -r "$state/modules/$release" "$modules.labkit-tmp"
    mv "$modules.labkit-tmp" "$modules"
  else
    mkdir -p "$modules"
  fi
  rm -rf "$state/modules"
  depmod -a "$release"
  cp "$state/config" "/boot/config-$release"        # mkinitramfs reads it, as Debian installs it
  cp "$state/System.map" "/boot/System.map-$release"
  echo "$hash" > "$modules/.labkit-artifact"
  changed=true
fi

# Boot files, staged on the root file system.
stage=$state/boot
mkdir -p "$stage"
if [ ! -f "$stage/$image" ]; then
  tar -xzf "$bundle" -C "$state" boot
  changed=true
fi
if ! ls "$stage"/*.dtb >/dev/null 2>&1; then  # os_prefix applies to the device trees too
  cp "$boot"/*.dtb "$stage"/ 2>/dev/null || true
  if [ -d "$boot/overlays" ] && [ ! -d "$stage/overlays" ]; then cp -r "$boot/overlays" "$stage/overlays"; fi
fi
if [ -z "$cmdline" ]; then cmdline=$(cat "$boot/cmdline.txt"); fi
printf '%s\n' "$(echo "$cmdline $extra" | xargs)" > "$stage/cmdline.new"
if cmp -s "$stage/cmdline.new" "$stage/cmdline.txt"; then rm "$stage/cmdline.new"; else mv "$stage/cmdline.new" "$stage/cmdline.txt"; fi
if [ "$initramfs" = 1 ] && [ ! -f "$stage/initrd.img" ]; then
  # mkinitramfs, not update-initramfs: no post-update hook may copy it over the stock initramfs.
  conf=$(mktemp -d)
  cp -r /etc/initramfs-tools/. "$conf/"
  # conf.d is read after initramfs.conf, in name order: this file is read last and wins.
  mkdir -p "$conf/conf.d"
  printf 'MODULES=%s\n' "$initramfs_modules" > "$conf/conf.d/zzzz-labkit-rpi-kernel"
  mkinitramfs -d "$conf" -o "$stage/initrd.img.tmp" "$release"
  rm -rf "$conf"
  mv "$stage/initrd.img.tmp" "$stage/initrd.img"
fi
printf '{"hash": "%s", "release": "%s", "image": "%s", "installed_by": "labkit.cluster.rpi_kernel"}\n' \
  "$hash" "$release" "$image" > "$stage/artifact.json"

# Onto the boot partition: a copy under a temporary name, then a rename.
dest=$boot/$prefix
if ! { [ -d "$dest" ] && diff -r -q "$stage" "$dest" >/dev/null 2>&1; }; then
  rm -rf "$dest.tmp"
  cp -r "$stage" "$dest.tmp"
  sync
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
  sync
  changed=true
fi

if [ "$remove_stale" = 1 ]; then
  for dir in "$boot"/labkit-*; do
    [ -d "$dir" ] || continue
    name=${dir##*/}
    if [ "$name" != "$prefix" ] && [ "$name" != "$keep" ]; then rm -rf "$dir"; changed=true; fi
  done
fi
if $changed; then echo changed; else echo unchanged; fi
