#!/bin/sh
# What lab_base needs to know about a host, in one round trip: the system (distribution, kernel,
# Python, container runtime) and the files the role manages. No Ansible module runs, so a no-op run
# starts no module at all (each one costs seconds of Python start-up on a Pi or an emulated guest).
# Usage: probe.sh FACT_FILE PYTHON   Prints one JSON object; file contents in base64, attributes as
# "owner group octal-mode" ("" when the path does not exist).
set -eu
fact_file=$1
python=$2
b64() { if [ -f "$1" ]; then base64 -w0 "$1"; fi; }
attrs() { if [ -e "$1" ]; then stat -c '%U %G %a' "$1"; fi; }
# Values printed into the JSON as they are: keep only characters that need no escaping.
safe() { tr -cd 'A-Za-z0-9._+:()/ -'; }
# os-release is read, not sourced: sourcing would run whatever the file contains.
os_field() {
  if [ -r /etc/os-release ]; then
    sed -n "s/^$1=//p" /etc/os-release | head -n 1 | sed 's/^["'\'']//; s/["'\'']$//' | safe
  fi
}
# What a container runtime leaves behind (podman, docker, systemd's container= convention, containerd's
# cgroup), in the order Ansible's virtualization facts look.
container() {
  if [ -e /run/.containerenv ]; then echo podman
  elif [ -e /.dockerenv ]; then echo docker
  elif [ -r /proc/1/environ ] && tr '\0' '\n' < /proc/1/environ | grep -q '^container='; then
    tr '\0' '\n' < /proc/1/environ | sed -n 's/^container=//p' | head -n 1 | safe
  elif grep -qs containerd /proc/1/cgroup; then echo containerd
  fi
}
# `python -V` starts the interpreter without importing site: the version at a fraction of a module's cost.
python_path=$(command -v "$python" 2>/dev/null || true)
python_version=$(if [ -n "$python_path" ]; then "$python_path" -V 2>&1 | sed -n 's/^Python //p' | safe; fi)
printf '{"os_id": "%s", "os_name": "%s", "os_version_id": "%s", "debian_version": "%s", "kernel": "%s", "container": "%s", "python_path": "%s", "python_version": "%s", ' \
  "$(os_field ID)" "$(os_field NAME)" "$(os_field VERSION_ID)" \
  "$(if [ -r /etc/debian_version ]; then head -n 1 /etc/debian_version | safe; fi)" \
  "$(uname -r | safe)" "$(container)" "$(printf '%s' "$python_path" | safe)" "$python_version"
printf '"hosts_b64": "%s", "hosts_attrs": "%s", "hostname_b64": "%s", "etc_hostname_b64": "%s", "facts_dir_attrs": "%s", "fact_b64": "%s", "fact_attrs": "%s"}\n' \
  "$(b64 /etc/hosts)" "$(attrs /etc/hosts)" "$(hostname | base64 -w0)" "$(b64 /etc/hostname)" \
  "$(attrs "$(dirname "$fact_file")")" "$(b64 "$fact_file")" "$(attrs "$fact_file")"
