"""The simulated lab: bring up, tear down and inspect what an inventory names.

`up` builds the guest image once, boots one template guest and saves its running state, then
starts every guest of the inventory from a copy of that state (seconds instead of a full boot),
plus a Redfish emulator per iDRAC machine and the switch of the lab network. The processes it
started are recorded by PID in the lab's state file; `down` stops exactly those and nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from simlab import bmc, cachelock, image, inventory, paths, rpi_firmware, tools, uefi
from simlab.errors import SimlabError
from simlab.guest import SSH_OPTIONS, GuestRun, console_tail, process_alive, process_cmdline
from simlab.inventory import GuestSpec, LabSpec


class Lab:
    def __init__(self, inventory_path: str | os.PathLike, log=None):
        self.spec: LabSpec = inventory.load(inventory_path)
        self.directory = paths.run_dir() / self.spec.name
        self._log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self._started_at = time.monotonic()
        self._state_lock = threading.Lock()
        self._image: image.Image | None = None
        self._uefi_image: image.Image | None = None

    # Public API ------------------------------------------------------------------------------
    @property
    def guests(self) -> dict[str, GuestSpec]:
        return self.spec.guests

    @property
    def bmcs(self):
        return self.spec.bmcs

    @property
    def kernel_release(self) -> str:
        return self.image.kernel_release

    @property
    def image(self) -> image.Image:
        if self._image is None:
            self._image = image.ensure_image(self.log)
        return self._image

    def image_for(self, firmware: str) -> image.Image:
        """The image a guest of this firmware boots: uefi guests have their own (a partitioned disk)."""
        if firmware != "uefi":
            return self.image
        if self._uefi_image is None:
            self._uefi_image = image.ensure_image(self.log, variant="uefi")
        return self._uefi_image

    def log(self, message: str) -> None:
        self._log(f"[simlab {time.monotonic() - self._started_at:6.1f}s] {message}")

    def up(self, cold: bool = False) -> dict[str, float]:
        """Start whatever of the lab is not running; return seconds to SSH per started guest."""
        with self._locked():
            state = self._read_state()
            running = {name for name, proc in state["processes"].items() if _is_ours(proc)}
            wanted = {*self.spec.guests, *self.spec.bmcs, "switch"} if self.spec.guests else {*self.spec.bmcs}
            missing = sorted(wanted - running)
            if not missing:
                self.log(f"lab {self.spec.name} is already up ({len(running)} processes)")
                return {}
            self._check_ports([n for n in missing if n != "switch"])
            if self.spec.guests:
                tools.require("qemu-system-x86_64", "qemu-img", "ssh")
            try:
                return self._start(missing, state, cold)
            except BaseException:
                self.log("start failed: stopping everything this lab started")
                self._stop_all(self._read_state())
                raise

    def down(self) -> list[str]:
        """Stop every process this lab started and free its ports; return what was stopped."""
        with self._locked():
            state = self._read_state()
            stopped = self._stop_all(state)
            self.log(f"lab {self.spec.name} is down" + (f" (stopped {', '.join(stopped)})" if stopped else ""))
            return stopped

    def status(self) -> list[dict]:
        state = self._read_state()
        rows = []
        for name, spec in [*self.spec.guests.items(), *self.spec.bmcs.items()]:
            proc = state["processes"].get(name)
            alive = bool(proc) and _is_ours(proc)
            if isinstance(spec, GuestSpec):
                address = f"{spec.lab_address}/{spec.lab_prefix} ssh 127.0.0.1:{spec.port}"
            else:
                address = f"{spec.url} ({spec.system_id})"
            rows.append(
                {
                    "host": name,
                    "role": spec.role,
                    "address": address,
                    "state": "running" if alive else "stopped",
                    "uptime": _duration(time.time() - proc["started"]) if alive else "-",
                }
            )
        return rows

    def ssh(self, host: str, command: str, check: bool = True, timeout: float = 300, input: str | None = None):
        return self._guest_run(host).ssh(command, check=check, timeout=timeout, input=input)

    def ssh_argv(self, host: str, command: str | None = None) -> list[str]:
        return self._guest_run(host).ssh_argv(command)

    def copy_to(self, host: str, local: str | os.PathLike, remote: str) -> None:
        run = self._guest_run(host)
        tools.run(
            # scp spells the port -P (its -p keeps file times), so ssh's own argv cannot be reused.
            [
                "scp",
                "-q",
                "-r",
                *SSH_OPTIONS,
                "-i",
                str(paths.ssh_key()),
                "-P",
                str(run.port),
                str(local),
                f"root@127.0.0.1:{remote}",
            ],
            what=f"scp to {host}",
        )

    def reboot(self, host: str, timeout: float | None = None) -> float:
        """Reboot a guest and wait until it answers SSH again; return the seconds it took."""
        before = self.ssh(host, "cat /proc/sys/kernel/random/boot_id").stdout
        started = time.monotonic()
        self.ssh(host, "systemctl reboot", check=False, timeout=30)
        self.wait_reboot(host, before, timeout)
        return time.monotonic() - started

    def wait_reboot(self, host: str, boot_id: str, timeout: float | None = None) -> None:
        """Wait until host answers SSH from a boot other than boot_id (its old boot_id)."""
        run = self._guest_run(host)
        timeout = timeout or self.spec.guests[host].boot_timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run.wait_sshd(deadline)
            try:
                proc = run.ssh("cat /proc/sys/kernel/random/boot_id", check=False, timeout=30)
            except SimlabError:  # sshd half up or half down: try again
                continue
            if proc.returncode == 0 and proc.stdout.strip() not in ("", boot_id.strip()):
                return
            time.sleep(0.5)
        tail = console_tail(run.console_log)
        raise SimlabError(f"{host} did not come back from a reboot within {timeout} s:\n{tail}")

    # Starting --------------------------------------------------------------------------------
    def _start(self, missing: list[str], state: dict, cold: bool) -> dict[str, float]:
        self.directory.mkdir(parents=True, exist_ok=True)
        state["inventory"] = str(self.spec.inventory.resolve())
        for name in missing:
            if name in self.spec.bmcs:
                self._start_bmc(name, state)
        guests = [self.spec.guests[n] for n in missing if n in self.spec.guests]
        if not guests:
            return {}
        if "switch" in missing:
            self._start_switch(state)
        images = {firmware: self.image_for(firmware) for firmware in sorted({g.firmware for g in guests})}
        templates = {} if cold else self._templates(guests)
        self.log(
            f"starting {len(guests)} guest(s) {'cold' if cold else 'from the saved state'}: "
            + ", ".join(g.name for g in guests)
        )
        with ThreadPoolExecutor(max_workers=len(guests)) as pool:
            futures = {g.name: pool.submit(self._start_guest, g, images[g.firmware], templates, state) for g in guests}
            return {name: future.result() for name, future in futures.items()}

    def _start_switch(self, state: dict) -> None:
        peers = [str(self._guest_run(n).lab_socket) for n in self.spec.guests]
        log = open(self.directory / "switch.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "simlab.switch", str(self._switch_socket()), *peers],
            cwd=str(Path(__file__).resolve().parent.parent),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 10
        while not self._switch_socket().exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SimlabError(f"the lab network switch did not start; see {self.directory / 'switch.log'}")
            time.sleep(0.05)
        self._record(state, "switch", {"kind": "switch", "pid": proc.pid, "marker": "simlab.switch"})

    def _start_bmc(self, name: str, state: dict) -> None:
        spec = self.spec.bmcs[name]
        directory = self.directory / name
        shutil.rmtree(directory, ignore_errors=True)  # a fresh BMC state each time the lab comes up
        pid = bmc.start(spec, directory)
        self._record(state, name, {"kind": "bmc", "pid": pid, "port": spec.port, "marker": str(directory)})
        bmc.wait_ready(spec, pid, directory)
        self.log(f"{name}: Redfish emulator up on {spec.url}")

    def _start_guest(self, spec: GuestSpec, img: image.Image, templates: dict, state: dict) -> float:
        run = self._guest_run(spec.name)
        started = time.monotonic()
        template = templates.get(_shape(spec))
        incoming = template / "memory.state" if template else None
        if spec.firmware == "rpi":
            boot_disk = template / "boot.img" if template else self._stock_boot(img)
            run.prepare_disks(template / "disk.qcow2" if template else img.disk, bool(template), boot_disk)
            pid, marker = self._start_firmware(spec, run, img, incoming), f"simlab.rpi_firmware {run.directory}"
        elif spec.firmware == "uefi":  # the template's EFI variables go with its memory and disk
            efi_vars = template / "efivars.fd" if template else uefi.OVMF_VARS
            base = template / "disk.qcow2" if template else img.disk
            pid, marker = run.start(img, base, incoming=incoming, efi_vars=efi_vars), f"labkit-{spec.name}"
        elif template:
            pid, marker = run.start(img, template / "disk.qcow2", incoming=incoming), f"labkit-{spec.name}"
        else:
            pid, marker = run.start(img, img.disk), f"labkit-{spec.name}"
        self._record(state, spec.name, {"kind": "guest", "pid": pid, "port": spec.port, "marker": marker})
        if template:
            run.resume_incoming(template / "memory.state")
        seconds = run.wait_ssh(spec.boot_timeout, pid)
        self._personalize(spec, run)
        took = time.monotonic() - started
        self.log(f"{spec.name}: up in {took:.1f}s (ssh 127.0.0.1:{spec.port}, lab {spec.lab_address})")
        return max(took, seconds)

    def _stock_boot(self, img: image.Image) -> Path:
        return rpi_firmware.ensure_stock_boot_image(img.directory, img.kernel, img.initrd, image.KERNEL_APPEND)

    def _start_firmware(self, spec: GuestSpec, run: GuestRun, img: image.Image, incoming: Path | None) -> int:
        """Start the emulated Pi firmware, which runs (and re-runs at each reboot) the guest's QEMU."""
        config = run.directory / "firmware.json"
        guest = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(run).items()}
        config.write_text(
            json.dumps(
                {
                    "guest": guest,
                    "image_dir": str(img.directory),
                    "kernel_release": img.kernel_release,
                    "incoming": str(incoming) if incoming else None,
                    "tryboot_timeout": spec.tryboot_timeout,
                },
                indent=2,
            )
        )
        with open(run.directory / "firmware.out", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "simlab.rpi_firmware", str(config)],
                cwd=str(Path(__file__).resolve().parent.parent),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not run.qmp_socket.exists():  # QEMU is up once its control socket is
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SimlabError(
                    f"{spec.name}: the emulated Pi firmware did not start QEMU; see {run.directory}/firmware.log "
                    f"and qemu.log:\n{console_tail(run.directory / 'qemu.log')}"
                )
            time.sleep(0.05)
        return proc.pid

    def _personalize(self, spec: GuestSpec, run: GuestRun) -> None:
        """Give a guest its identity: name, lab address and MAC (a restored state has the template's)."""
        network = (
            "[Match]\nName=eth1\n\n[Network]\n"
            f"Address={spec.lab_address}/{spec.lab_prefix}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
        )
        script = "\n".join(
            [
                "set -e",
                "hwclock --hctosys 2>/dev/null || true",  # a restored clock is as old as the saved state
                f"hostname {spec.name}",
                f"echo {spec.name} > /etc/hostname",
                f"printf '127.0.0.1 localhost\\n127.0.1.1 {spec.name}\\n' > /etc/hosts",
                "ip link set dev eth1 down",
                f"ip link set dev eth1 address {spec.mac}",
                f"printf '{network.replace(chr(10), chr(92) + 'n')}' > /etc/systemd/network/20-lab.network",
                "ip link set dev eth1 up",
                "networkctl reload",
                "networkctl reconfigure eth1",
                f"for i in $(seq 50); do ip -o addr show dev eth1 | grep -q ' {spec.lab_address}/' && exit 0; "
                "sleep 0.2; done",
                "echo 'eth1 did not get its lab address' >&2; ip addr show dev eth1 >&2; exit 1",
            ]
        )
        if spec.firmware == "rpi":  # the boot partition, where Raspberry Pi OS (Bookworm) mounts it
            mount = "/dev/vdb /boot/firmware vfat defaults,nofail 0 2"
            script = "\n".join(
                [
                    "set -e",
                    "mkdir -p /boot/firmware",
                    f"grep -q ' /boot/firmware ' /etc/fstab || echo '{mount}' >> /etc/fstab",
                    "mountpoint -q /boot/firmware || mount /boot/firmware",
                    script,
                ]
            )
        if spec.firmware == "uefi":  # a cold-booted guest still has the image's bootstrap grub.cfg
            script = f"set -e\n{UPDATE_GRUB_IF_BOOTSTRAP}\n{script}"
        run.ssh(script, timeout=180 if spec.firmware == "uefi" else 120)

    def _templates(self, guests: list[GuestSpec]) -> dict:
        shapes = sorted({_shape(g) for g in guests})
        return {shape: self._ensure_template(self.image_for(shape[2]), *shape) for shape in shapes}

    @cachelock.locked(lambda self, img, *shape: "template-" + "-".join(map(str, (img.directory.name, *shape))))
    def _ensure_template(self, img: image.Image, memory_mb: int, cpus: int, firmware: str) -> Path:
        """A guest booted once and saved while running; restoring it skips the whole boot."""
        suffix = f"-{firmware}" if firmware else ""
        directory = template_dir(img, memory_mb, cpus, firmware)
        needed = ["memory.state", "disk.qcow2", *(["efivars.fd"] if firmware == "uefi" else [])]
        if all((directory / name).exists() for name in needed):
            return directory
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        run = GuestRun(
            name="template",
            directory=directory,
            port=tools.free_port(),
            switch_socket=None,
            mac="52:54:00:00:00:01",
            memory_mb=memory_mb,
            cpus=cpus,
            firmware=firmware,
        )
        self.log(f"booting the template guest once ({memory_mb} MB, {cpus} CPUs{suffix}; about 1-2 minutes)")
        started = time.monotonic()
        # A sim Pi's template carries a pristine copy of the stock boot partition.
        pid = run.start(
            img,
            img.disk,
            boot_disk=self._stock_boot(img) if firmware == "rpi" else None,
            efi_vars=uefi.OVMF_VARS if firmware == "uefi" else None,
        )
        try:
            run.wait_ssh(600, pid)
            # Save a settled system: everything that starts at boot has started.
            run.ssh("timeout 120 systemctl is-system-running --wait || true; sync", timeout=180)
            if firmware == "uefi":  # the real grub.cfg, written where GRUB reads it, by the guest's own update-grub
                run.ssh(f"{UPDATE_GRUB_IF_BOOTSTRAP}\nsync", timeout=180)
            run.save_state(directory / "memory.state")
        except BaseException:
            _terminate(pid)
            shutil.rmtree(directory, ignore_errors=True)
            raise
        _wait_gone(pid)
        self.log(f"template saved in {time.monotonic() - started:.1f}s")
        return directory

    # State -----------------------------------------------------------------------------------
    def _guest_run(self, name: str) -> GuestRun:
        if name not in self.spec.guests:
            raise SimlabError(
                f"{name} is not a guest of {self.spec.inventory}: choose one of {sorted(self.spec.guests)}"
            )
        spec = self.spec.guests[name]
        return GuestRun(
            name=name,
            directory=(self.directory / name).resolve(),
            port=spec.port,
            switch_socket=self._switch_socket(),
            mac=spec.mac,
            memory_mb=spec.memory_mb,
            cpus=spec.cpus,
            firmware=spec.firmware,
        )

    def _switch_socket(self) -> Path:
        return (self.directory / "switch.sock").resolve()

    def _state_file(self) -> Path:
        return self.directory / "state.json"

    def _read_state(self) -> dict:
        try:
            return json.loads(self._state_file().read_text())
        except FileNotFoundError:
            return {"processes": {}}
        except json.JSONDecodeError as exc:
            raise SimlabError(
                f"lab state {self._state_file()} is corrupt ({exc}): stop its processes by hand and delete it"
            ) from None

    def _record(self, state: dict, name: str, proc: dict) -> None:
        with self._state_lock:
            proc["started"] = time.time()
            state["processes"][name] = proc
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self._state_file().with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=2))
            tmp.rename(self._state_file())

    def _check_ports(self, names: list[str]) -> None:
        for name in names:
            spec = self.spec.guests.get(name) or self.spec.bmcs.get(name)
            if tools.port_in_use(spec.port):
                raise SimlabError(
                    f"host {name}: port {spec.port} on 127.0.0.1 is already in use by another program: "
                    f"stop that program or give {name} another port in {self.spec.inventory}"
                )

    def _stop_all(self, state: dict) -> list[str]:
        stopped = []
        for name, proc in state["processes"].items():
            if _is_ours(proc):
                _terminate(proc["pid"])
                stopped.append(name)
        for name in stopped:
            _wait_gone(state["processes"][name]["pid"])
        for name, proc in state["processes"].items():
            if "port" in proc and not _wait_port_free(proc["port"]):
                raise SimlabError(f"port {proc['port']} of {name} is still in use after stopping it")
        if self.directory.exists():
            for entry in self.directory.iterdir():
                if entry.name != ".lock":
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        return stopped

    @contextlib.contextmanager
    def _locked(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


UPDATE_GRUB_IF_BOOTSTRAP = "grep -q '^### BEGIN /etc/grub.d/10_linux' /boot/grub/grub.cfg || update-grub 2>&1"


def template_dir(img: image.Image, memory_mb: int, cpus: int, firmware: str) -> Path:
    """Where guests of this shape keep their saved template (one per QEMU version: saved states do not migrate)."""
    suffix = f"-{firmware}" if firmware else ""
    return img.directory / "templates" / f"m{memory_mb}-c{cpus}-q{_qemu_version()}{suffix}"


def _shape(guest: GuestSpec) -> tuple[int, int, str]:
    """Guests of one shape restore from one saved template."""
    return (guest.memory_mb, guest.cpus, guest.firmware)


def _is_ours(proc: dict) -> bool:
    """Alive, and still the process simlab started (a PID can be reused by another program)."""
    return process_alive(proc["pid"]) and proc.get("marker", "") in process_cmdline(proc["pid"])


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _wait_gone(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.1)


def _wait_port_free(port: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while tools.port_in_use(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _qemu_version() -> str:
    out = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=False).stdout
    return out.split()[3] if len(out.split()) > 3 else "unknown"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
