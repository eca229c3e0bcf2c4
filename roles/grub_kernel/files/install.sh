#!/bin/sh
# Install a bundle (pack.sh) beside the running kernel, every file under the kernel's own name.
#   install.sh BUNDLE RELEASE INITRAMFS(0|1) HEADERS(0|1)
# Never touches the running kernel's files: RELEASE must differ from `uname -r`. Each tree is copied
# under a temporary name and renamed into place. GRUB is left to the grub_entry module.
set -eu
bundle=$1 release=$2 initramfs=$3 headers=$4

if [ "$release" = "$(uname -r)" ]; then
  echo "refusing to overwrite the running kernel $release" >&2
  exit 2
fi
stage=$(mktemp -d "$(dirname "$bundle")/unpack.XXXXXX")
trap 'rm -rf "$stage"' EXIT
tar -xzf "$bundle" -C "$stage"

for file in vmlinuz config System.map; do
  install -m 0644 "$stage/$file" "/boot/$file-$release.labkit-new"
  mv "/boot/$file-$release.labkit-new" "/boot/$file-$release"
done
if [ -d "$stage/modules" ]; then
  rm -rf "/lib/modules/$release.labkit-new"
  mv "$stage/modules" "/lib/modules/$release.labkit-new"
  rm -rf "/lib/modules/$release"
  mv "/lib/modules/$release.labkit-new" "/lib/modules/$release"
  depmod -a "$release"
fi
if [ "$headers" = 1 ] && [ -d "$stage/headers" ]; then
  tree="/usr/src/labkit-headers-$release"
  rm -rf "$tree.labkit-new"
  mv "$stage/headers" "$tree.labkit-new"
  rm -rf "$tree"
  mv "$tree.labkit-new" "$tree"
  mkdir -p "/lib/modules/$release"
  ln -sfn "$tree" "/lib/modules/$release/build"
fi
rm -f "/boot/initrd.img-$release"
if [ "$initramfs" = 1 ]; then
  update-initramfs -c -k "$release" >/dev/null
fi
echo changed
