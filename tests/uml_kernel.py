"""The UML kernel of the uml_lab tests: a user-mode Linux (ARCH=um) build of Debian's linux-source-6.1,
tinyconfig plus roles/uml_lab/files/uml-lab.config (hostfs root, fd console, modules, the debugging aids
that exist for ARCH=um), built once per set of inputs and kept with its build tree, which out-of-tree
modules build against (`make -C <tree> ARCH=um M=<dir> modules`).

kernel_build cannot build it yet: ARCH=um is not in its architecture table, the image is the `linux`
binary at the top of the build directory (not arch/<srcarch>/boot/<image>) and must stay executable,
and its headers tree lacks the x86 files a UML module build reads (arch/x86/Makefile.um,
arch/x86/include, arch/x86/um). Until it can, this module builds the kernel the way kernel_build does
(unpacked source, O= build directory named by a hash of the inputs, ccache, a lock per build) under
LABKIT_CACHE/uml_lab.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import busybox_initramfs
import suite_kernel
from ansible_collections.labkit.cluster.plugins.module_utils import kconfig

ROOT = Path(__file__).resolve().parent.parent
FILES = ROOT / "roles" / "uml_lab" / "files"
FRAGMENT = FILES / "uml-lab.config"
LABQOS = FILES / "labqos"
INIT = FILES / "init"
UML_RUN = FILES / "uml-run"
TARBALL = suite_kernel.TARBALL
WORKDIR = suite_kernel.CACHE / "uml_lab"
CONFIG_BASE = "tinyconfig"
TARGETS = ["linux", "modules"]
BUILD_TIMEOUT = 3600


def _compiler() -> str:
    return subprocess.run(["gcc", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


def inputs() -> dict:
    """What the kernel is made of; its build directory is named by their hash."""
    return {
        "tarball_sha256": suite_kernel.tarball_sha256(),
        "arch": "um",
        "config_base": CONFIG_BASE,
        "fragment_sha256": hashlib.sha256(FRAGMENT.read_bytes()).hexdigest(),
        "targets": TARGETS,
        "compiler": _compiler(),
    }


def build_id() -> str:
    return hashlib.sha256(json.dumps(inputs(), sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _make(tree: Path, builddir: Path, *args: str, log: Path) -> None:
    # kernel_build's build environment: paths under the work directory hash as relative ones in ccache,
    # and the build's identity does not depend on the user or host.
    env = dict(
        os.environ,
        LC_ALL="C",
        LOCALVERSION="",
        CCACHE_DIR=str(WORKDIR / "ccache"),
        CCACHE_BASEDIR=str(WORKDIR),
        CCACHE_DEPEND="1",
        KBUILD_BUILD_USER="labkit",
        KBUILD_BUILD_HOST="labkit",
    )
    argv = ["make", "-C", str(tree), f"O={builddir}", "ARCH=um", *args]
    if shutil.which("ccache"):
        argv += ["CC=ccache gcc", "HOSTCC=ccache gcc"]
    with log.open("a") as out:
        done = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}); the end of {log}:\n{tail}")


def _source() -> Path:
    """The unpacked tarball, shared by every build of it."""
    tree = WORKDIR / f"source-{suite_kernel.tarball_sha256()[:16]}"
    if not (tree / "Makefile").exists():
        partial = tree.with_name(tree.name + ".tmp")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        subprocess.run(["tar", "-xJf", str(TARBALL), "-C", str(partial), "--strip-components=1"], check=True)
        partial.rename(tree)
    return tree


def build() -> dict:
    """The UML kernel for these inputs, built unless its build directory is complete: the `linux`
    binary, the build tree to build modules against, the kernel release and whether this call built it."""
    ident = build_id()
    builddir = WORKDIR / f"build-{ident}"
    stamp = builddir / ".labkit-built"
    with _locked(WORKDIR / f"build-{ident}.lock"):
        built = not stamp.exists()
        if built:
            tree = _source()
            builddir.mkdir(parents=True, exist_ok=True)
            log = builddir / "labkit-build.log"
            log.write_text("")
            _make(tree, builddir, CONFIG_BASE, log=log)
            subprocess.run(
                [
                    str(tree / "scripts" / "kconfig" / "merge_config.sh"),
                    "-m",
                    "-O",
                    str(builddir),
                    str(builddir / ".config"),
                    str(FRAGMENT),
                ],
                cwd=builddir,
                stdout=subprocess.DEVNULL,
                check=True,
            )
            _make(tree, builddir, "olddefconfig", log=log)
            requested = kconfig.parse(FRAGMENT.read_text())
            dropped = kconfig.compare(requested, kconfig.parse((builddir / ".config").read_text()))
            if dropped:
                raise RuntimeError(f"Kconfig dropped symbols of {FRAGMENT.name}: {kconfig.summary(dropped)}")
            _make(tree, builddir, f"-j{os.cpu_count() or 1}", *TARGETS, log=log)
            stamp.write_text(json.dumps(inputs(), sort_keys=True) + "\n")
    return {
        "linux": builddir / "linux",
        "tree": builddir,
        "release": (builddir / "include" / "config" / "kernel.release").read_text().strip(),
        "built": built,
    }


def build_module(kernel: dict, source: Path, dest: Path) -> Path:
    """Build an out-of-tree module from a copy of source in dest against the kernel's tree."""
    shutil.copytree(source, dest)
    subprocess.run(
        ["make", "-C", str(kernel["tree"]), "ARCH=um", f"M={dest}", "modules"],
        env=dict(os.environ, LC_ALL="C"),
        capture_output=True,
        text=True,
        check=True,
    )
    return dest


def root(dest: Path, lab_files: list[Path], run: Path) -> Path:
    """A hostfs root: busybox-static and its applets, /init, the lab's files under /lab and its
    round as /lab/run."""
    for sub in ("bin", "proc", "sys", "dev", "out", "lab"):
        (dest / sub).mkdir(parents=True)
    shutil.copy2(busybox_initramfs.BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run(
        [str(busybox_initramfs.BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (dest / "bin" / applet).symlink_to("busybox")
    shutil.copy2(INIT, dest / "init")
    for path in lab_files:
        shutil.copy2(path, dest / "lab" / path.name)
    shutil.copy2(run, dest / "lab" / "run")
    return dest


def boot(kernel: dict, rootdir: Path, log: Path, timeout: int) -> subprocess.CompletedProcess:
    """Boot the kernel on the hostfs root through uml-run; its console goes to log."""
    argv = [
        str(UML_RUN),
        str(timeout),
        str(log),
        str(kernel["linux"]),
        "mem=128M",
        "root=/dev/root",
        "rootfstype=hostfs",
        f"rootflags={rootdir}",
        "rw",
        "init=/init",
        "con=null",
        "con0=null,fd:1",
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30, check=False)
