"""simlab's uefi firmware: the disk layout, GRUB's files, QEMU's command line, the inventory field."""

import subprocess
from pathlib import Path

import pytest
from simlab import image, inventory, uefi
from simlab.errors import SimlabError
from simlab.guest import GuestRun
from simlab.image import Image

GIB = 1 << 30
MIB = 1 << 20


def test_layout_aligns_partitions_and_leaves_room_for_the_backup_gpt():
    esp, root = uefi.layout(8 * GIB)
    assert (esp.offset, esp.bytes) == (1 * MIB, uefi.ESP_MIB * MIB)
    assert root.offset == esp.offset + esp.bytes
    assert root.start % uefi.ALIGN == 0 and root.size % uefi.ALIGN == 0
    end = root.start + root.size
    assert end <= 8 * GIB // uefi.SECTOR - uefi.GPT_BACKUP_SECTORS
    assert 8 * GIB // uefi.SECTOR - end < uefi.ALIGN + uefi.GPT_BACKUP_SECTORS  # nothing wasted but the tail


@pytest.mark.parametrize("size", [100 * MIB, 8 * GIB + 1])
def test_layout_refuses_disks_without_room_or_whole_sectors(size):
    with pytest.raises(SimlabError, match="disk size"):
        uefi.layout(size)


def test_size_bytes_reads_the_units_mkfs_takes():
    assert uefi.size_bytes("8G") == 8 * GIB
    assert uefi.size_bytes("512M") == 512 * MIB
    assert uefi.size_bytes("4096") == 4096


def test_sfdisk_script_makes_the_partition_table_it_describes(tmp_path):
    esp, root = uefi.layout(1 * GIB)
    disk = tmp_path / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(1 * GIB)
    subprocess.run(
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(disk)],
        input=uefi.sfdisk_script(esp, root),
        text=True,
        check=True,
        capture_output=True,
    )
    dump = subprocess.run(["sfdisk", "--dump", str(disk)], capture_output=True, text=True, check=True).stdout
    assert "label: gpt" in dump
    assert f"start=        {esp.start}, size=      {esp.size}, type={uefi.ESP_TYPE}" in dump
    assert f"start=      {root.start}, size=     {root.size}, type={uefi.LINUX_TYPE}" in dump


def test_fat_serial_is_spelled_as_blkid_does():
    assert uefi.fat_serial("1a2b3c4d") == "1A2B-3C4D"


def test_grub_reads_the_root_file_systems_config_and_boots_with_serial_console():
    early = uefi.early_config("1234-uuid")
    assert "search --no-floppy --fs-uuid --set=root 1234-uuid" in early
    assert "configfile $prefix/grub.cfg" in early
    defaults = uefi.grub_defaults()
    assert "GRUB_DEFAULT=saved\n" in defaults  # grub-set-default needs it
    assert "console=ttyS0,115200 net.ifnames=0" in defaults
    bootstrap = uefi.bootstrap_config("1234-uuid")
    assert "root=UUID=1234-uuid" in bootstrap and "console=ttyS0,115200" in bootstrap
    assert uefi.fstab("1234-uuid", "ABCD-0123").splitlines() == [
        "UUID=1234-uuid / ext4 defaults,noatime 0 1",
        "UUID=ABCD-0123 /boot/efi vfat defaults,nofail,umask=0077 0 2",
    ]


def test_customize_lines_install_grub_as_grub_install_would():
    script = "\n".join(uefi.customize_lines("1234-uuid", "ABCD-0123"))
    assert "grub-mkimage -O x86_64-efi -o /boot/efi/EFI/BOOT/BOOTX64.EFI" in script
    assert "grub-editenv /boot/grub/grubenv create" in script
    assert 'cp -r "$R/usr/lib/grub/x86_64-efi" "$R/boot/grub/"' in script


def test_the_uefi_variant_has_its_own_key_and_the_default_image_keeps_its_key():
    default = image.image_key("ssh-ed25519 AAAA test")
    assert image.image_key("ssh-ed25519 AAAA test", "") == default
    assert image.image_key("ssh-ed25519 AAAA test", "uefi") != default
    with pytest.raises(SimlabError, match="unknown image variant"):
        image.image_key("ssh-ed25519 AAAA test", "bios")


def _run(firmware: str) -> GuestRun:
    return GuestRun("g1", Path("/run/g1"), 2291, Path("/run/switch.sock"), "52:54:00:00:00:02", 1024, 2, firmware)


IMG = Image(Path("/img"), "6.1.0-test-amd64")


def test_uefi_guests_boot_ovmf_from_pflash_and_reboot_normally():
    argv = _run("uefi").qemu_argv(IMG)
    assert "-kernel" not in argv and "-no-reboot" not in argv
    assert f"if=pflash,format=raw,unit=0,readonly=on,file={uefi.OVMF_CODE}" in argv
    assert "if=pflash,format=raw,unit=1,file=/run/g1/efivars.fd" in argv
    assert "virtio-blk-pci,drive=root,addr=0x5,bootindex=0" in argv
    assert "virtio-net-pci,netdev=mgmt,mac=52:54:00:12:34:56,addr=0x3,romfile=" in argv


@pytest.mark.parametrize("firmware", ["", "rpi"])
def test_other_guests_keep_their_command_line(firmware):
    argv = _run(firmware).qemu_argv(IMG)
    assert argv[argv.index("-kernel") + 1] == "/img/vmlinuz"
    assert not any("pflash" in a or "bootindex" in a or "romfile" in a for a in argv)
    assert "virtio-blk-pci,drive=root,addr=0x5" in argv


def test_prepare_disks_copies_the_efi_variables(tmp_path):
    base, vars_src = tmp_path / "base.qcow2", tmp_path / "vars.fd"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "1G"], check=True)
    vars_src.write_bytes(b"\x01" * 4096)
    run = GuestRun("g1", tmp_path / "g1", 2291, None, "52:54:00:00:00:02", 1024, 2, "uefi")
    run.prepare_disks(base, restored=True, efi_vars=vars_src)
    assert run.efi_vars.read_bytes() == vars_src.read_bytes()
    assert run.disk.exists()


@pytest.mark.parametrize(("hv", "groups", "want"), [({}, ("dcpim_hosts",), ""), ({}, ("rpi",), "rpi")])
def test_firmware_defaults_stay_as_they_were(hv, groups, want):
    assert inventory._firmware("h", groups, hv) == want


def test_uefi_is_chosen_by_the_host_variable_and_typos_are_named():
    assert inventory._firmware("h", ("dcpim_hosts",), {"simlab_firmware": "uefi"}) == "uefi"
    with pytest.raises(SimlabError, match="h: simlab_firmware='efi'"):
        inventory._firmware("h", ("dcpim_hosts",), {"simlab_firmware": "efi"})
