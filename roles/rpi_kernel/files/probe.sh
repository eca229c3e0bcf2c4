#!/bin/sh
# What rpi_kernel needs to know about a Pi, in one round trip (Python on a Pi is slow to start).
# Usage: probe.sh BOOT_DIR_OR_EMPTY PREFIX RELEASE PACKAGE...   Prints one JSON object.
set -eu
boot_dir=$1 prefix=$2 release=$3
shift 3
if [ -z "$boot_dir" ]; then
  for candidate in /boot/firmware /boot; do
    if [ -f "$candidate/config.txt" ]; then boot_dir=$candidate; break; fi
  done
fi
b64() { if [ -f "$1" ]; then base64 -w0 "$1"; fi; }
config=""
stamp=""
if [ -n "$boot_dir" ] && [ -f "$boot_dir/config.txt" ]; then
  config=$(b64 "$boot_dir/config.txt")
  stamp=$(b64 "$boot_dir/$prefix/artifact.json")
else
  boot_dir=""
fi
modules_dir_exists=false
if [ -d "/lib/modules/$release" ]; then modules_dir_exists=true; fi
marker=""
if [ -f "/lib/modules/$release/.labkit-artifact" ]; then marker=$(tr -d '\n' < "/lib/modules/$release/.labkit-artifact"); fi
held=""  # installed and not yet held
if [ "$#" -gt 0 ]; then
  held=$(dpkg-query -W -f '${db:Status-Want} ${db:Status-Status} ${Package}\n' "$@" 2>/dev/null | sed -n 's/^install installed //p' | tr '\n' ' ' || true)
fi
printf '{"boot_dir": "%s", "config_b64": "%s", "stamp_b64": "%s", "uname": "%s", "modules_dir_exists": %s, "modules_marker": "%s", "installed_packages": "%s"}\n' \
  "$boot_dir" "$config" "$stamp" "$(uname -r)" "$modules_dir_exists" "$marker" "$held"
