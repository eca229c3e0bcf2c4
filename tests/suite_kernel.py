"""The suite kernel: the one x86_64 kernel every test that needs "a kernel that boots in a sim guest"
builds, so kernel_build's artifact cache builds it once per set of inputs for the whole suite.

Debian's linux-source-6.1 with the project's two test patches (the dcPIM stand-in's kernel patch, which
marks the top Makefile, and the labkit demo patch, which adds CONFIG_LABKIT_DEMO), tinyconfig plus what
a uefi sim guest boots with (tests/fixtures/kernel/sim-guest-x86_64.config, with an initramfs and the
demo symbol as a module). test_kernel_build builds it and boots it to a busybox initramfs; the dcPIM
trial boot asks playbooks/dcpim.yml's builder for exactly these inputs (dcPIM's own patch from its checkout,
the demo patch as a site patch), gets the same artifact id and builds nothing. A variant (the dcPIM test's kernel
that panics) changes only what few objects read, and builds incrementally in the same build directory.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("LABKIT_CACHE", Path.home() / ".cache" / "labkit"))
# Every kernel build of the suite shares this work directory (and its ccache).
WORKDIR = Path(os.environ.get("LABKIT_KERNEL_WORKDIR", CACHE / "kernel"))
TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
FIXTURES = ROOT / "tests" / "fixtures"
DCPIM_PATCH = FIXTURES / "dcpim" / "kernel_impl" / "diff.patch"
DEMO_PATCH = FIXTURES / "kernel" / "patches" / "0001-labkit-demo.patch"
PATCHES = [DCPIM_PATCH, DEMO_PATCH]
CONFIG_BASE = "tinyconfig"
FRAGMENTS = [FIXTURES / "kernel" / "sim-guest-x86_64.config", FIXTURES / "kernel" / "labkit-demo.config"]
# playbooks/dcpim.yml's default for dcPIM's kernel; kernel_build gets it too so both make the same .config.
CONFIG = {"DEBUG_INFO": "n"}
LOCALVERSION = "-labkit-suite"
# The suite kernel that cannot boot a sim guest: a built-in command line (overriding the boot loader's) names a
# root disk no guest has, and panic=-1 resets at once. Symbols that common headers test (a missing VIRTIO_BLK drops
# SG_POOL; PANIC_TIMEOUT) would recompile nearly all of the shared build directory; the command line touches a
# few files. The dcPIM trial boot (GRUB) and the rpi_kernel test (Pi firmware) fall back from it.
NO_ROOT_FRAGMENT = FIXTURES / "kernel" / "no-root.config"
NO_ROOT_LOCALVERSION = "-labkit-noroot"
TARGETS = ["bzImage", "modules"]


@functools.cache
def tarball_sha256() -> str:
    digest = hashlib.sha256()
    with TARBALL.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_vars() -> dict:
    """kernel_build's variables every suite build on the controller shares: Debian's linux-source tarball,
    unpacked once in the suite's work directory, and a headers tree."""
    return {
        "kernel_build_workdir": str(WORKDIR),
        "kernel_build_source": "tarball",
        "kernel_build_tarball_url": f"file://{TARBALL}",
        "kernel_build_tarball_sha256": tarball_sha256(),
        "kernel_build_headers": True,
        "kernel_build_poll_interval": 20,
    }


def kernel_build_vars(**overrides) -> dict:
    """kernel_build's variables for the suite kernel on the controller."""
    variables = {
        **source_vars(),
        "kernel_build_patches": [{"src": str(p)} for p in PATCHES],
        "kernel_build_config_base": CONFIG_BASE,
        "kernel_build_config_fragments": [str(f) for f in FRAGMENTS],
        "kernel_build_config": dict(CONFIG),
        "kernel_build_localversion": LOCALVERSION,
        "kernel_build_arch": "x86_64",
        "kernel_build_targets": list(TARGETS),
    }
    variables.update(overrides)
    return variables


def no_root_kernel_vars(**overrides) -> dict:
    """kernel_build's variables for the suite kernel that panics for want of its root disk."""
    return kernel_build_vars(
        kernel_build_config_fragments=[*(str(f) for f in FRAGMENTS), str(NO_ROOT_FRAGMENT)],
        kernel_build_localversion=NO_ROOT_LOCALVERSION,
        **overrides,
    )


def dcpim_kernel_vars(build: dict | None = None, **overrides) -> dict:
    """playbooks/dcpim.yml's variables of a dcPIM kernel builder that give the suite kernel (built on the controller):
    the inputs of build (default kernel_build_vars(); no_root_kernel_vars() for the kernel that panics), with dcPIM's
    own patch taken from its checkout (the default) and the demo patch as a site patch."""
    build = build or kernel_build_vars()
    variables = {
        "dcpim_kernel_workdir": build["kernel_build_workdir"],
        "dcpim_kernel_tarball_url": build["kernel_build_tarball_url"],
        "dcpim_kernel_tarball_sha256": build["kernel_build_tarball_sha256"],
        "dcpim_kernel_extra_patches": [{"src": str(DEMO_PATCH)}],
        "dcpim_kernel_config_base": build["kernel_build_config_base"],
        "dcpim_kernel_config_fragments": build["kernel_build_config_fragments"],
        "dcpim_kernel_config": build["kernel_build_config"],
        "dcpim_kernel_localversion": build["kernel_build_localversion"],
        "dcpim_kernel_poll_interval": build["kernel_build_poll_interval"],
        # as test_kernel_build: the suite's controller has the build tools (./labkit setup)
        "dcpim_kernel_install_dependencies": False,
    }
    variables.update(overrides)
    return variables
