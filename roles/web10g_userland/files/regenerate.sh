#!/bin/sh
# Run in the unpacked tree before ./configure: ./autogen.sh (or autoreconf -fi) when the revision has no
# configure script, or has one without the templates it fills in (upstream's git tree ships configure but no
# Makefile.in); a dist tarball with configure and every template skips it. Says why on stdout (the build log).
set -eu
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
  echo "regenerating the build system: $regenerate"
  if [ -x autogen.sh ]; then ./autogen.sh; else autoreconf -fi; fi
fi
