#!/usr/bin/env bash
# Build the Debian bookworm image Molecule scenarios run in (no registry is reachable here).
#   tests/podman/build_image.sh [--force]
# Idempotent: the image carries a label with the hash of its inputs, and a build is skipped when
# an image of that name already has the same hash. Needs root (rootful podman), mmdebstrap, and
# CONTAINERS_CONF pointing at tests/podman/containers.conf (runc, cgroupfs). Packages come from the
# Debian mirror apt uses on this machine, or LABKIT_DEBIAN_MIRROR (tools/simlab/apt_sources.py).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=${LABKIT_MOLECULE_IMAGE:-localhost/labkit-debian:bookworm}
SUITE=bookworm
# The hash names the archive the image is built from, not the mirror that serves it: every mirror
# of Debian's archive gives the same image. Nothing is fetched from this URL.
ARCHIVE=http://deb.debian.org/debian
VARIANT=minbase
# systemd runs as PID 1 (the roles manage services); python3-apt lets ansible.builtin.package/apt
# work without first installing it from the network.
PACKAGES=python3,python3-apt,sudo,systemd,systemd-sysv,dbus,procps,iproute2
# More packages for another image (LABKIT_MOLECULE_IMAGE names it): bench/lab_scale.py adds openssh-server.
if [ -n "${LABKIT_IMAGE_EXTRA_PACKAGES:-}" ]; then PACKAGES=$PACKAGES,$LABKIT_IMAGE_EXTRA_PACKAGES; fi
LABEL=org.labkit.inputs

export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/containers.conf}

inputs_hash() {
  printf '%s\n' "$SUITE" "$ARCHIVE" "$VARIANT" "$PACKAGES" "image-format-1" | sha256sum | cut -c1-16
}

main() {
  local force=0 want have mirror
  [ "${1:-}" = "--force" ] && force=1
  for tool in podman mmdebstrap; do
    command -v "$tool" >/dev/null || { echo "build_image: $tool is missing (apt-get install $tool)" >&2; exit 1; }
  done
  want=$(inputs_hash)
  have=$(podman image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)
  if [ "$force" -eq 0 ] && [ "$have" = "$want" ]; then
    echo "build_image: $IMAGE is up to date ($LABEL=$want)"
    return 0
  fi
  mirror=$(python3 "$HERE/../../tools/simlab/apt_sources.py" "$SUITE")
  echo "build_image: building $IMAGE from $mirror ($LABEL=$want, was '${have:-absent}')"
  # Build into a file first so a failed mmdebstrap never leaves a half-imported image behind.
  TARBALL=$(mktemp --suffix=.tar)
  trap 'rm -f "$TARBALL"' EXIT
  mmdebstrap --quiet --variant="$VARIANT" --include="$PACKAGES" "$SUITE" "$TARBALL" "$mirror"
  podman import --quiet \
    --change 'CMD ["/sbin/init"]' \
    --change "LABEL $LABEL=$want" \
    --change 'ENV container=podman' \
    "$TARBALL" "$IMAGE" >/dev/null
  echo "build_image: built $IMAGE"
}

main "$@"
