"""The UML kernel of the uml_lab tests: a user-mode Linux (ARCH=um) build of Debian's linux-source-6.1 by
kernel_build, tinyconfig plus roles/uml_lab/files/uml-lab.config (hostfs root, fd console, modules, the
debugging aids that exist for ARCH=um), with a headers tree that out-of-tree modules build against
(`make -C <headers> ARCH=um M=<dir> modules`). kernel_build's artifact cache (the suite kernel's work
directory, tests/suite_kernel.py) builds it once per set of inputs; its build directory is its own
(`.labkit-build-um`), so it never rebuilds the suite kernel's objects.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import busybox_initramfs
import suite_kernel
import yaml
from playbook_runner import run_playbook

ROOT = Path(__file__).resolve().parent.parent
FILES = ROOT / "roles" / "uml_lab" / "files"
FRAGMENT = FILES / "uml-lab.config"
LABQOS = FILES / "labqos"
INIT = FILES / "init"
UML_RUN = FILES / "uml-run"
TARBALL = suite_kernel.TARBALL
LOCALVERSION = "-labkit-uml"  # as uml-lab.config has it
BUILD_TIMEOUT = 3600
RESOLVED = "{{ (kernel_build_artifact | labkit.cluster.kernel_artifact) }}"


def kernel_build_vars(**overrides) -> dict:
    """kernel_build's variables for the UML kernel on the controller."""
    variables = {
        **suite_kernel.source_vars(),
        "kernel_build_config_base": "tinyconfig",
        "kernel_build_config_fragments": [str(FRAGMENT)],
        "kernel_build_localversion": LOCALVERSION,
        "kernel_build_arch": "um",
        "kernel_build_targets": ["linux", "modules"],
    }
    variables.update(overrides)
    return variables


def build() -> dict:
    """The UML kernel's artifact as labkit.cluster.kernel_artifact resolves it (files as absolute paths)."""
    play = [
        {
            "name": "Build the UML kernel",
            "hosts": "localhost",
            "gather_facts": False,
            "roles": [{"role": "labkit.cluster.kernel_build", "vars": kernel_build_vars()}],
            "post_tasks": [{"name": "Show the artifact", "ansible.builtin.debug": {"msg": RESOLVED}}],
        }
    ]
    with tempfile.TemporaryDirectory(prefix="uml-kernel-") as tmp:
        inventory = Path(tmp) / "hosts"
        inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
        result = run_playbook(yaml.safe_dump(play, sort_keys=False), inventory=inventory, timeout=BUILD_TIMEOUT)
    if result.rc != 0:
        raise RuntimeError(f"kernel_build of the UML kernel failed:\n{result.stdout[-6000:]}")
    artifact = result.result("localhost", "Show the artifact")["msg"]
    files = artifact["files"]
    return {
        "linux": Path(files["image"]),
        "headers": Path(files["headers"]),
        "release": artifact["release"],
        "artifact": artifact,
    }


def build_module(kernel: dict, source: Path, dest: Path) -> Path:
    """Build an out-of-tree module from a copy of source in dest against the artifact's headers tree."""
    shutil.copytree(source, dest)
    subprocess.run(
        ["make", "-C", str(kernel["headers"]), "ARCH=um", f"M={dest}", "modules"],
        env=dict(os.environ, LC_ALL="C"),
        capture_output=True,
        text=True,
        check=True,
    )
    return dest


def root(dest: Path, lab_files: list[Path], run: Path) -> Path:
    """A hostfs root: busybox-static and its applets, /init, the lab's files under /lab and its
    round as /lab/run."""
    busybox_initramfs.skeleton(dest)
    for sub in ("out", "lab"):
        (dest / sub).mkdir()
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
