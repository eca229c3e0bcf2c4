# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""QEMU guests declared as data: validation, and the QEMU command line they stand for.

A guest is a mapping (docs/modules/qemu_guest.md): name, memory, cpus, a kernel (and initrd, command line)
or a disk, and devices: CXL type-3 memory devices (`cxl`) and inter-VM shared memory (`ivshmem`,
naming regions the QEMU host declares). `validate_guest()` checks everything before anything is
touched and names the field at fault; `qemu_argv()` turns a valid guest into the argument list of
qemu-system-x86_64 for the QEMU version given (the CXL syntax changed in QEMU 8.0: volatile devices
and `persistent-memdev` exist only from there on).

The CXL topology comes from a short device list: host bridges (`pxb-cxl`), one root port
(`cxl-rp`) per device, the type-3 devices (`cxl-type3`) with their backing memory and label storage
area, and fixed memory windows (`cxl-fmw`) covering the devices unless the guest gives its own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Where a guest's QMP and guest-agent sockets live: <RUN_DIR>/<name>/ (the unit's RuntimeDirectory).
RUN_DIR = "/run/labkit/qemu"
MIB = 1024 * 1024
GIB = 1024 * MIB
CXL_ALIGN = 256 * MIB  # CXL device capacity and fixed memory windows: multiples of 256 MiB
HUGEPAGE = 2 * MIB
VOLATILE_CXL_QEMU = (8, 0)  # cxl-type3 volatile-memdev / persistent-memdev
NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_SIZE = re.compile(r"([0-9]+) ?([KMGT]?)(i?B)?", re.I)
_UNITS = {"": 1, "K": 1024, "M": MIB, "G": GIB, "T": 1024 * GIB}
GUEST_KEYS = set(
    "name memory cpus kernel initrd append disk disk_format machine accel cpu ssh_port cxl ivshmem extra_args".split()
)
CXL_KEYS = {"host_bridges", "devices", "windows"}
CXL_DEVICE_KEYS = {"name", "kind", "size", "lsa_size", "host_bridge", "port"}
CXL_WINDOW_KEYS = {"size", "targets", "interleave_granularity"}
CXL_KINDS = ("persistent", "volatile")
IVSHMEM_KEYS = {"name", "size", "path", "doorbell", "vectors"}
GRANULARITIES = ("256", "512", "1k", "2k", "4k", "8k", "16k")


class GuestError(ValueError):
    """A guest definition that cannot be used; the message names the field and what to fix."""


def parse_size(value, field):
    """Bytes from an int (bytes) or a string with a binary unit: '256M', '4G', '2048 KiB'."""
    if isinstance(value, bool):
        raise GuestError(f"{field}: {value!r} is not a size; give bytes or a size such as 256M or 4G")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and _SIZE.fullmatch(value):
        number, unit, _suffix = _SIZE.fullmatch(value).groups()
        size = int(number) * _UNITS[unit.upper()]
    else:
        raise GuestError(f"{field}: {value!r} is not a size; give bytes or a size such as 256M or 4G")
    if size <= 0:
        raise GuestError(f"{field}: {value!r} must be more than 0")
    return size


