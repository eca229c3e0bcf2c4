"""simlab's uefi firmware: OVMF boots a real GRUB EFI from the guest's disk, and grub-reboot chooses
the next boot once (the trial boot kernel roles rely on), falling back to the default after it.

A uefi guest of its own (not the session lab's), so its reboots disturb no other test.
"""

import shutil
from pathlib import Path

import pytest
import yaml
from simlab.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
HOST = "ue-1"
TRIAL_MARKER = "labkit.trial=1"
# Two entries beside Debian's: the running kernel with a marker on its command line, and one that
# panics (no initramfs, so no virtio/ext4 modules: it cannot mount its root) and resets 5 s later.
CUSTOM_ENTRIES = r"""
set -e
release=$(uname -r)
uuid=$(findmnt -no UUID /)
cat > /etc/grub.d/40_custom <<EOF
#!/bin/sh
exec tail -n +3 \$0
menuentry 'labkit trial' --id labkit-trial {
  insmod part_gpt
  insmod ext2
  search --no-floppy --fs-uuid --set=root $uuid
  linux /boot/vmlinuz-$release root=UUID=$uuid ro console=ttyS0,115200 net.ifnames=0 panic=-1 TRIAL_MARKER
  initrd /boot/initrd.img-$release
}
menuentry 'labkit broken' --id labkit-broken {
  insmod part_gpt
  insmod ext2
  search --no-floppy --fs-uuid --set=root $uuid
  linux /boot/vmlinuz-$release root=UUID=$uuid ro console=ttyS0,115200 panic=5
}
EOF
update-grub 2>&1
""".replace("TRIAL_MARKER", TRIAL_MARKER)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("uefi") / "inventory"
    shutil.copytree(ROOT / "inventories" / "sim" / "group_vars", directory / "group_vars")
    hosts = {HOST: {"ansible_port": 2291, "lab_address": "10.213.9.1", "simlab_firmware": "uefi"}}
    (directory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"dcpim_hosts": {"hosts": hosts}}}}))
    lab = Lab(directory)
    lab.up()
    yield lab
    lab.down()


@pytest.fixture(scope="module")
def custom_entries(lab):
    lab.ssh(HOST, CUSTOM_ENTRIES)


def console(lab: Lab) -> str:
    return (lab.directory / HOST / "console.log").read_bytes().decode(errors="replace")


def cmdline(lab: Lab) -> str:
    return lab.ssh(HOST, "cat /proc/cmdline").stdout


def next_entry(lab: Lab) -> str:
    env = lab.ssh(HOST, "grub-editenv /boot/grub/grubenv list").stdout
    return next((line.split("=", 1)[1] for line in env.splitlines() if line.startswith("next_entry=")), "")


def test_guest_boots_through_ovmf_and_grub_from_its_own_disk(lab):
    out = lab.ssh(
        HOST,
        "test -d /sys/firmware/efi && echo efi; findmnt -no FSTYPE,SOURCE /boot/efi; findmnt -no SOURCE /; "
        "ls /boot/efi/EFI/BOOT; test -s /boot/grub/grubenv && echo grubenv; "
        "grep -c '^### BEGIN /etc/grub.d/10_linux' /boot/grub/grub.cfg",
    ).stdout.split()
    assert out == ["efi", "vfat", "/dev/vda1", "/dev/vda2", "BOOTX64.EFI", "grubenv", "1"]
    assert "console=ttyS0,115200" in cmdline(lab) and "net.ifnames=0" in cmdline(lab)
    assert lab.ssh(HOST, "ip -o link show eth1").returncode == 0


def test_grub_reboot_is_one_shot_and_a_panicking_trial_falls_back(lab, custom_entries):
    # Two trial boots, three boots in all (the reboots under TCG are what this test spends its time on).
    assert TRIAL_MARKER not in cmdline(lab)
    lab.ssh(HOST, "grub-reboot labkit-trial")
    assert next_entry(lab) == "labkit-trial"
    lab.reboot(HOST)
    assert TRIAL_MARKER in cmdline(lab)
    assert next_entry(lab) == ""  # GRUB cleared it in grubenv before it booted the entry
    text = console(lab)
    assert "BdsDxe: starting" in text and "Welcome to GRUB!" in text  # OVMF, then GRUB, on a plain reset
    grub_runs = text.count("Welcome to GRUB!")

    # The next trial panics and resets: what boots then is the default, not it and not the last trial.
    lab.ssh(HOST, "grub-reboot labkit-broken")
    lab.reboot(HOST)
    assert TRIAL_MARKER not in cmdline(lab) and "panic=5" not in cmdline(lab)
    assert lab.ssh(HOST, "uname -r").stdout.strip() == lab.image_for("uefi").kernel_release
    text = console(lab)
    assert "Kernel panic" in text
    assert text.count("Welcome to GRUB!") == grub_runs + 2  # the broken boot, then the default one
    assert next_entry(lab) == ""
