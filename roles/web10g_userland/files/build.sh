#!/bin/sh
# Build and install web10g-userland from one revision with autotools, then write the stamp.
#   build.sh WORK_DIR git|tar SOURCE REVISION PREFIX STAMP STAMP_JSON [CONFIGURE_ARG...]
# ./autogen.sh (or autoreconf -fi) runs when the revision has no configure script, or has one without the
# templates it fills in (upstream's git tree ships configure but no Makefile.in); a dist tarball with
# configure and every template skips it. The stamp is written last, so a failed build leaves none and the
# next run builds again. On failure the step, the log's path and the log's tail go to stdout and stderr.
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
    # ansible.builtin.script may merge stderr into stdout: the role shows whichever holds this
    { echo "$what failed in $tree (log: $log), last lines:"; tail -n 40 "$log"; } >&2
    exit 5
  fi
}
# The first input template configure needs that the tree lacks (AC_CONFIG_FILES/AC_CONFIG_HEADERS as
# the generated script lists them: OUT, read from OUT.in, or OUT:IN1:IN2...), or nothing.
missing_template() {
  [ ! -f Makefile.am ] || [ -f Makefile.in ] || { echo Makefile.in; return; }
  # Words, not lines: one ac_config_* line lists several specs. The $ in the pattern is configure's text.
  # shellcheck disable=SC2013,SC2016
  for spec in $(sed -n 's/^ac_config_\(files\|headers\)="\$ac_config_[a-z]* \(.*\)"$/\2/p' configure); do
    case $spec in
      *:*) inputs=$(echo "${spec#*:}" | tr ':' ' ') ;;
      *) inputs="$spec.in" ;;
    esac
    for input in $inputs; do
      [ -f "$input" ] || { echo "$input"; return; }
    done
  done
}
regenerate=""
if [ ! -x configure ]; then
  regenerate="there is no configure script"
else
  missing=$(missing_template)
  [ -z "$missing" ] || regenerate="configure is there but its template $missing is not"
fi
if [ -n "$regenerate" ]; then
  echo "regenerating the build system: $regenerate" >> "$log"
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
