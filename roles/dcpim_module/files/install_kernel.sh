#!/bin/sh
# Install a kernel_build artifact beside the running kernel and print its GRUB entry.
#   install_kernel.sh RELEASE INITRAMFS(0|1) IMAGE CONFIG SYSTEM_MAP MODULES HEADERS
# The paths are the artifact's files as labkit.cluster.kernel_artifact resolves them (docs/artifact.md):
# MODULES is an INSTALL_MOD_PATH root holding lib/modules/RELEASE, or "" without modules; HEADERS is its
# headers tree (kernel_build_headers), or "". The headers go to /usr/src/labkit-headers-RELEASE and
# becomes /lib/modules/RELEASE/build, which out-of-tree modules (dcPIM's) are built against.
# Never touches the running kernel's files: everything is named after RELEASE, which must differ from
# `uname -r`. GRUB_DEFAULT is set to "saved" (backup of /etc/default/grub beside it) so that
# grub-reboot (one boot) and grub-set-default (commit) work, with the running kernel's entry as the
# saved default until the new one is committed. Prints entry=<submenu id>><entry id>.
set -eu
release=$1 initramfs=$2 image=$3 config=$4 system_map=$5 modules=$6 headers_tree=$7

if [ "$release" = "$(uname -r)" ]; then
  echo "refusing to overwrite the running kernel $release" >&2
  exit 2
fi
if [ -z "$headers_tree" ] || [ ! -f "$headers_tree/Makefile" ]; then
  echo "the artifact of $release has no headers tree (kernel_build_headers): modules could not be built for it" >&2
  exit 5
fi
for tool in update-grub grub-reboot grub-set-default grub-editenv; do
  command -v "$tool" >/dev/null 2>&1 || { echo "this host has no $tool: GRUB is the only boot loader the role drives" >&2; exit 3; }
done

install -m 0644 "$image" "/boot/vmlinuz-$release.new" && mv "/boot/vmlinuz-$release.new" "/boot/vmlinuz-$release"
install -m 0644 "$config" "/boot/config-$release"
install -m 0644 "$system_map" "/boot/System.map-$release"
if [ -n "$modules" ] && [ -d "$modules/lib/modules/$release" ]; then
  rm -rf "/lib/modules/$release.new"
  cp -a "$modules/lib/modules/$release" "/lib/modules/$release.new"
  rm -rf "/lib/modules/$release"
  mv "/lib/modules/$release.new" "/lib/modules/$release"
  depmod -a "$release"
fi
headers="/usr/src/labkit-headers-$release"
rm -rf "$headers.new"
cp -a "$headers_tree" "$headers.new"
rm -rf "$headers"
mv "$headers.new" "$headers"
mkdir -p "/lib/modules/$release"
ln -sfn "$headers" "/lib/modules/$release/build"
if [ "$initramfs" = 1 ]; then
  update-initramfs -c -k "$release" >/dev/null
else
  rm -f "/boot/initrd.img-$release"
fi

if ! grep -q '^GRUB_DEFAULT=saved$' /etc/default/grub; then
  cp -p /etc/default/grub "/etc/default/grub.labkit-$(date +%Y%m%d%H%M%S)"
  sed 's/^GRUB_DEFAULT=.*/GRUB_DEFAULT=saved/' /etc/default/grub > /etc/default/grub.labkit-new
  grep -q '^GRUB_DEFAULT=' /etc/default/grub.labkit-new || echo 'GRUB_DEFAULT=saved' >> /etc/default/grub.labkit-new
  mv /etc/default/grub.labkit-new /etc/default/grub
fi
update-grub >/dev/null 2>&1

cfg=/boot/grub/grub.cfg
entry_of() {
  sed -n "s/^[[:space:]]*menuentry .*\$menuentry_id_option '\([^']*-$1-advanced-[^']*\)'.*/\1/p" "$cfg" | head -n 1
}
submenu=$(sed -n "s/^submenu .*\$menuentry_id_option '\([^']*\)'.*/\1/p" "$cfg" | head -n 1)
entry=$(entry_of "$release")
if [ -z "$entry" ]; then
  echo "update-grub made no entry for $release in $cfg" >&2
  exit 4
fi
# The saved default becomes the running kernel's own entry: an index or Debian's top entry would
# follow update-grub's ordering (newest kernel first) and boot the untried kernel by default.
running=$(entry_of "$(uname -r)")
if [ -z "$running" ]; then
  echo "GRUB has no entry for the running kernel $(uname -r) in $cfg: without it as the saved default a" \
    "failed trial could not fall back, so $release is installed but not trial-booted" >&2
  exit 7
fi
grub-set-default "${submenu:+$submenu>}$running"
# Without an initramfs nothing resolves root=UUID=... (only the kernel's own root=/dev/... or PARTUUID=)
if [ "$initramfs" = 0 ] && awk -v id="'$entry'" '
    index($0, "menuentry ") && index($0, id) { inside = 1 }
    inside && $1 == "linux" { print; exit }' "$cfg" | grep -q 'root=UUID='; then
  echo "the GRUB entry of $release mounts root=UUID=..., which a kernel without initramfs cannot resolve:" \
    "set GRUB_DISABLE_LINUX_UUID=true in /etc/default/grub, or dcpim_module_kernel_initramfs: true" \
    "(the kernel is installed, not booted; the running kernel stays GRUB's default)" >&2
  exit 6
fi
echo "entry=${submenu:+$submenu>}$entry"
