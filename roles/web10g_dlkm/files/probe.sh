#!/bin/sh
# Probe a host for web10g_dlkm: kernel release and architecture, the kernel tree, the module's state,
# and the build tools it lacks. (The kernel configuration is read by labkit.cluster.kconfig.)
#   probe.sh native|target|buildhost KDIR TOOLS
# native: the host builds for itself; target: it only loads a shipped .ko; buildhost: it builds for
# another host (KDIR is that host's kernel tree). KDIR "" means /lib/modules/<release>/build.
# Prints key=value lines.
set -u
mode=$1 kdir=$2 tools=$3
release=$(uname -r)
[ -n "$kdir" ] || kdir="/lib/modules/$release/build"
echo "release=$release"
echo "arch=$(uname -m)"
echo "kdir=$kdir"
echo "loaded=$([ -d /sys/module/tcp_estats_nl ] && echo 1 || echo 0)"

missing=""
if [ "$mode" != target ]; then
  for tool in $tools; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
  done
  [ -e "$kdir/Makefile" ] || missing="$missing headers"
fi
echo "missing=$missing"
