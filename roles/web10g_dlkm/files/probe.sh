#!/bin/sh
# Probe a host for web10g_dlkm: kernel release and architecture, where its kernel configuration is
# and the values of the asked symbols in it, the module's state, and the build tools it lacks.
#   probe.sh native|target|buildhost KDIR TOOLS SYMBOL...
# native: the host builds for itself; target: it only loads a shipped .ko; buildhost: it builds for
# another host (KDIR is that host's kernel tree). KDIR "" means /lib/modules/<release>/build.
# Prints key=value lines.
set -u
mode=$1 kdir=$2 tools=$3
shift 3
release=$(uname -r)
[ -n "$kdir" ] || kdir="/lib/modules/$release/build"
echo "release=$release"
echo "arch=$(uname -m)"
echo "kdir=$kdir"
echo "loaded=$([ -d /sys/module/tcp_estats_nl ] && echo 1 || echo 0)"

case $mode in
  native) candidates="/boot/config-$release /proc/config.gz $kdir/.config" ;;
  target) candidates="/boot/config-$release /proc/config.gz" ;;
  *) candidates="$kdir/.config" ;;
esac
config=""
for file in $candidates; do
  if [ -r "$file" ]; then config=$file; break; fi
done
echo "config=$config"
read_config() {
  case $config in
    *.gz) zcat "$config" ;;
    *) cat "$config" ;;
  esac
}
for symbol in "$@"; do
  value=""
  if [ -n "$config" ]; then
    value=$(read_config | sed -n "s/^$symbol=//p" | tail -n 1)
  fi
  echo "symbol:$symbol=$value"
done

missing=""
if [ "$mode" != target ]; then
  for tool in $tools; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
  done
  [ -e "$kdir/Makefile" ] || missing="$missing headers"
fi
echo "missing=$missing"
