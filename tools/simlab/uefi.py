"""The `uefi` guest firmware: OVMF boots GRUB EFI from the guest's own disk, GRUB boots the kernel.

A uefi guest's disk has a GPT with an EFI system partition (FAT, `EFI/BOOT/BOOTX64.EFI`, mounted
on /boot/efi) and the ext4 root (`/boot/grub/grub.cfg` and `grubenv`, the files `update-grub`,
`grub-reboot` and `grub-set-default` write and GRUB reads at every boot). The disk is assembled from
files, without loop devices: `mkfs.vfat` + `mcopy` for the ESP, `mkfs.ext4 -d` for the root,
`sfdisk` on the image file, `dd` into the partition offsets. A reboot is an ordinary QEMU reset
that goes through OVMF and GRUB again; the EFI variables live in a per-guest copy of OVMF_VARS.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from simlab import tools
from simlab.errors import SimlabError

OVMF_DIR = Path("/usr/share/OVMF")
OVMF_CODE = OVMF_DIR / "OVMF_CODE_4M.fd"
OVMF_VARS = OVMF_DIR / "OVMF_VARS_4M.fd"
# The guest image's extra packages: GRUB's EFI modules and mkimage, and update-grub/grub-reboot
# (grub2-common also installs the kernel hooks that run update-grub when a kernel is installed).
PACKAGES = ("grub-efi-amd64-bin", "grub2-common")
SECTOR = 512
ALIGN = 2048  # sectors: partitions start on 1 MiB boundaries
GPT_BACKUP_SECTORS = 33  # the backup GPT header and its partition entries at the end of the disk
ESP_MIB = 128
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
ROOT_DEVICE = "/dev/vda2"
# Kernel options GRUB adds to every Debian entry (update-grub adds root=UUID=... ro itself).
KERNEL_OPTIONS = "console=ttyS0,115200 net.ifnames=0 mitigations=off panic=-1"
# Built into BOOTX64.EFI; everything else GRUB loads from /boot/grub/x86_64-efi on the root.
# fmt: off
GRUB_MODULES = (
    "part_gpt", "part_msdos", "fat", "ext2", "search", "search_fs_uuid", "normal", "configfile",
    "linux", "echo", "test", "loadenv", "gzio", "xzio", "boot", "reboot", "halt", "sleep", "serial",
    "terminal", "efi_gop",
)
# fmt: on


@dataclass(frozen=True)
class Partition:
    start: int  # sectors
    size: int  # sectors

    @property
    def offset(self) -> int:
        return self.start * SECTOR

    @property
    def bytes(self) -> int:
        return self.size * SECTOR


def layout(disk_bytes: int, esp_mib: int = ESP_MIB) -> tuple[Partition, Partition]:
    """The ESP at 1 MiB, then the root partition up to the last whole MiB before the backup GPT."""
    if disk_bytes % SECTOR:
        raise SimlabError(f"disk size {disk_bytes} is not a multiple of {SECTOR} bytes")
    esp = Partition(ALIGN, esp_mib * ALIGN)
    root_start = esp.start + esp.size
    root_size = (disk_bytes // SECTOR - GPT_BACKUP_SECTORS - root_start) // ALIGN * ALIGN
    if root_size <= 0:
        raise SimlabError(f"disk size {disk_bytes} leaves no room for a root partition after a {esp_mib} MiB ESP")
    return esp, Partition(root_start, root_size)


def sfdisk_script(esp: Partition, root: Partition) -> str:
    return (
        "label: gpt\nunit: sectors\n\n"
        f"start={esp.start}, size={esp.size}, type={ESP_TYPE}, name=esp\n"
        f"start={root.start}, size={root.size}, type={LINUX_TYPE}, name=root\n"
    )


def size_bytes(size: str) -> int:
    """'8G', '512M', '4096' -> bytes (the units mkfs.ext4 and qemu-img accept)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if size and size[-1].upper() in units:
        return int(size[:-1]) * units[size[-1].upper()]
    return int(size)


def fat_serial(volume_id: str) -> str:
    """mkfs.vfat's -i volume id ('1a2b3c4d') as fstab and blkid spell it ('1A2B-3C4D')."""
    return f"{volume_id[:4]}-{volume_id[4:]}".upper()


def early_config(root_uuid: str) -> str:
    """The config built into BOOTX64.EFI: find the root file system and read its /boot/grub/grub.cfg."""
    return (
        f"search --no-floppy --fs-uuid --set=root {root_uuid}\n"
        "set prefix=($root)/boot/grub\n"
        'echo "labkit: GRUB EFI, reading $prefix/grub.cfg"\n'
        "configfile $prefix/grub.cfg\n"
    )


