#!/usr/bin/env python3
"""Unpack peer collections from the `ansible` wheel on PyPI (Galaxy is not reachable).

labkit.cluster itself needs none of them. Tests and benchmarks use them as peers:
containers.podman drives Molecule's podman driver, community.general and ansible.posix
are what the benchmarks compare our modules with.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

WHEEL_SPEC = "ansible>=12,<13"  # the release line that pairs with ansible-core 2.19
COLLECTIONS = ("containers/podman", "community/general", "ansible/posix")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dest", required=True, help="directory that will hold ansible_collections/")
    args = parser.parse_args()
    root = os.path.join(args.dest, "ansible_collections")
    if all(os.path.isfile(os.path.join(root, c, "MANIFEST.json")) for c in COLLECTIONS):
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "-d",
                tmp,
                WHEEL_SPEC,
            ],
            check=True,
        )
        wheel = glob.glob(os.path.join(tmp, "ansible-*.whl"))[0]
        staging = os.path.join(tmp, "out")
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if any(name.startswith(f"ansible_collections/{c}/") for c in COLLECTIONS):
                    zf.extract(name, staging)
        for coll in COLLECTIONS:
            target = os.path.join(root, coll)
            shutil.rmtree(target, ignore_errors=True)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.move(os.path.join(staging, "ansible_collections", coll), target)
    print(f"peer collections unpacked under {root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
