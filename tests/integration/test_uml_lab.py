"""The uml_lab loop on the controller, in user-mode Linux: a UML kernel from Debian's linux-source-6.1
(tests/uml_kernel.py, built once per inputs), the project's labqos module built out of tree against it,
a boot with a host directory as the root file system (hostfs, no disk image) whose /init runs
load -> test -> unload and keeps the kernel log, then powers off. No process of the run may outlive it,
whether the guest powers off or hangs and is killed at its timeout.

UML needs no KVM and no privileges beyond ptrace of its own children; it keeps its memory in a file
under TMPDIR (uml-run points it at a directory of its own on /dev/shm).
"""

from __future__ import annotations

import os
from pathlib import Path

import busybox_initramfs
import pytest
import uml_kernel

pytestmark = pytest.mark.slow

BOOT_TIMEOUT = 60
HANG_TIMEOUT = 5
LABQOS_SCRIPTS = ["labqos_load", "labqos_test", "labqos_unload"]


@pytest.fixture(scope="module")
def kernel():
    missing = [str(p) for p in (uml_kernel.TARBALL, busybox_initramfs.BUSYBOX) if not p.exists()]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run ./labkit setup (Debian packages linux-source-6.1, busybox-static)"
        )
    return uml_kernel.build()


@pytest.fixture(scope="module")
def labqos(kernel, tmp_path_factory):
    return uml_kernel.build_module(kernel, uml_kernel.LABQOS, tmp_path_factory.mktemp("labqos") / "labqos")


def _processes_naming(text: str) -> list[str]:
    """Processes (zombies aside) whose command line names text: each run's root directory is unique."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z" and int(proc.name) != os.getpid():
            found.append(f"{proc.name} {cmdline.replace(chr(0), ' ')[:200]}")
    return found


def _run(kernel: dict, tmp: Path, lab_files: list[Path], run: Path, timeout: int = BOOT_TIMEOUT):
    rootdir = uml_kernel.root(tmp / "root", lab_files, run)
    log = tmp / "console.log"
    done = uml_kernel.boot(kernel, rootdir, log, timeout)
    return done, rootdir, log.read_text(errors="replace")


def test_labqos_loads_passes_its_tests_and_unloads(kernel, labqos, tmp_path):
    files = [labqos / "labqos.ko", *(uml_kernel.LABQOS / name for name in LABQOS_SCRIPTS)]
    done, rootdir, console = _run(kernel, tmp_path, files, uml_kernel.LABQOS / "labqos_run")
    assert done.returncode == 0, f"{done.stderr}\n{console[-3000:]}"
    assert os.access(kernel["linux"], os.X_OK)
    assert f"LABKIT uml-up {kernel['release']}" in console, console[-3000:]
    run_log = (rootdir / "out" / "run.log").read_text()
    assert run_log.splitlines() == [
        "labqos_load: labqos 1.0 loaded",
        "all tests OK",
        "labqos_unload: labqos unloaded",
    ], run_log
    assert (rootdir / "out" / "run.rc").read_text().strip() == "0"
    dmesg = (rootdir / "out" / "dmesg.txt").read_text()
    assert "labqos: version 1.0 loaded" in dmesg and "labqos: unloaded" in dmesg, dmesg[-3000:]
    assert not any(word in dmesg for word in ("BUG:", "WARNING:", "Oops")), dmesg[-3000:]
    assert _processes_naming(str(rootdir)) == []


def test_labqos_test_fails_without_the_module(kernel, tmp_path):
    done, rootdir, console = _run(kernel, tmp_path, [], uml_kernel.LABQOS / "labqos_test")
    assert done.returncode == 0, f"{done.stderr}\n{console[-3000:]}"
    run_log = (rootdir / "out" / "run.log").read_text()
    assert "all tests OK" not in run_log and run_log.startswith("FAIL:"), run_log
    assert (rootdir / "out" / "run.rc").read_text().strip() == "1"


def test_debugging_aids_are_in_the_kernel(kernel, tmp_path):
    run = tmp_path / "aids"
    run.write_text(
        "#!/bin/sh\n"
        "zcat /proc/config.gz | grep -E '^CONFIG_(DEBUG_KERNEL|MAGIC_SYSRQ|KALLSYMS|IKCONFIG_PROC|HOSTFS)='\n"
        "grep -cw schedule /proc/kallsyms\n"
        "echo m > /proc/sysrq-trigger\n"
    )
    run.chmod(0o755)
    done, rootdir, console = _run(kernel, tmp_path, [], run)
    assert done.returncode == 0, f"{done.stderr}\n{console[-3000:]}"
    run_log = (rootdir / "out" / "run.log").read_text().splitlines()
    assert sorted(run_log[:5]) == [
        "CONFIG_DEBUG_KERNEL=y",
        "CONFIG_HOSTFS=y",
        "CONFIG_IKCONFIG_PROC=y",
        "CONFIG_KALLSYMS=y",
        "CONFIG_MAGIC_SYSRQ=y",
    ], run_log
    assert int(run_log[5]) >= 1, run_log
    assert "sysrq: Show Memory" in (rootdir / "out" / "dmesg.txt").read_text()


def test_a_hanging_run_is_killed_at_its_timeout_with_nothing_left(kernel, tmp_path):
    run = tmp_path / "hang"
    run.write_text("#!/bin/sh\necho hanging\nexec sleep 1000\n")
    run.chmod(0o755)
    scratch_before = set(Path("/dev/shm").glob("uml-run.*"))
    done, rootdir, console = _run(kernel, tmp_path, [], run, timeout=HANG_TIMEOUT)
    assert done.returncode == 124, f"{done.returncode}: {done.stderr}\n{console[-3000:]}"
    assert "no power-off within" in done.stderr
    assert "LABKIT uml-up" in console and "LABKIT run-rc" not in console, console[-3000:]
    assert _processes_naming(str(rootdir)) == []
    # the run's memory file and mconsole socket went with it
    assert set(Path("/dev/shm").glob("uml-run.*")) <= scratch_before
    assert not (Path.home() / ".uml").exists() or not any((Path.home() / ".uml").iterdir())