def grub_defaults() -> str:
    """/etc/default/grub: saved default (for grub-set-default), serial-friendly, a short menu."""
    return (
        "GRUB_DEFAULT=saved\n"
        "GRUB_TIMEOUT=1\n"
        "GRUB_TIMEOUT_STYLE=menu\n"
        'GRUB_DISTRIBUTOR="Debian"\n'
        'GRUB_CMDLINE_LINUX_DEFAULT=""\n'
        f'GRUB_CMDLINE_LINUX="{KERNEL_OPTIONS}"\n'
        "GRUB_TERMINAL=console\n"
        "GRUB_DISABLE_OS_PROBER=true\n"
        "GRUB_DISABLE_RECOVERY=true\n"
    )


def bootstrap_config(root_uuid: str) -> str:
    """A grub.cfg for the very first boot; the template guest replaces it with update-grub's own."""
    return (
        "set timeout=1\n"
        "menuentry 'Debian GNU/Linux (labkit bootstrap)' {\n"
        "  insmod part_gpt\n  insmod ext2\n"
        f"  search --no-floppy --fs-uuid --set=root {root_uuid}\n"
        f"  linux /vmlinuz root=UUID={root_uuid} ro {KERNEL_OPTIONS}\n"
        "  initrd /initrd.img\n"
        "}\n"
    )


def fstab(root_uuid: str, esp_serial: str) -> str:
    return (
        f"UUID={root_uuid} / ext4 defaults,noatime 0 1\n"
        f"UUID={esp_serial} /boot/efi vfat defaults,nofail,umask=0077 0 2\n"
    )


def customize_lines(root_uuid: str, esp_serial: str) -> list[str]:
    """Shell lines (mmdebstrap customize hook, root in $R) that install GRUB EFI as grub-install would."""

    def write(path: str, text: str) -> str:
        return f"cat > \"$R{path}\" <<'LABKIT_EOF'\n{text}LABKIT_EOF"

    return [
        write("/etc/fstab", fstab(root_uuid, esp_serial)),
        write("/etc/default/grub", grub_defaults()),
        'mkdir -p "$R/boot/efi/EFI/BOOT" "$R/boot/grub"',
        'cp -r "$R/usr/lib/grub/x86_64-efi" "$R/boot/grub/"',
        write("/boot/grub/early.cfg", early_config(root_uuid)),
        write("/boot/grub/grub.cfg", bootstrap_config(root_uuid)),
        'chroot "$R" grub-editenv /boot/grub/grubenv create',
        'chroot "$R" grub-mkimage -O x86_64-efi -o /boot/efi/EFI/BOOT/BOOTX64.EFI -c /boot/grub/early.cfg '
        "-p /boot/grub " + " ".join(GRUB_MODULES),
    ]


def require_ovmf() -> None:
    missing = [str(p) for p in (OVMF_CODE, OVMF_VARS) if not p.exists()]
    if missing:
        raise SimlabError(
            f"uefi guests need OVMF, but {missing} do not exist: install it with `apt-get install ovmf` "
            "(or run ./labkit setup)"
        )


def qemu_argv(efi_vars: Path) -> list[str]:
    """The two pflash drives: OVMF's code (read-only, shared) and this guest's own variable store."""
    # fmt: off
    return [
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,unit=1,file={efi_vars}",
    ]
    # fmt: on


def assemble_disk(root_tree: Path, directory: Path, disk_size: str, root_uuid: str, esp_id: str) -> Path:
    """Pack root_tree (its /boot/efi becomes the ESP) into directory/disk.raw with a GPT; no loop devices."""
    tools.require("sfdisk", "mkfs.vfat", "mcopy", "mkfs.ext4")
    esp, root = layout(size_bytes(disk_size))
    esp_img, root_img, disk = directory / "esp.img", directory / "root.img", directory / "disk.raw"
    tools.run(
        ["mkfs.vfat", "-C", "-F", "32", "-n", "ESP", "-i", esp_id, str(esp_img), str(esp.bytes // 1024)],
        what="mkfs.vfat (the EFI system partition)",
    )
    efi_tree = root_tree / "boot" / "efi"
    for entry in sorted(efi_tree.iterdir()):
        tools.run(["mcopy", "-s", "-i", str(esp_img), str(entry), "::/"], what=f"mcopy {entry.name} to the ESP")
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()  # /boot/efi stays as an empty mount point
    tools.run(
        [
            "mkfs.ext4", "-q", "-F", "-L", "labkit-root", "-U", root_uuid, "-d", str(root_tree),
            str(root_img), f"{root.bytes // 1024}k",
        ],
        what="mkfs.ext4 (packing the guest root partition)",
    )  # fmt: skip
    with open(disk, "wb") as f:
        f.truncate(size_bytes(disk_size))
    tools.run(
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(disk)],
        what="sfdisk (the guest disk's partition table)",
        input=sfdisk_script(esp, root),
    )
    for part, img in ((esp, esp_img), (root, root_img)):
        tools.run(
            ["dd", f"if={img}", f"of={disk}", "bs=1M", f"seek={part.offset // (1 << 20)}", "conv=notrunc,sparse"],
            what=f"dd {img.name} into the guest disk",
        )
        img.unlink()
    return disk
