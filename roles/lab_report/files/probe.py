"""What the lab report shows of a host, read in one round trip (run by `raw` as python3 -c).

Prints one JSON object: the running kernel, what the boot loader commits (Raspberry Pi firmware's
config.txt or GRUB's grubenv), the modules labkit loads (kmod's records under /run/labkit/kmod and
the modules-load.d files) with their live parameters, and the sysctl.d keys with their live values.
Reads only; never fails on a file it cannot read.
"""

import glob
import json
import os
import re
import sys


def read(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def conf_lines(path):
    for raw in (read(path) or "").splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";")):
            yield line


def rpi_boot(config):
    settings, section = {}, "all"
    for line in conf_lines(config):
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and section in ("all", "pi4"):  # the filters a Pi 4 applies; later lines win
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
    prefix = settings.get("os_prefix", "")
    match = re.match(r"labkit-([0-9a-f]{16})/", prefix)
    return {
        "loader": "rpi-firmware",
        "committed": prefix + settings.get("kernel", "kernel8.img"),
        "artifact": match.group(1) if match else None,
        "fallback": "config.txt.labkit-prev" if os.path.exists(config + ".labkit-prev") else None,
        "trial_pending": os.path.exists(os.path.join(os.path.dirname(config), "tryboot.txt")),
    }


def grub_boot(grubenv, record_path="/var/lib/labkit/grub_kernel/committed.json"):
    env = dict(line.split("=", 1) for line in conf_lines(grubenv) if "=" in line)
    try:
        record = json.loads(read(record_path) or "{}")
    except ValueError:
        record = {}
    # grub_kernel's record of the kernel it committed; it speaks for GRUB's default only while it names it
    ours = isinstance(record, dict) and record.get("entry") and record.get("entry") == env.get("saved_entry")
    return {
        "loader": "grub",
        "committed": env.get("saved_entry"),
        "artifact": record.get("id") if ours else None,
        "fallback": record.get("previous") if ours else None,
        "trial_pending": bool(env.get("next_entry")),
    }


def kernel():
    info = {"running": os.uname().release}
    if os.path.exists("/boot/firmware/config.txt"):
        info.update(rpi_boot("/boot/firmware/config.txt"))
    elif os.path.exists("/boot/grub/grubenv"):
        info.update(grub_boot("/boot/grub/grubenv"))
    return info


def modules():
    names = {os.path.basename(path)[: -len(".json")] for path in glob.glob("/run/labkit/kmod/*.json")}
    for path in glob.glob("/etc/modules-load.d/*.conf"):
        names.update(line.split()[0] for line in conf_lines(path))
    out = []
    for name in sorted(names):
        sysdir = "/sys/module/" + name.replace("-", "_")
        if not os.path.exists(sysdir + "/initstate") and not os.path.isdir(sysdir + "/sections"):
            continue  # built in or not loaded
        wanted = {}
        for line in conf_lines("/etc/modprobe.d/zz-%s.conf" % name):
            fields = line.split()
            if fields[:2] == ["options", name]:
                wanted.update(field.partition("=")[::2] for field in fields[2:])
        params = {key: (read("%s/parameters/%s" % (sysdir, key)) or "").strip() for key in sorted(wanted)}
        out.append(
            {
                "name": name,
                "version": (read(sysdir + "/version") or "").strip() or None,
                "srcversion": (read(sysdir + "/srcversion") or "").strip() or None,
                "params": params,
            }
        )
    return out


def sysctls():
    out = {}
    for path in sorted(glob.glob("/etc/sysctl.d/*.conf")):
        for line in conf_lines(path):
            key, sep = line.partition("=")[:2]
            key = key.strip().lstrip("-")
            if sep and re.match(r"^[A-Za-z0-9_.*/-]+$", key) and "*" not in key:
                live = read("/proc/sys/" + (key if "/" in key else key.replace(".", "/")))
                out[key] = " ".join(live.split()) if live is not None else None
    return out


json.dump({"kernel": kernel(), "modules": modules(), "sysctls": sysctls()}, sys.stdout)
sys.stdout.write("\n")
