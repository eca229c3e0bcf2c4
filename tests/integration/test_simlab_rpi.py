"""The emulated Raspberry Pi firmware of sim Pis: config.txt, one-shot tryboot, fallback.

A sim Pi of its own (not the session lab's), so its reboots disturb no other test.
"""

import shutil
from pathlib import Path

import pytest
import yaml
from simlab.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
HOST = "fw-pi"


@pytest.fixture(scope="module")
def pi(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rpi") / "inventory"
    shutil.copytree(ROOT / "inventories" / "sim" / "group_vars", directory / "group_vars")
    hosts = {HOST: {"ansible_port": 2289, "lab_address": "10.213.7.1"}}
    (directory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"rpi": {"hosts": hosts}}}}))
    lab = Lab(directory)
    lab.up()
    yield lab
    lab.down()


def firmware_log(lab: Lab) -> str:
    return (lab.directory / HOST / "firmware.log").read_text()


def cmdline(lab: Lab) -> str:
    return lab.ssh(HOST, "cat /proc/cmdline").stdout


def tryboot(lab: Lab, tryboot_txt: str, files: dict[str, str] | None = None) -> None:
    """Write tryboot.txt (and files) on the boot partition, then reboot '0 tryboot' and wait."""
    script = [f"cat > /boot/firmware/tryboot.txt <<'EOF'\n{tryboot_txt}\nEOF"]
    for name, text in (files or {}).items():
        script += [f"mkdir -p $(dirname /boot/firmware/{name})", f"cat > /boot/firmware/{name} <<'EOF'\n{text}\nEOF"]
    script.append("sync")
    lab.ssh(HOST, "\n".join(script))
    before = lab.ssh(HOST, "cat /proc/sys/kernel/random/boot_id").stdout
    # Straight from the SSH session, as Lab.reboot does (the session may drop before ssh returns); run from a
    # systemd-run transient unit, systemctl took 20-25 s more to start the shutdown.
    lab.ssh(HOST, "systemctl reboot '0 tryboot'", check=False, timeout=30)
    lab.wait_reboot(HOST, before)


def test_sim_pi_boots_from_its_boot_partition(pi):
    listing = pi.ssh(HOST, "findmnt -no FSTYPE /boot/firmware; ls /boot/firmware /boot/firmware/overlays").stdout
    assert listing.splitlines()[0] == "vfat"
    for name in ("config.txt", "cmdline.txt", "kernel8.img", "initramfs8", "bcm2711-rpi-4-b.dtb", "README"):
        assert name in listing
    assert "boot 1: restoring the saved state" in firmware_log(pi)


def test_tryboot_is_one_shot(pi):
    stock = cmdline(pi).strip()
    tryboot(
        pi,
        "[all]\nkernel=kernel8.img\ninitramfs initramfs8 followkernel\ncmdline=cmdline-try.txt",
        {"cmdline-try.txt": stock + " labkit.tryboot=1"},
    )
    assert "labkit.tryboot=1" in cmdline(pi)
    assert "tryboot tryboot.txt: kernel=kernel8.img" in firmware_log(pi)
    pi.reboot(HOST)  # an ordinary reboot: the firmware reads config.txt again
    assert cmdline(pi).strip() == stock


def test_tryboot_of_a_kernel_that_cannot_boot_falls_back(pi):
    stock = cmdline(pi).strip()
    # os_prefix applies to the kernel and cmdline.txt alike; only the kernel is bad here.
    tryboot(
        pi,
        "[all]\nos_prefix=broken/\nkernel=kernel8.img",
        {"broken/kernel8.img": "not a kernel", "broken/cmdline.txt": stock},
    )
    assert cmdline(pi).strip() == stock
    log = firmware_log(pi)
    assert "tryboot tryboot.txt: kernel=broken/kernel8.img" in log, log
    assert "resetting" in log


def test_tryboot_naming_a_missing_kernel_falls_back(pi):
    stock = cmdline(pi).strip()
    tryboot(pi, "[all]\nkernel=no-such-kernel.img")
    assert cmdline(pi).strip() == stock
    assert "tryboot failed: tryboot.txt names kernel no-such-kernel.img" in firmware_log(pi)
