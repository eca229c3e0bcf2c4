# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""iDRAC over SSH: the interactive racadm prompt (power, one-time boot) and `console com2`.

Needs paramiko on the host that runs the module; importing this file without it works, and using it
raises BmcError('dependency') with a message that says what to install.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

try:
    import paramiko

    HAS_PARAMIKO = True
except ImportError:
    paramiko = None
    HAS_PARAMIKO = False

from ansible_collections.labkit.cluster.plugins.module_utils.bmc_inputs import DEFAULT_SYSTEM_ID
from ansible_collections.labkit.cluster.plugins.module_utils.redfish import BmcError

PROMPT_RE = re.compile(r"(/admin1->|racadm>>)\s*$")
CONSOLE_ESCAPE = "\x1c"  # Ctrl-\ leaves `console com2` on an iDRAC
RACADM_RESETS = {
    "On": "powerup",
    "ForceOff": "powerdown",
    "GracefulShutdown": "graceshutdown",
    "PowerCycle": "powercycle",
    "ForceRestart": "hardreset",
}
BOOT_DEVICE_TO_TARGET = {"PXE": "Pxe", "HDD": "Hdd", "BIOS": "BiosSetup", "Normal": "None"}
TARGET_TO_BOOT_DEVICE = {v: k for k, v in BOOT_DEVICE_TO_TARGET.items()}


def missing_paramiko_message():
    return "the racadm_ssh transport and SSH consoles need the Python library paramiko: pip install paramiko"


class IdracSsh:
    """One interactive SSH session to an iDRAC that waits for its prompt between commands."""

    def __init__(self, host, port, username, password, *, timeout=30):
        if not HAS_PARAMIKO:
            raise BmcError("dependency", missing_paramiko_message())
        self.host = host
        self.port = port
        self.timeout = timeout
        self.client = paramiko.SSHClient()
        # iDRACs present self-signed host keys that change with every firmware reset; like NRK's
        # run.py (sshpass) the key is accepted, the password is what authenticates.
        self.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            self.client.connect(
                host,
                port=port,
                username=username,
                password=password,
                timeout=timeout,
                auth_timeout=timeout,
                banner_timeout=timeout,
                look_for_keys=False,
                allow_agent=False,
            )
        except paramiko.AuthenticationException:
            raise BmcError(
                "auth", f"SSH login to {host}:{port} as {username} was refused: check username and password"
            ) from None
        except (OSError, paramiko.SSHException) as exc:
            raise BmcError("unreachable", f"cannot reach the iDRAC SSH service at {host}:{port}: {exc}") from exc
        self.chan = self.client.invoke_shell(width=200)
        self.chan.settimeout(0.2)
        self.read_until_prompt()

    def read_until_prompt(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        buf = ""
        while not PROMPT_RE.search(buf):
            if time.monotonic() > deadline:
                raise BmcError(
                    "timeout", f"no iDRAC prompt from {self.host} within {timeout or self.timeout} s", output=buf
                )
            try:
                data = self.chan.recv(4096)
            except TimeoutError:
                continue
            if not data:
                raise BmcError("protocol", f"the iDRAC at {self.host} closed the session", output=buf)
            buf += data.decode("utf-8", "replace")
        return PROMPT_RE.sub("", buf)

    def command(self, line):
        """Type one line and return its output (the echo and the next prompt removed)."""
        self.chan.send(line + "\r\n")
        out = self.read_until_prompt()
        lines = out.replace("\r", "").split("\n")
        if lines and lines[0].strip() == line.strip():
            lines = lines[1:]
        return "\n".join(lines).strip()

    def start_console(self, command="console com2"):
        if any(ord(c) < 32 or ord(c) == 127 for c in command):
            raise BmcError("invalid", f"the console command must be one line without control characters: {command!r}")
        self.chan.send(command + "\r\n")

    def recv(self, size=4096):
        """Raw console bytes, b'' at EOF, None when nothing arrived within 0.2 s."""
        try:
            return self.chan.recv(size)
        except TimeoutError:
            return None

    def close(self):
        try:
            self.chan.close()
        finally:
            self.client.close()


class RacadmClient:
    """The power/boot interface of RedfishClient, spoken as racadm commands over SSH."""

    transport = "racadm_ssh"

    def __init__(self, host, port, username, password, *, timeout=30):
        self.session = IdracSsh(host, port, username, password, timeout=timeout)
        self.host = host

    def racadm(self, *args):
        out = self.session.command("racadm " + " ".join(args))
        if re.search(r"already powered", out, re.I):
            # Like Redfish's 409: the caller reads the power state back before believing it.
            raise BmcError(
                "conflict",
                f"racadm {' '.join(args)} on {self.host} answered: {out}",
                bmc_message=out,
                message_ids=[],
                output=out,
            )
        if out.startswith("ERROR") or "\nERROR" in out:
            raise BmcError("racadm", f"racadm {' '.join(args)} failed on {self.host}: {out}", output=out)
        return "done", out

    def find_system(self, system_id=None):
        if system_id and system_id != DEFAULT_SYSTEM_ID:
            raise BmcError(
                "not_found",
                f"system id {system_id!r} not found: racadm over SSH knows only {DEFAULT_SYSTEM_ID}",
                systems=[DEFAULT_SYSTEM_ID],
            )
        return DEFAULT_SYSTEM_ID

    def power_state(self):
        out = self.racadm("serveraction", "powerstatus")[1]
        match = re.search(r"power status:\s*(ON|OFF)", out, re.I)
        if not match:
            raise BmcError("protocol", f"cannot read the power status from {out!r}")
        return "On" if match.group(1).upper() == "ON" else "Off"

    def allowed_resets(self):
        return list(RACADM_RESETS)

    def reset(self, reset_type):
        if reset_type not in RACADM_RESETS:
            raise BmcError(
                "not_allowed",
                f"racadm has no action for ResetType {reset_type}; allowed values: " + ", ".join(RACADM_RESETS),
            )
        return self.racadm("serveraction", RACADM_RESETS[reset_type])[0]

    def _get(self, key):
        out = self.racadm("get", key)[1]
        match = re.search(r"^\s*\w+\s*=\s*(\S*)", out, re.M)
        return match.group(1) if match else None

    def boot_override(self):
        device = self._get("iDRAC.ServerBoot.FirstBootDevice")
        once = self._get("iDRAC.ServerBoot.BootOnce")
        target = BOOT_DEVICE_TO_TARGET.get(device, device)
        enabled = "Disabled" if target in (None, "None") else ("Once" if once == "Enabled" else "Continuous")
        return {"target": target, "enabled": enabled, "mode": None, "allowed_targets": list(TARGET_TO_BOOT_DEVICE)}

    def set_boot_override(self, target, mode=None):
        if mode:
            raise BmcError("not_allowed", "boot_mode needs the redfish transport; racadm_ssh cannot set it")
        self.racadm("set", "iDRAC.ServerBoot.FirstBootDevice", TARGET_TO_BOOT_DEVICE[target])
        self.racadm("set", "iDRAC.ServerBoot.BootOnce", "Disabled" if target == "None" else "Enabled")

    def close(self):
        self.session.close()
