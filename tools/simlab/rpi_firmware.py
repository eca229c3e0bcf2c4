"""The Raspberry Pi boot firmware, emulated for sim guests of the `rpi` group.

QEMU has no Pi firmware, so simlab plays its documented part. Each sim Pi has a FAT boot
partition (its second disk, mounted at /boot/firmware in the guest) and is run by a supervisor
process that, before every boot, does what the firmware does:

- reads `config.txt` — or `tryboot.txt` when the previous reboot asked for a one-shot tryboot
  (`reboot '0 tryboot'`, seen as the kernel's "Restarting system with command '0 tryboot'");
- applies the `[all]`, `[pi4]` and `[tryboot]` sections, `os_prefix`, `kernel`, `initramfs
  FILE followkernel` and `cmdline` (default `cmdline.txt`);
- loads that kernel, initramfs and command line from the boot partition and boots them.

The tryboot flag is one-shot: the boot after a tryboot uses `config.txt` again. A tryboot whose
kernel cannot be loaded, panics, or shows no login prompt within the tryboot timeout is reset (the
watchdog a real Pi relies on), so the next boot is the previous, committed configuration.

Run as: python -m simlab.rpi_firmware GUEST.json
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from simlab import cachelock, tools
from simlab.errors import SimlabError
from simlab.guest import GuestRun
from simlab.image import Image

BOOT_SIZE = "256M"
STOCK_KERNEL = "kernel8.img"
STOCK_INITRAMFS = "initramfs8"
STOCK_DTBS = ("bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4.dtb")
TRYBOOT_LINE = re.compile(r"Restarting system with command '0 tryboot'")
RESTART_LINE = re.compile(r"reboot: Restarting system")
POWER_OFF_LINE = re.compile(r"reboot: (Power down|System halted)")
LOGIN_PROMPT = re.compile(r" login: ")


@dataclass(frozen=True)
class Boot:
    kernel: Path
    initrd: Path | None
    append: str
    source: str  # what the firmware read, for its log


def stock_config() -> str:
    return "\n".join(
        [
            "# Boot configuration of a sim Raspberry Pi 4 (written by simlab; the firmware reads it).",
            "[all]",
            "arm_64bit=1",
            f"kernel={STOCK_KERNEL}",
            f"initramfs {STOCK_INITRAMFS} followkernel",
            "",
        ]
    )


@cachelock.locked(lambda image_dir, *_: f"rpi-boot-{image_dir.name}")
def ensure_stock_boot_image(image_dir: Path, kernel: Path, initrd: Path, cmdline: str) -> Path:
    """The boot partition a fresh sim Pi has: stock kernel, initramfs, dtbs, overlays, config.txt."""
    target = image_dir / "rpi-boot.img"
    if target.exists():
        return target
    tools.require("mkfs.vfat", "mcopy", "mmd")
    staging = image_dir / "rpi-boot.staging"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "overlays").mkdir(parents=True)
    shutil.copy2(kernel, staging / STOCK_KERNEL)
    shutil.copy2(initrd, staging / STOCK_INITRAMFS)
    (staging / "cmdline.txt").write_text(cmdline + "\n")
    (staging / "config.txt").write_text(stock_config())
    # Stand-ins for the stock device trees: the sim kernel ignores them, the tests check that an
    # install never touches them.
    for dtb in STOCK_DTBS:
        (staging / dtb).write_bytes(b"\xd0\x0d\xfe\xed" + f"stock {dtb}".encode())
    (staging / "overlays" / "README").write_text("Stock overlays of the sim Pi.\n")
    (staging / "overlays" / "disable-bt.dtbo").write_bytes(b"\xd0\x0d\xfe\xedstock overlay")
    tmp = image_dir / "rpi-boot.img.tmp"
    tmp.unlink(missing_ok=True)
    tools.run(["truncate", "-s", BOOT_SIZE, str(tmp)])
    tools.run(["mkfs.vfat", "-F", "32", "-n", "BOOT", str(tmp)], what="mkfs.vfat (sim Pi boot partition)")
    tools.run(["mmd", "-i", str(tmp), "::overlays"], what="mmd")
    for path in sorted(staging.rglob("*")):
        if path.is_file():
            rel = path.relative_to(staging).as_posix()
            tools.run(["mcopy", "-i", str(tmp), str(path), f"::{rel}"], what=f"mcopy {rel}")
    shutil.rmtree(staging)
    tmp.rename(target)
    return target


def read_boot_file(boot_img: Path, name: str) -> bytes | None:
    proc = subprocess.run(
        ["mcopy", "-n", "-i", str(boot_img), f"::{name.lstrip('/')}", "-"], capture_output=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else None


def parse_config(text: str, tryboot: bool) -> dict:
    """The settings a Pi 4 applies from a config.txt: sections filter, later lines win."""
    settings: dict = {}
    active = True
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            active = section in ("all", "pi4") or (section == "tryboot" and tryboot)
            continue
        if not active:
            continue
        if line.startswith("initramfs ") or line.startswith("initramfs\t"):
            settings["initramfs"] = line.split()[1]
        elif "=" in line:
            key, value = line.split("=", 1)
            settings[key.strip().lower()] = value.strip()
    return settings


def select_boot(boot_img: Path, tryboot: bool, workdir: Path) -> Boot:
    """What the firmware boots next; raises SimlabError when the files it names are missing."""
    config_name = "tryboot.txt" if tryboot else "config.txt"
    text = read_boot_file(boot_img, config_name)
    if text is None and tryboot:
        config_name, text = "config.txt", read_boot_file(boot_img, "config.txt")
    if text is None:
        raise SimlabError(f"no {config_name} on the boot partition")
    settings = parse_config(text.decode(errors="replace"), tryboot)
    prefix = settings.get("os_prefix", "")
    default_kernel = STOCK_KERNEL if settings.get("arm_64bit", "1") == "1" else "kernel7l.img"
    kernel_name = prefix + settings.get("kernel", default_kernel)
    kernel = read_boot_file(boot_img, kernel_name)
    if not kernel:
        raise SimlabError(f"{config_name} names kernel {kernel_name}, which is not on the boot partition")
    workdir.mkdir(parents=True, exist_ok=True)
    kernel_path = workdir / "boot-kernel"
    kernel_path.write_bytes(kernel)
    initrd_path = None
    if "initramfs" in settings:
        initrd_name = prefix + settings["initramfs"]
        initrd = read_boot_file(boot_img, initrd_name)
        if initrd is None:
            raise SimlabError(f"{config_name} names initramfs {initrd_name}, which is not on the boot partition")
        initrd_path = workdir / "boot-initrd"
        initrd_path.write_bytes(initrd)
    cmdline_name = prefix + settings.get("cmdline", "cmdline.txt")
    cmdline = read_boot_file(boot_img, cmdline_name)
    if cmdline is None:
        raise SimlabError(f"{config_name} names cmdline {cmdline_name}, which is not on the boot partition")
    source = f"{config_name}: kernel={kernel_name} initramfs={initrd_path and prefix + settings['initramfs']}"
    return Boot(kernel_path, initrd_path, cmdline.decode().strip(), source + f" cmdline={cmdline_name}")


class Firmware:
    """The supervisor of one sim Pi: boot, watch the reboot, choose the next boot, repeat."""

    def __init__(self, spec: dict):
        guest = dict(spec["guest"], directory=Path(spec["guest"]["directory"]))
        guest["switch_socket"] = Path(guest["switch_socket"]) if guest.get("switch_socket") else None
        self.run = GuestRun(**guest)
        self.image = Image(Path(spec["image_dir"]), spec["kernel_release"])
        self.incoming = Path(spec["incoming"]) if spec.get("incoming") else None
        self.tryboot_timeout = float(spec.get("tryboot_timeout", 240))
        self.log_file = self.run.directory / "firmware.log"
        self.qemu: subprocess.Popen | None = None
        self.stopping = False

    def log(self, message: str) -> None:
        with open(self.log_file, "a") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {message}\n")

    def stop(self, *_args) -> None:
        self.stopping = True
        if self.qemu and self.qemu.poll() is None:
            self.qemu.terminate()

    def serve(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        tryboot = False
        count = 0
        while not self.stopping:
            count += 1
            offset = self.run.console_log.stat().st_size if self.run.console_log.exists() else 0
            if self.incoming:
                boot = None
                self.log(f"boot {count}: restoring the saved state")
            else:
                try:
                    boot = select_boot(self.run.boot_disk, tryboot, self.run.directory)
                except SimlabError as exc:
                    if not tryboot:
                        self.log(f"boot {count}: cannot boot: {exc}; halting as a Pi would")
                        return 1
                    self.log(f"boot {count}: tryboot failed: {exc}; resetting to the normal boot")
                    tryboot = False
                    continue
                self.log(f"boot {count}: {'tryboot ' if tryboot else ''}{boot.source}")
            argv = self.run.qemu_argv(self.image, incoming=self.incoming, boot=boot, daemonize=False)
            self.incoming = None
            with open(self.run.directory / "qemu.log", "ab") as qemu_log:
                self.qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=qemu_log, stderr=qemu_log)
            if self.stopping:  # SIGTERM came while this boot was being prepared
                self.stop()
            watched = self._watch(tryboot, offset)
            output = _console_since(self.run.console_log, offset)
            if self.stopping:
                break
            if watched == "watchdog":
                self.log(f"boot {count}: no login prompt within {self.tryboot_timeout:.0f} s: watchdog reset")
                tryboot = False
            elif TRYBOOT_LINE.search(output):
                self.log(f"boot {count}: reboot with tryboot requested")
                tryboot = True
            elif RESTART_LINE.search(output):
                self.log(f"boot {count}: reboot")
                tryboot = False
            elif POWER_OFF_LINE.search(output):
                self.log(f"boot {count}: powered off")
                return 0
            else:
                self.log(f"boot {count}: the guest stopped (QEMU rc={self.qemu.returncode}); resetting")
                tryboot = False
        return 0

    def _watch(self, tryboot: bool, offset: int) -> str:
        """Wait for QEMU to exit; in a tryboot, reset it when no login prompt comes in time."""
        started = time.monotonic()
        seen_login = not tryboot
        while self.qemu.poll() is None:
            if not seen_login:
                seen_login = bool(LOGIN_PROMPT.search(_console_since(self.run.console_log, offset)))
                if not seen_login and time.monotonic() - started > self.tryboot_timeout:
                    self.qemu.kill()
                    self.qemu.wait()
                    return "watchdog"
            time.sleep(0.5)
        return "exited"


def _console_since(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as console:
            console.seek(offset)
            return console.read().decode(errors="replace")
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(Firmware(json.loads(Path(sys.argv[1]).read_text())).serve())
