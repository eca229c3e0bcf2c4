"""Build (once) and cache the Debian bookworm guest image every sim guest boots from.

The image holds Debian's kernel with its matching headers and build tools (so out-of-tree
modules build inside a guest), sshd with simlab's key, python3 (with a bytecode cache for zip-imported
modules, guest_files/labkit_zipcode_cache.py) and systemd-networkd. It is
cached under ~/.cache/labkit/images/<key>, where key hashes every input of the build; a
directory without its manifest is a build that was interrupted and is rebuilt. Packages come from
the Debian mirror apt uses on this machine, or LABKIT_DEBIAN_MIRROR (see apt_sources.py).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from simlab import apt_sources, cachelock, paths, tools, uefi
from simlab.errors import SimlabError

RECIPE_VERSION = 4  # bump when the build steps below change
SUITE = "bookworm"
# The cache key names the archive an image is built from, not the mirror that serves it: every
# mirror of Debian's archive gives the same image, so a change of mirror keeps the cached image.
# Nothing is fetched from this URL; the mirror comes from apt_sources.debian_mirror().
ARCHIVE = "http://deb.debian.org/debian"
DISK_SIZE = "8G"
# fmt: off
PACKAGES = (
    # boot and management
    "linux-image-amd64", "linux-headers-amd64", "initramfs-tools", "systemd-sysv", "udev", "dbus",
    "openssh-server", "python3", "sudo", "kmod", "procps", "iproute2", "iputils-ping", "ethtool",
    "netcat-openbsd", "less", "zstd",
    # building out-of-tree modules and small userlands inside a guest (guests have no network)
    "build-essential", "git", "pkg-config", "autoconf", "automake", "libtool", "libmnl-dev", "bc",
)
# fmt: on
# Kernel command line; net.ifnames=0 makes the NICs eth0 (management) and eth1 (lab network).
KERNEL_APPEND = "root=/dev/vda rw console=ttyS0,115200 net.ifnames=0 mitigations=off panic=-1"

# The initramfs holds only what finds the root disk: with Debian's MODULES=most, update-initramfs takes
# about 7 minutes in a TCG guest (37 MB); with this list well under a minute (about 7 MB), and every
# boot unpacks less. zstd (installed) replaces the gzip fallback.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "ext4", "vfat", "nls_cp437", "nls_ascii")
_NETWORKD = {
    "10-mgmt.network": "[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
    "20-lab.network": "[Match]\nName=eth1\n\n[Network]\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
}
# Units that only slow a test guest's boot down.
# fmt: off
_MASKED_UNITS = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer", "man-db.timer",
    "systemd-networkd-wait-online.service", "dpkg-db-backup.timer", "e2scrub_reap.service",
)
# fmt: on
# Files copied into the image's python3 dist-packages: a bytecode cache for zip-imported modules, which
# makes every Ansible task in a TCG guest about 0.7 s shorter (see the file).
GUEST_FILES = Path(__file__).resolve().parent / "guest_files"
_PYTHON_FILES = ("labkit_zipcode_cache.py", "labkit-zipcode-cache.pth")


@dataclass(frozen=True)
class Image:
    directory: Path
    kernel_release: str

    @property
    def disk(self) -> Path:
        return self.directory / "disk.qcow2"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"


@cachelock.locked("ssh-key")
def ensure_ssh_key() -> Path:
    key = paths.ssh_key()
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        tools.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "labkit-simlab", "-f", str(key)])
    return key


# Image variants: "" is the image direct and rpi guests boot; "uefi" adds GRUB EFI on a partitioned disk.
VARIANTS = ("", "uefi")


def image_key(pubkey: str, variant: str = "") -> str:
    recipe = {
        "version": RECIPE_VERSION,
        "suite": SUITE,
        "mirror": ARCHIVE,
        "packages": PACKAGES,
        "networkd": _NETWORKD,
        "masked": _MASKED_UNITS,
        "initramfs_modules": INITRAMFS_MODULES,
        "python_files": {name: hashlib.sha256((GUEST_FILES / name).read_bytes()).hexdigest() for name in _PYTHON_FILES},
        "disk": DISK_SIZE,
        "pubkey": pubkey.strip(),
    }
    if variant == "uefi":  # only a variant adds keys, so the default image keeps its cache key
        recipe["uefi"] = {
            "packages": uefi.PACKAGES,
            "grub_modules": uefi.GRUB_MODULES,
            "esp_mib": uefi.ESP_MIB,
            "lines": uefi.customize_lines("ROOT-UUID", "ESP-ID"),
        }
    elif variant:
        raise SimlabError(f"unknown image variant {variant!r}; choose one of {VARIANTS}")
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


@cachelock.locked(lambda log=None, variant="": f"image-{variant or 'default'}")
def ensure_image(log=print, variant: str = "") -> Image:
    """Return the cached image, building it first when its inputs changed or it is incomplete."""
    tools.require("mmdebstrap", "qemu-img", "mkfs.ext4", "ssh-keygen")
    if variant == "uefi":
        tools.require("sfdisk", "mkfs.vfat", "mcopy")
        uefi.require_ovmf()
    key = ensure_ssh_key()
    pubkey = key.with_suffix(".pub").read_text()
    directory = paths.images_dir() / image_key(pubkey, variant)
    manifest = directory / "manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        image = Image(directory, data["kernel_release"])
        missing = [p.name for p in (image.disk, image.kernel, image.initrd) if not p.exists()]
        if not missing:
            return image
        log(f"image cache {directory} lacks {missing}: rebuilding it")
    if directory.exists():
        log(f"image cache {directory} is incomplete (an interrupted build): rebuilding it")
        shutil.rmtree(directory)
    return _build(directory, pubkey, log, variant)


def _customize_script(pubkey: str, extra: list[str] | None = None) -> str:
    """Shell run by mmdebstrap with the new root as $1, before the image is packed."""
    lines = [
        "set -e",
        'R="$1"',
        'install -d -m 700 "$R/root/.ssh"',
        f"printf '%s\\n' '{pubkey.strip()}' > \"$R/root/.ssh/authorized_keys\"",
        'chmod 600 "$R/root/.ssh/authorized_keys"',
        "printf 'UseDNS no\\nPermitRootLogin prohibit-password\\n' > \"$R/etc/ssh/sshd_config.d/labkit.conf\"",
        "printf '/dev/vda / ext4 defaults,noatime 0 1\\n' > \"$R/etc/fstab\"",
        'echo labkit-guest > "$R/etc/hostname"',
        "printf '127.0.0.1 localhost\\n' > \"$R/etc/hosts\"",
        'chroot "$R" systemctl enable systemd-networkd',
    ]
    for name, text in _NETWORKD.items():
        escaped = text.replace("\n", "\\n")
        lines.append(f"printf '{escaped}' > \"$R/etc/systemd/network/{name}\"")
    lines.append('chroot "$R" systemctl mask ' + " ".join(_MASKED_UNITS))
    lines.append("printf 'MODULES=list\\n' > \"$R/etc/initramfs-tools/conf.d/labkit.conf\"")
    lines.append(f"printf '%s\\n' {' '.join(INITRAMFS_MODULES)} >> \"$R/etc/initramfs-tools/modules\"")
    lines.append('chroot "$R" update-initramfs -u -k all')
    for name in _PYTHON_FILES:
        lines.append(f'install -m 644 "{GUEST_FILES / name}" "$R/usr/lib/python3/dist-packages/{name}"')
    return "\n".join([*lines, *(extra or [])])


def mirror() -> str:
    try:
        return apt_sources.debian_mirror(SUITE)
    except apt_sources.MirrorError as err:
        raise SimlabError(str(err)) from None


def _build(directory: Path, pubkey: str, log, variant: str = "") -> Image:
    started = time.monotonic()
    source = mirror()  # before mkdir: a missing mirror leaves no half-built directory behind
    directory.mkdir(parents=True)
    root = directory / "rootfs"
    what = f" ({variant} variant)" if variant else ""
    log(f"building the guest image{what} in {directory} (Debian {SUITE} from {source}; about 2-5 minutes, once)")
    packages, extra, manifest_extra = PACKAGES, None, {}
    if variant == "uefi":
        root_uuid, esp_id = str(uuid.uuid4()), secrets.token_hex(4)
        packages = (*PACKAGES, *uefi.PACKAGES)
        extra = uefi.customize_lines(root_uuid, uefi.fat_serial(esp_id))
        manifest_extra = {"variant": variant, "root_uuid": root_uuid, "esp_serial": uefi.fat_serial(esp_id)}
    hook = directory / "customize.sh"
    hook.write_text(_customize_script(pubkey, extra))
    tools.run(
        [
            "mmdebstrap",
            "--variant=minbase",
            "--mode=root",
            "--quiet",
            "--include=" + ",".join(packages),
            f'--customize-hook=sh {hook} "$1"',
            SUITE,
            str(root),
            source,
        ],
        what="mmdebstrap (building the guest root filesystem)",
        timeout=1800,
    )
    releases = sorted(p.name for p in (root / "lib" / "modules").iterdir())
    if len(releases) != 1:
        raise SimlabError(f"guest image has kernels {releases}, expected exactly one: rerun simlab up")
    release = releases[0]
    shutil.copy2(root / "boot" / f"vmlinuz-{release}", directory / "vmlinuz")
    shutil.copy2(root / "boot" / f"initrd.img-{release}", directory / "initrd.img")
    raw = directory / "disk.raw"
    if variant == "uefi":
        uefi.assemble_disk(root, directory, DISK_SIZE, manifest_extra["root_uuid"], esp_id)
    else:
        tools.run(
            ["mkfs.ext4", "-q", "-F", "-L", "labkit-root", "-d", str(root), str(raw), DISK_SIZE],
            what="mkfs.ext4 (packing the guest root filesystem)",
        )
    tools.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(directory / "disk.qcow2")], what="qemu-img convert")
    raw.unlink()
    shutil.rmtree(root)
    manifest = {
        "kernel_release": release,
        "suite": SUITE,
        "packages": list(packages),
        **manifest_extra,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.monotonic() - started, 1),
    }
    tmp = directory / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.rename(directory / "manifest.json")  # written last: its presence means the build finished
    log(f"guest image ready: kernel {release}, built in {manifest['build_seconds']} s")
    return Image(directory, release)


if __name__ == "__main__":  # python -m simlab.image [uefi]: build the image (variant) only
    print(ensure_image(log=lambda m: print(m, file=sys.stderr), variant=sys.argv[1] if len(sys.argv) > 1 else ""))