def human(size):
    for unit, factor in (("T", 1024 * GIB), ("G", GIB), ("M", MIB), ("K", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def _check_text(value, field, allow_empty=False):
    if not isinstance(value, str) or (not value and not allow_empty):
        raise GuestError(f"{field}: give a non-empty string, got {value!r}")
    if any(ch in value for ch in "\n\r\0"):
        raise GuestError(f"{field}: {value!r} contains a newline or NUL; give one line")
    return value


def check_path(value, field):
    _check_text(value, field)
    if not value.startswith("/") or "/../" in value + "/" or "," in value:
        raise GuestError(f"{field}: {value!r} must be an absolute path without '..' or ','")
    return value


def check_name(value, field):
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise GuestError(
            f"{field}: {value!r} is not a name; use 1 to 31 lower-case letters, digits and '-', starting with a letter"
        )
    return value


def _check_int(value, field, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise GuestError(f"{field}: {value!r} must be a whole number from {low} to {high}")
    return value


def _unknown(mapping, allowed, field):
    if not isinstance(mapping, dict):
        raise GuestError(f"{field}: give a mapping, got {mapping!r}")
    extra = sorted(set(mapping) - allowed)
    if extra:
        raise GuestError(f"{field}: unknown key(s) {', '.join(map(str, extra))}; known: {', '.join(sorted(allowed))}")


def validate_regions(regions):
    """The QEMU host's ivshmem regions, by name: size (a multiple of 2 MiB, the huge page size), the
    backing file's path, and doorbell (an ivshmem-server with `vectors` interrupt vectors)."""
    if not isinstance(regions, list):
        raise GuestError(f"ivshmem regions: give a list, got {regions!r}")
    by_name = {}
    for index, region in enumerate(regions):
        field = f"ivshmem regions[{index}]"
        _unknown(region, IVSHMEM_KEYS, field)
        name = check_name(region.get("name"), f"{field}.name")
        if name in by_name:
            raise GuestError(f"{field}.name: region {name} is declared twice")
        size = parse_size(region.get("size", "2M"), f"{field}.size")
        if size % HUGEPAGE:
            raise GuestError(f"{field}.size: {human(size)} must be a multiple of 2M (the huge page size)")
        doorbell = region.get("doorbell", False)
        if not isinstance(doorbell, bool):
            raise GuestError(f"{field}.doorbell: give true or false, got {doorbell!r}")
        by_name[name] = {
            "name": name,
            "size": size,
            "path": check_path(region["path"], f"{field}.path") if "path" in region else "",
            "doorbell": doorbell,
            "vectors": _check_int(region.get("vectors", 1), f"{field}.vectors", 1, 64),
        }
    return by_name


def _validate_cxl(cxl, field):
    _unknown(cxl, CXL_KEYS, field)
    bridges = _check_int(cxl.get("host_bridges", 1), f"{field}.host_bridges", 1, 8)
    devices = cxl.get("devices")
    if not isinstance(devices, list) or not devices:
        raise GuestError(f"{field}.devices: give a list of at least one device")
    names, ports, out = set(), set(), []
    next_port = [0] * bridges
    for index, device in enumerate(devices):
        where = f"{field}.devices[{index}]"
        _unknown(device, CXL_DEVICE_KEYS, where)
        name = check_name(device.get("name", f"mem{index}"), f"{where}.name")
        if name in names:
            raise GuestError(f"{where}.name: device {name} is declared twice in this guest")
        names.add(name)
        kind = device.get("kind", "persistent")
        if kind not in CXL_KINDS:
            raise GuestError(f"{where}.kind: {kind!r} is not a CXL device kind; use one of {', '.join(CXL_KINDS)}")
        size = parse_size(device.get("size", "256M"), f"{where}.size")
        if size % CXL_ALIGN:
            raise GuestError(f"{where}.size: {human(size)} must be a multiple of 256M (CXL device capacity)")
        lsa = 0
        if kind == "persistent":
            lsa = parse_size(device.get("lsa_size", "256M"), f"{where}.lsa_size")
            if lsa % MIB:
                raise GuestError(f"{where}.lsa_size: {human(lsa)} must be a multiple of 1M")
        elif "lsa_size" in device:
            raise GuestError(f"{where}.lsa_size: only persistent devices have a label storage area")
        bridge = _check_int(device.get("host_bridge", 0), f"{where}.host_bridge", 0, bridges - 1)
        port = _check_int(device.get("port", next_port[bridge]), f"{where}.port", 0, 31)
        if (bridge, port) in ports:
            raise GuestError(f"{where}.port: port {port} of host bridge {bridge} is used twice")
        ports.add((bridge, port))
        next_port[bridge] = max(next_port[bridge], port + 1)
        out.append({"name": name, "kind": kind, "size": size, "lsa_size": lsa, "host_bridge": bridge, "port": port})
    windows = cxl.get("windows")
    if windows is None:
        # One window over every host bridge, as large as their devices, interleaved across them.
        total = sum(device["size"] for device in out)
        step = CXL_ALIGN * bridges
        windows = [{"size": -(-total // step) * step, "targets": list(range(bridges)), "interleave_granularity": ""}]
    else:
        windows = _validate_windows(windows, bridges, field)
    for bridge in range(bridges):
        need = sum(device["size"] for device in out if device["host_bridge"] == bridge)
        have = sum(window["size"] // len(window["targets"]) for window in windows if bridge in window["targets"])
        if need > have:
            raise GuestError(
                f"{field}.windows: host bridge {bridge} has {human(need)} of devices but its windows map only "
                f"{human(have)}; make the windows at least as large as the devices they cover"
            )
    return {"host_bridges": bridges, "devices": out, "windows": windows}


def _validate_windows(windows, bridges, field):
    if not isinstance(windows, list) or not windows:
        raise GuestError(f"{field}.windows: give a list of at least one window, or leave it out")
    out = []
    for index, window in enumerate(windows):
        where = f"{field}.windows[{index}]"
        _unknown(window, CXL_WINDOW_KEYS, where)
        targets = window.get("targets", list(range(bridges)))
        if not isinstance(targets, list) or not targets or len(set(map(str, targets))) != len(targets):
            raise GuestError(f"{where}.targets: give a list of distinct host bridge numbers")
        for target in targets:
            _check_int(target, f"{where}.targets", 0, bridges - 1)
        if len(targets) not in (1, 2, 4, 8):
            raise GuestError(f"{where}.targets: interleave across 1, 2, 4 or 8 host bridges, not {len(targets)}")
        size = parse_size(window.get("size"), f"{where}.size")
        if size % (CXL_ALIGN * len(targets)):
            raise GuestError(
                f"{where}.size: {human(size)} must be a multiple of 256M times its {len(targets)} target(s)"
            )
        granularity = str(window.get("interleave_granularity", ""))
        if granularity and granularity not in GRANULARITIES:
            raise GuestError(f"{where}.interleave_granularity: {granularity!r}; use one of {', '.join(GRANULARITIES)}")
        out.append({"size": size, "targets": targets, "interleave_granularity": granularity})
    return out


def validate_guest(guest, regions=None, qemu_version=None):
    """A checked copy of guest: sizes in bytes, defaults filled in. regions: validate_regions()'s
    result; qemu_version: (major, minor) of the QEMU that will run it, for version-bound features."""
    _unknown(guest, GUEST_KEYS, "guest")
    name = check_name(guest.get("name"), "name")
    field = f"guest {name}"
    memory = parse_size(guest.get("memory", "1G"), f"{field}: memory")
    if memory < 128 * MIB or memory % MIB:
        raise GuestError(f"{field}: memory {human(memory)} must be whole MiB and at least 128M")
    out = {
        "name": name,
        "memory": memory,
        "cpus": _check_int(guest.get("cpus", 1), f"{field}: cpus", 1, 64),
        "machine": _check_text(guest.get("machine", "q35"), f"{field}: machine"),
        "accel": _check_text(guest.get("accel", "kvm:tcg"), f"{field}: accel"),
        "cpu": _check_text(guest.get("cpu", "max"), f"{field}: cpu"),
        "kernel": "",
        "initrd": "",
        "append": _check_text(guest.get("append", ""), f"{field}: append", allow_empty=True),
        "disk": "",
        "disk_format": guest.get("disk_format", "qcow2"),
        "ssh_port": None,
        "cxl": None,
        "ivshmem": [],
        "extra_args": [],
    }
    for key in ("accel", "cpu"):
        if "," in out[key]:
            raise GuestError(f"{field}: {key} {out[key]!r} takes one value; put options in extra_args")
    for key in ("kernel", "initrd", "disk"):
        if guest.get(key):
            out[key] = check_path(guest[key], f"{field}: {key}")
    if not out["kernel"] and not out["disk"]:
        raise GuestError(f"{field}: give a kernel (and initrd) to boot directly, or a disk to boot from")
    if out["initrd"] and not out["kernel"]:
        raise GuestError(f"{field}: initrd needs a kernel")
    if out["disk_format"] not in ("qcow2", "raw"):
        raise GuestError(f"{field}: disk_format {out['disk_format']!r}; use qcow2 or raw")
    if guest.get("ssh_port") is not None:
        out["ssh_port"] = _check_int(guest["ssh_port"], f"{field}: ssh_port", 1024, 65535)
    extra = guest.get("extra_args", [])
    if not isinstance(extra, list):
        raise GuestError(f"{field}: extra_args must be a list of arguments, got {extra!r}")
    out["extra_args"] = [_check_text(arg, f"{field}: extra_args[{i}]") for i, arg in enumerate(extra)]
    if guest.get("cxl"):
        out["cxl"] = _validate_cxl(guest["cxl"], f"{field}: cxl")
        if qemu_version is not None and tuple(qemu_version) < VOLATILE_CXL_QEMU:
            for device in out["cxl"]["devices"]:
                if device["kind"] == "volatile":
                    raise GuestError(
                        f"{field}: cxl device {device['name']} is volatile, which needs QEMU >= "
                        f"{'.'.join(map(str, VOLATILE_CXL_QEMU))} (volatile-memdev); this host's QEMU is "
                        f"{'.'.join(map(str, qemu_version))}. Use kind: persistent or a newer QEMU."
                    )
    ivshmem = guest.get("ivshmem", [])
    if not isinstance(ivshmem, list):
        raise GuestError(f"{field}: ivshmem must be a list of region names, got {ivshmem!r}")
    for index, region in enumerate(ivshmem):
        check_name(region, f"{field}: ivshmem[{index}]")
        if regions is None or region not in regions:
            known = ", ".join(sorted(regions or {})) or "none"
            raise GuestError(f"{field}: ivshmem[{index}] names region {region}, not one of the host's ({known})")
        if region in out["ivshmem"]:
            raise GuestError(f"{field}: ivshmem[{index}] names region {region} twice")
        out["ivshmem"].append(region)
    return out


def _file_backend(backend_id, path, size):
    return ["-object", f"memory-backend-file,id={backend_id},share=on,mem-path={path},size={human(size)}"]


def _cxl_args(guest, files, qemu_version):
    cxl, args = guest["cxl"], []
    new_syntax = qemu_version is not None and tuple(qemu_version) >= VOLATILE_CXL_QEMU
    for bridge in range(cxl["host_bridges"]):
        # bus numbers 12, 22, ...: each host bridge leaves room below it for its root ports' buses
        args += ["-device", f"pxb-cxl,bus_nr={12 + 10 * bridge},bus=pcie.0,id=cxl.{bridge}"]
    for device in cxl["devices"]:
        dev, bridge, port = device["name"], device["host_bridge"], device["port"]
        rp = f"cxl-rp-{dev}"
        args += ["-device", f"cxl-rp,port={port},bus=cxl.{bridge},id={rp},chassis={bridge},slot={port}"]
        props = [f"cxl-type3,bus={rp},id=cxl-{dev}"]
        if device["kind"] == "persistent":
            args += _file_backend(f"cxl-{dev}-mem", f"{files}/cxl-{dev}.raw", device["size"])
            args += _file_backend(f"cxl-{dev}-lsa", f"{files}/cxl-{dev}-lsa.raw", device["lsa_size"])
            props += [f"{'persistent-memdev' if new_syntax else 'memdev'}=cxl-{dev}-mem", f"lsa=cxl-{dev}-lsa"]
        else:
            args += ["-object", f"memory-backend-ram,id=cxl-{dev}-mem,share=on,size={human(device['size'])}"]
            props.append(f"volatile-memdev=cxl-{dev}-mem")
        args += ["-device", ",".join(props)]
    windows = []
    for index, window in enumerate(cxl["windows"]):
        parts = [f"cxl-fmw.{index}.targets.{t}=cxl.{bridge}" for t, bridge in enumerate(window["targets"])]
        parts.append(f"cxl-fmw.{index}.size={human(window['size'])}")
        if window["interleave_granularity"]:
            parts.append(f"cxl-fmw.{index}.interleave-granularity={window['interleave_granularity']}")
        windows += parts
    args += ["-M", ",".join(windows)]
    return args


def qemu_argv(
    guest,
    regions,
    *,
    run_dir,
    files_dir,
    console_log=None,
    qemu="qemu-system-x86_64",
    qemu_version=None,
    ivshmem_sockets=None,
):
    """The command line of a validated guest. run_dir: its runtime directory (QMP and guest agent
    sockets); files_dir: where its persistent backing files live (CXL memory and label storage
    areas); console_log: the serial console's log file (default run_dir/console.log);
    ivshmem_sockets: region name -> ivshmem-server socket, for doorbell regions."""
    name = guest["name"]
    machine = guest["machine"] + (",cxl=on" if guest["cxl"] else "")
    memory = human(guest["memory"])
    if guest["cxl"]:
        # CXL windows sit above the guest's RAM in the memory map that maxmem reserves.
        memory += f",maxmem={human(guest['memory'] + sum(w['size'] for w in guest['cxl']['windows']))},slots=4"
    argv = [qemu, "-name", f"{name},process=labkit-qemu-{name}", "-nodefaults", "-no-user-config"]
    argv += ["-machine", machine, "-accel", guest["accel"], "-cpu", guest["cpu"]]
    argv += ["-smp", str(guest["cpus"]), "-m", memory, "-display", "none"]
    # the console goes to a log file; QMP and the guest agent listen on sockets in the run directory
    console_log = console_log or f"{run_dir}/console.log"
    argv += ["-chardev", f"file,id=console,path={console_log}", "-serial", "chardev:console"]
    argv += ["-qmp", f"unix:{run_dir}/qmp.sock,server=on,wait=off"]
    argv += [
        "-chardev",
        f"socket,id=agent,path={run_dir}/agent.sock,server=on,wait=off",
        "-device",
        "virtio-serial-pci",
    ]
    argv += ["-device", "virtserialport,chardev=agent,name=org.qemu.guest_agent.0"]
    if guest["kernel"]:
        argv += ["-kernel", guest["kernel"]]
        if guest["initrd"]:
            argv += ["-initrd", guest["initrd"]]
        if guest["append"]:
            argv += ["-append", guest["append"]]
    if guest["disk"]:
        argv += ["-drive", f"file={guest['disk']},if=virtio,format={guest['disk_format']}"]
    if guest["ssh_port"]:
        argv += ["-nic", f"user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:{guest['ssh_port']}-:22"]
    for region_name in guest["ivshmem"]:
        region = regions[region_name]
        if region["doorbell"]:
            socket = (ivshmem_sockets or {}).get(region_name)
            if not socket:
                raise GuestError(f"guest {name}: doorbell region {region_name} has no ivshmem-server socket")
            argv += ["-chardev", f"socket,path={socket},id=ivshmem-{region_name}"]
            argv += ["-device", f"ivshmem-doorbell,chardev=ivshmem-{region_name},vectors={region['vectors']}"]
        else:
            if not region["path"]:
                raise GuestError(f"guest {name}: ivshmem region {region_name} has no path for its shared file")
            argv += _file_backend(f"ivshmem-{region_name}", region["path"], region["size"])
            argv += ["-device", f"ivshmem-plain,memdev=ivshmem-{region_name}"]
    if guest["cxl"]:
        # last: QEMU puts a device without a bus on the newest bus, and only bridges fit a pxb-cxl
        argv += _cxl_args(guest, files_dir, qemu_version)
    return argv + guest["extra_args"]


def qemu_version(text):
    """(major, minor) from `qemu-system-x86_64 --version`."""
    match = re.search(r"version (\d+)\.(\d+)", text or "")
    if not match:
        raise GuestError(f"cannot read the QEMU version from {text!r}")
    return int(match.group(1)), int(match.group(2))


def systemd_word(arg):
    """One argument of an ExecStart= line: systemd expands % specifiers and $ variables and splits on
    whitespace, so double them, and quote what holds whitespace, quotes or backslashes."""
    word = arg.replace("%", "%%").replace("$", "$$")
    if word and not re.search(r"[\s\"'\\;]", word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_text(guest, argv, after=()):
    """The systemd service of a guest: QEMU in the foreground; the runtime directory (sockets, pid)
    is made at start and removed at stop, the backing files stay in the state directory."""
    name = guest["name"]
    ordering = " ".join(["network.target", *after])
    lines = [
        f"# labkit.cluster qemu_guest: guest {name}. Generated from the inventory; edit the inventory, not this file.",
        "[Unit]",
        f"Description=labkit QEMU guest {name}",
        f"After={ordering}",
    ]
    if after:
        lines.append(f"Requires={' '.join(after)}")
    lines += [
        "",
        "[Service]",
        "Type=simple",
        f"RuntimeDirectory=labkit/qemu/{name}",
        f"StateDirectory=labkit/qemu/{name}",
        "LogsDirectory=labkit/qemu",
        "ExecStart=" + " ".join(systemd_word(arg) for arg in argv),
        # QEMU ends the guest at once on SIGTERM; give it time to flush its backing files
        "TimeoutStopSec=30",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)
