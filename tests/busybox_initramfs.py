"""Busybox initramfs images for the tests that boot a kernel straight into an /init of their own.

`skeleton(root)` makes the tree (busybox-static and the mount points /init needs); the test adds its
modules and /init; `pack(root, image)` writes an uncompressed newc cpio, which every kernel reads
(tinyconfig builds have no decompressors).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static


def skeleton(root: Path) -> Path:
    for sub in ("bin", "proc", "sys", "dev"):
        (root / sub).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    return root


def pack(root: Path, image: Path) -> Path:
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    with image.open("wb") as out:
        subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input="\n".join(files).encode(), stdout=out, check=True
        )
    return image
