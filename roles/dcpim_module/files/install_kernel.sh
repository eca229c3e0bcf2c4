#!/bin/sh
# Install a kernel_build artifact beside the running kernel and print its GRUB entry.
#   install_kernel.sh ARTIFACT_DIR RELEASE IMAGE_NAME INITRAMFS(0|1) [BUILD_DIR]
# BUILD_DIR (the kernel's O= build directory on this host) becomes /lib/modules/RELEASE/build, which
# out-of-tree modules are built against.
# Never touches the running kernel's files: everything is named after RELEASE, which must differ from
# `uname -r`. GRUB_DEFAULT is set to "saved" (backup of /etc/default/grub beside it) so that
# grub-reboot (one boot) and grub-set-default (commit) work. Prints entry=<submenu id>><entry id>.
set -eu
artifact=$1 release=$2 image=$3 initramfs=$4 builddir=${5:-}

if [ "$release" = "$(uname -r)" ]; then
  echo "refusing to overwrite the running kernel $release" >&2
  exit 2
fi
for tool in update-grub grub-reboot grub-set-default grub-editenv; do
  command -v "$tool" >/dev/null 2>&1 || { echo "this host has no $tool: GRUB is the only boot loader the role drives" >&2; exit 3; }
done

install -m 0644 "$artifact/$image" "/boot/vmlinuz-$release.new" && mv "/boot/vmlinuz-$release.new" "/boot/vmlinuz-$release"
install -m 0644 "$artifact/config" "/boot/config-$release"
install -m 0644 "$artifact/System.map" "/boot/System.map-$release"
if [ -d "$artifact/modules/lib/modules/$release" ]; then
  rm -rf "/lib/modules/$release.new"
  cp -a "$artifact/modules/lib/modules/$release" "/lib/modules/$release.new"
  rm -rf "/lib/modules/$release"
  mv "/lib/modules/$release.new" "/lib/modules/$release"
  depmod -a "$release"
fi
if [ -n "$builddir" ] && [ -f "$builddir/Makefile" ]; then
  mkdir -p "/lib/modules/$release"
  ln -sfn "$builddir" "/lib/modules/$release/build"
fi
if [ "$initramfs" = 1 ]; then
  update-initramfs -c -k "$release" >/dev/null
else
  rm -f "/boot/initrd.img-$release"
fi

if ! grep -q '^GRUB_DEFAULT=saved$' /etc/default/grub; then
  cp -p /etc/default/grub "/etc/default/grub.labkit-$(date +%Y%m%d%H%M%S)"
  # keep today's default as the saved entry before switching GRUB_DEFAULT to "saved"
  sed 's/^GRUB_DEFAULT=.*/GRUB_DEFAULT=saved/' /etc/default/grub > /etc/default/grub.labkit-new
  grep -q '^GRUB_DEFAULT=' /etc/default/grub.labkit-new || echo 'GRUB_DEFAULT=saved' >> /etc/default/grub.labkit-new
  mv /etc/default/grub.labkit-new /etc/default/grub
  grub-editenv - list | grep -q '^saved_entry=' || grub-set-default 0
fi
update-grub >/dev/null 2>&1

cfg=/boot/grub/grub.cfg
submenu=$(sed -n "s/^submenu .*\$menuentry_id_option '\([^']*\)'.*/\1/p" "$cfg" | head -n 1)
entry=$(sed -n "s/^[[:space:]]*menuentry .*\$menuentry_id_option '\([^']*-$release-advanced-[^']*\)'.*/\1/p" "$cfg" | head -n 1)
if [ -z "$entry" ]; then
  echo "update-grub made no entry for $release in $cfg" >&2
  exit 4
fi
echo "entry=${submenu:+$submenu>}$entry"
