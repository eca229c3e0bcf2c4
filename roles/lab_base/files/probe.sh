#!/bin/sh
# What lab_base needs to know about a host, in one round trip: a no-op run then calls no module
# (each one costs seconds of Python start-up on a Pi or an emulated guest).
# Usage: probe.sh FACT_FILE   Prints one JSON object; file contents in base64, attributes as
# "owner group octal-mode" ("" when the path does not exist).
set -eu
fact_file=$1
b64() { if [ -f "$1" ]; then base64 -w0 "$1"; fi; }
attrs() { if [ -e "$1" ]; then stat -c '%U %G %a' "$1"; fi; }
printf '{"hosts_b64": "%s", "hosts_attrs": "%s", "hostname_b64": "%s", "etc_hostname_b64": "%s", "facts_dir_attrs": "%s", "fact_b64": "%s", "fact_attrs": "%s"}\n' \
  "$(b64 /etc/hosts)" "$(attrs /etc/hosts)" "$(hostname | base64 -w0)" "$(b64 /etc/hostname)" \
  "$(attrs "$(dirname "$fact_file")")" "$(b64 "$fact_file")" "$(attrs "$fact_file")"
