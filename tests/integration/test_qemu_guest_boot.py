"""The QEMU command lines of plugins/module_utils/qemu_guest.py, booted in real QEMU (Debian's
qemu-system-x86_64, TCG) on the controller: CXL type-3 devices behind generated host bridges, root ports
and fixed memory windows appear as memdevs under /sys/bus/cxl/devices, and two guests exchange bytes
through an ivshmem-plain region's BAR2.

The guests boot Debian's kernel (the cloud flavour the rpi_kernel tests already download: it has
CXL_BUS=y and cxl_acpi, cxl_pci, cxl_mem as modules) with a busybox initramfs made here. Its /init is
the guest side of each check (tests/fixtures/qemu_guest/init): it loads the modules the command line
names, prints what it finds on the console (which the generated command line sends to a log file) and
powers off. The ivshmem check runs both guests at once: one writes a random token at BAR2 and waits for
the other to read it and write back an acknowledgement.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import busybox_initramfs
import pytest
from ansible_collections.labkit.cluster.plugins.module_utils import qemu_guest as q

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "rpi_kernel"))
import artifacts  # noqa: E402

pytestmark = pytest.mark.lab

INIT = ROOT / "tests" / "fixtures" / "qemu_guest" / "init"
CXL_MODULES = ("cxl_acpi", "cxl_pci", "cxl_mem")
BOOT_TIMEOUT = 240


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """Debian's kernel image and the initramfs with busybox, the CXL modules and the fixture's /init."""
    if not busybox_initramfs.BUSYBOX.exists() or not shutil.which("cpio"):
        pytest.fail("missing busybox-static or cpio: run ./labkit setup")
    tmp = tmp_path_factory.mktemp("qemu-guest")
    unpacked = tmp / "deb"
    subprocess.run(["dpkg-deb", "-x", str(artifacts.download()), str(unpacked)], check=True)
    image = next((unpacked / "boot").glob("vmlinuz-*"))
    release = image.name.removeprefix("vmlinuz-")
    root = busybox_initramfs.skeleton(tmp / "root")
    modules = unpacked / "lib" / "modules" / release
    target = root / "lib" / "modules" / release
    target.mkdir(parents=True)
    for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        if (modules / name).exists():
            shutil.copy2(modules / name, target / name)
    shutil.copytree(modules / "kernel" / "drivers" / "cxl", target / "kernel" / "drivers" / "cxl")
    subprocess.run(["depmod", "-b", str(root), release], check=True)
    shutil.copy2(INIT, root / "init")
    (root / "init").chmod(0o755)
    initrd = busybox_initramfs.pack(root, tmp / "initramfs.cpio")
    return {"kernel": str(image), "initrd": str(initrd), "release": release}


def _boot(kernel: dict, tmp: Path, definition: dict, regions: list | None = None, append: str = "") -> str:
    """Run one guest from its generated command line until it powers off; its console log."""
    found = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=True)
    version = q.qemu_version(found.stdout)
    checked_regions = q.validate_regions(regions or [])
    guest = q.validate_guest(
        dict(definition, kernel=kernel["kernel"], initrd=kernel["initrd"], append=f"console=ttyS0 panic=-1 {append}"),
        checked_regions,
        version,
    )
    run_dir, files_dir = tmp / guest["name"] / "run", tmp / guest["name"] / "files"
    run_dir.mkdir(parents=True)
    files_dir.mkdir(parents=True)
    argv = q.qemu_argv(guest, checked_regions, run_dir=str(run_dir), files_dir=str(files_dir), qemu_version=version)
    done = subprocess.run([*argv, "-no-reboot"], capture_output=True, text=True, timeout=BOOT_TIMEOUT, check=False)
    console = (run_dir / "console.log").read_text(errors="replace")
    assert done.returncode == 0, f"{done.stderr}\n{console[-3000:]}"
    return console


def _marked(console: str, marker: str) -> list[str]:
    return [line.split(marker, 1)[1].strip() for line in console.splitlines() if marker in line]


def test_cxl_devices_behind_two_host_bridges_are_memdevs_in_the_guest(kernel, tmp_path):
    definition = {
        "name": "cxl1",
        "memory": "512M",
        "accel": "tcg",
        "cpu": "qemu64",
        "cxl": {"host_bridges": 2, "devices": [{"name": "a", "size": "256M"}, {"name": "b", "host_bridge": 1}]},
        "ivshmem": ["shm0"],  # a PCI device beside the CXL topology
    }
    regions = [{"name": "shm0", "size": "2M", "path": str(tmp_path / "shm0")}]
    console = _boot(kernel, tmp_path, definition, regions, append="labkit.modules=" + ",".join(CXL_MODULES))
    assert _marked(console, "LABKIT modprobe-failed") == [], console[-3000:]
    found = _marked(console, "LABKIT cxl-devices:")
    assert found, console[-3000:]
    devices = found[0].split()
    assert {"mem0", "mem1"} <= set(devices) and "root0" in devices, devices
    # each memdev reports the capacity and label storage area its backing files give it
    sizes = sorted(_marked(console, "LABKIT memdev"))
    assert sizes == ["mem0 pmem=268435456 lsa=268435456", "mem1 pmem=268435456 lsa=268435456"], console[-3000:]
    assert (tmp_path / "cxl1" / "files" / "cxl-a.raw").stat().st_size == 256 << 20


def test_two_guests_exchange_bytes_through_an_ivshmem_region(kernel, tmp_path):
    token, ack = f"0x{secrets.randbits(63):016x}", f"0x{secrets.randbits(63):016x}"
    regions = [{"name": "shm0", "size": "2M", "path": str(tmp_path / "shm0")}]
    common = {"memory": "256M", "accel": "tcg", "cpu": "qemu64", "ivshmem": ["shm0"]}
    with ThreadPoolExecutor(2) as pool:
        writer = pool.submit(
            _boot, kernel, tmp_path, dict(common, name="writer"), regions, f"labkit.ivshmem=write:{token}:{ack}"
        )
        reader = pool.submit(
            _boot, kernel, tmp_path, dict(common, name="reader"), regions, f"labkit.ivshmem=read:{ack}"
        )
        written, read = writer.result(), reader.result()
    assert _marked(read, "LABKIT ivshmem-device:") == ["1af4:1110"], read[-3000:]
    assert [value.lower() for value in _marked(read, "LABKIT ivshmem-read:")] == [token], read[-3000:]
    assert [value.lower() for value in _marked(written, "LABKIT ivshmem-acked:")] == [ack], written[-3000:]
