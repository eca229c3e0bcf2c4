"""One QEMU guest: start it (cold, or restored from the saved template), reach it over SSH.

Every guest runs under TCG (the machine's /dev/kvm cannot run a stock kernel) with two NICs:
eth0 is user-mode networking restricted to SSH forwarded from 127.0.0.1:<port>, eth1 is the lab
network, a unix datagram socket to simlab's switch. Both are fixed PCI slots so a saved state
restores into any guest; what differs per host (name, lab address, MAC) is set after restore.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from simlab import paths, tools, uefi
from simlab.errors import SimlabError
from simlab.image import KERNEL_APPEND, Image
from simlab.qmp import Qmp

QEMU = "qemu-system-x86_64"
# fmt: off
SSH_OPTIONS = [
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=10",
]
# fmt: on


@dataclass
class GuestRun:
    """What simlab needs to drive one running guest."""

    name: str
    directory: Path  # absolute: QEMU daemonizes into /
    port: int
    switch_socket: Path | None
    mac: str
    memory_mb: int
    cpus: int
    firmware: str = ""  # "rpi": the emulated Pi firmware; "uefi": OVMF, then GRUB EFI from the root disk

    @property
    def disk(self) -> Path:
        return self.directory / "disk.qcow2"

    @property
    def boot_disk(self) -> Path:
        """The FAT boot partition of a sim Pi (its second disk, /boot/firmware in the guest)."""
        return self.directory / "boot.img"

    @property
    def efi_vars(self) -> Path:
        """A uefi guest's own copy of OVMF's variable store (its second pflash drive)."""
        return self.directory / "efivars.fd"

    @property
    def qmp_socket(self) -> Path:
        return self.directory / "qmp.sock"

    @property
    def pidfile(self) -> Path:
        return self.directory / "qemu.pid"

    @property
    def console_log(self) -> Path:
        return self.directory / "console.log"

    @property
    def lab_socket(self) -> Path:
        return self.directory / "lab.sock"

    def qemu_argv(self, image: Image, incoming: Path | None = None, boot=None, daemonize: bool = True) -> list[str]:
        """QEMU's command line; boot (kernel, initrd, append) defaults to the image's kernel."""
        # Without a switch (the template guest) frames go to a socket nobody binds: a loose cable.
        remote = self.switch_socket or self.directory / "no-switch.sock"
        lab_net = f"dgram,id=lab,local.type=unix,local.path={self.lab_socket},remote.type=unix,remote.path={remote}"
        # OVMF boots the root disk first and skips the NICs' iPXE option ROMs (no PXE attempts under TCG).
        boot_first, no_rom = (",bootindex=0", ",romfile=") if self.firmware == "uefi" else ("", "")
        # fmt: off
        argv = [
            QEMU,
            "-name", f"labkit-{self.name},process=labkit-{self.name}",
            "-machine", "q35", "-accel", "tcg,thread=multi,tb-size=256",
            "-cpu", "qemu64", "-smp", str(self.cpus), "-m", str(self.memory_mb),
            "-nodefaults", "-display", "none", "-no-user-config",
            "-chardev", f"file,id=console,path={self.console_log},append=on",
            "-serial", "chardev:console",
            # cache=unsafe: guest disks are throwaway overlays, and a guest flush must never wait on the
            # host's writeback (after a kernel build it can take minutes: hung tasks, a stuck reboot).
            "-drive", f"if=none,id=root,file={self.disk},format=qcow2,discard=unmap,cache=unsafe",
            "-device", f"virtio-blk-pci,drive=root,addr=0x5{boot_first}",
            "-netdev", f"user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-:22",
            "-device", f"virtio-net-pci,netdev=mgmt,mac=52:54:00:12:34:56,addr=0x3{no_rom}",
            "-netdev", lab_net,
            "-device", f"virtio-net-pci,netdev=lab,mac={self.mac},addr=0x4{no_rom}",
            "-device", "virtio-rng-pci,addr=0x6",
            "-qmp", f"unix:{self.qmp_socket},server=on,wait=off",
            "-pidfile", str(self.pidfile),
        ]
        # fmt: on
        if self.firmware == "uefi":
            # OVMF runs GRUB from the disk; a reboot is an ordinary reset that goes through both again.
            argv += uefi.qemu_argv(self.efi_vars)
        elif boot is None:
            argv += ["-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", KERNEL_APPEND]
        else:
            argv += ["-kernel", str(boot.kernel), "-append", boot.append]
            if boot.initrd:
                argv += ["-initrd", str(boot.initrd)]
        if self.firmware == "rpi":
            # The firmware (a supervisor process) chooses each boot, so a reboot ends this QEMU.
            argv += [
                "-drive",
                f"if=none,id=boot,file={self.boot_disk},format=raw,cache=unsafe",
                "-device",
                "virtio-blk-pci,drive=boot,addr=0x7",
                "-no-reboot",
            ]
        if daemonize:
            argv.append("-daemonize")
        if incoming:
            argv += ["-incoming", f"exec:cat {shlex.quote(str(incoming))}"]
        return argv

    def prepare_disks(
        self, base_disk: Path, restored: bool, boot_disk: Path | None = None, efi_vars: Path | None = None
    ) -> None:
        """This guest's copy-on-write root disk on base_disk (and its own copies of boot_disk, efi_vars)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in (self.disk, self.boot_disk, self.efi_vars, self.qmp_socket, self.lab_socket, self.pidfile):
            stale.unlink(missing_ok=True)
        if restored:
            # A restored guest continues the template's disk: copy its (small) overlay.
            tools.run(["cp", "--reflink=auto", str(base_disk), str(self.disk)], what="copying the template disk")
        else:
            tools.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base_disk), str(self.disk)],
                what="qemu-img create (guest overlay)",
            )
        if boot_disk:
            tools.run(["cp", "--sparse=always", str(boot_disk), str(self.boot_disk)], what="copying the boot partition")
        if efi_vars:
            shutil.copyfile(efi_vars, self.efi_vars)

    def start(
        self,
        image: Image,
        base_disk: Path,
        incoming: Path | None = None,
        boot_disk: Path | None = None,
        efi_vars: Path | None = None,
    ) -> int:
        """Prepare this guest's disks and start QEMU in the background; return its PID."""
        self.prepare_disks(base_disk, restored=incoming is not None, boot_disk=boot_disk, efi_vars=efi_vars)
        tools.run(self.qemu_argv(image, incoming), what=f"QEMU for {self.name}", timeout=60)
        try:
            return int(self.pidfile.read_text().strip())
        except FileNotFoundError:  # QEMU removes its pidfile when it exits
            reason = "QEMU exited right after it started"
            if incoming:
                raise self._restore_failed(incoming, reason) from None
            raise SimlabError(f"{self.name}: {reason}; console:\n{console_tail(self.console_log)}") from None

    def resume_incoming(self, state: Path, timeout: float = 120) -> None:
        """After -incoming: wait for the saved state to load and the VM to pause, then run it."""
        try:
            with Qmp(self.qmp_socket) as qmp:

                def loaded():
                    status = qmp.command("query-status").get("status")
                    migrate = qmp.command("query-migrate").get("status")
                    if migrate == "failed":
                        raise SimlabError("QEMU reports the migration failed")
                    return status == "paused" and migrate in (None, "completed")

                qmp.wait_for(loaded, "loading the saved state", timeout)
                qmp.command("cont")  # a cont sent before the VM reports paused would be ignored
        except SimlabError as exc:
            raise self._restore_failed(state, str(exc)) from None

    def _restore_failed(self, state: Path, reason: str) -> SimlabError:
        return SimlabError(
            f"{self.name}: restoring the saved guest state {state} failed ({reason}; console: "
            f"{console_tail(self.console_log, 3)}); run `simlab clean` to drop the saved states "
            "(the next up saves a fresh one)"
        )

    def save_state(self, target: Path, timeout: float = 300) -> None:
        """Pause the guest and write its memory and device state to target (migrate to a file)."""
        tmp = target.with_suffix(".tmp")
        with Qmp(self.qmp_socket) as qmp:
            qmp.command("stop")
            qmp.command("migrate", uri=f"exec:cat > {shlex.quote(str(tmp))}")

            def finished():
                status = qmp.command("query-migrate").get("status")
                if status in ("failed", "cancelled"):
                    raise SimlabError(f"{self.name}: saving the guest state failed ({status})")
                return status == "completed"

            qmp.wait_for(finished, f"{self.name}: saving the guest state", timeout)
            qmp.command("quit")
        tmp.rename(target)

    # SSH -----------------------------------------------------------------------------------
    def ssh_argv(self, command: str | None = None, extra: list[str] | None = None) -> list[str]:
        argv = ["ssh", *SSH_OPTIONS, "-i", str(paths.ssh_key()), "-p", str(self.port), *(extra or [])]
        argv.append("root@127.0.0.1")
        if command is not None:
            argv.append(command)
        return argv

    def ssh(self, command: str, check: bool = True, timeout: float = 300, input: str | None = None):
        try:
            proc = subprocess.run(
                self.ssh_argv(command),
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SimlabError(f"{self.name}: `{command}` did not finish within {timeout} s") from None
        if check and proc.returncode != 0:
            raise SimlabError(
                f"{self.name}: `{command}` failed (rc={proc.returncode}):\n{proc.stdout}{proc.stderr}".rstrip()
            )
        return proc

    def sshd_banner(self, timeout: float) -> bool:
        """Whether the guest's sshd sends its banner within timeout.

        QEMU's user-mode network accepts a connection on the forwarded port at once, guest up or not,
        and retries its SYN to the guest with TCP's back-off: a connection made while the guest boots
        is answered seconds after sshd starts (ssh waits up to its ConnectTimeout for the banner). A
        fresh short probe each time sees sshd within a fraction of a second of its start.
        """
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
                sock.settimeout(timeout)
                return sock.recv(8).startswith(b"SSH-")
        except OSError:
            return False

    def wait_sshd(self, deadline: float) -> bool:
        """Probe for sshd's banner until the monotonic deadline; the probe's timeout grows (a guest
        under load may take seconds to fork sshd for a connection)."""
        probe = 2.0
        while time.monotonic() < deadline:
            if self.sshd_banner(probe):
                return True
            probe = min(probe + 1, 10.0)
            time.sleep(0.3)
        return False

    def wait_ssh(self, timeout: float, pid: int | None = None) -> float:
        """Wait until sshd in the guest runs a command; return the seconds it took."""
        started = time.monotonic()
        while True:
            self.wait_sshd(min(started + timeout, time.monotonic() + 5))
            try:
                proc = subprocess.run(
                    self.ssh_argv("true"),
                    capture_output=True,
                    stdin=subprocess.DEVNULL,
                    timeout=30,
                    check=False,
                )
                if proc.returncode == 0:
                    return time.monotonic() - started
            except subprocess.TimeoutExpired:
                pass
            if pid is not None and not process_alive(pid):
                raise SimlabError(f"{self.name}: QEMU exited while booting; see {self.console_log}")
            if time.monotonic() - started > timeout:
                raise SimlabError(
                    f"{self.name}: no SSH answer on 127.0.0.1:{self.port} within {timeout:.0f} s; "
                    f"the guest console is in {self.console_log}:\n{console_tail(self.console_log)}"
                )
            time.sleep(0.3)


def console_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_bytes().decode(errors="replace")
    except OSError:
        return "(no console output)"
    return "\n".join(text.replace("\r", "").splitlines()[-lines:])


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def process_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
