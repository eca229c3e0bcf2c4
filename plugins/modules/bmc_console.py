#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bmc_console
short_description: Capture a server's serial console to a log file until a line matches
version_added: 0.1.0
description:
  - Reads a serial console, either through the iDRAC's SSH service (C(console com2), as NRK's C(run.py)
    does) or from a TCP serial port (a console server, or QEMU's C(-serial tcp:)), and writes everything
    it receives to a log file.
  - Stops when a line matches O(match), when no output arrived for O(idle_timeout) seconds, or when
    O(timeout) seconds have passed, whichever comes first.
  - With O(match) set, the module fails unless a line matched; without it, an idle console is success
    (NRK's C(boot-timeout) behaviour).
  - The C(ssh) source needs the Python library paramiko on the host that runs the module.
  - Every input is validated before the module connects or writes anything; a refused value fails with
    C(error_kind=invalid).
author:
  - labkit developers (@labkit)
attributes:
  check_mode:
    support: none
    description: Reading a console is the whole point; the module does not run in check mode.
  diff_mode:
    support: none
    description: Nothing to compare.
extends_documentation_fragment:
  - labkit.cluster.idrac
options:
  source:
    description:
      - C(ssh) logs into the iDRAC and runs O(console_command).
      - C(tcp) connects to a TCP port that carries the serial console; it needs a port (O(port), or
        C(host:port) in O(host)).
    type: str
    choices: [ssh, tcp]
    default: ssh
  username:
    description: iDRAC user for C(ssh).
    type: str
  password:
    description: iDRAC password for C(ssh).
    type: str
  console_command:
    description: Command that attaches the serial console on the iDRAC prompt (one line, no control characters).
    type: str
    default: console com2
  log_path:
    description:
      - File the console output is written to (parent directories are created).
      - Refused when it is a directory, lies under C(/proc), C(/sys) or C(/dev), or cannot be written.
    type: path
    required: true
  append:
    description: Append to O(log_path) instead of replacing it.
    type: bool
    default: false
  match:
    description:
      - Python regular expression searched in each console line; capture stops at the first match.
    type: str
  idle_timeout:
    description: Stop when the console stayed silent for this many seconds (more than 0, at most 86400).
    type: float
    default: 30
  timeout:
    description: Stop after this many seconds in total, output or not (more than 0, at most 86400).
    type: float
    default: 600
  connect_timeout:
    description: Seconds to wait for the connection (and, for C(ssh), the iDRAC prompt); more than 0, at most 300.
    type: int
    default: 30
notes:
  - The password is never logged.
  - Only one SSH console session can be attached to an iDRAC serial port at a time.
seealso:
  - module: labkit.cluster.idrac_power
"""

EXAMPLES = r"""
- name: Power-cycle into PXE, then wait for the NRK kernel to say it booted
  labkit.cluster.idrac_power:
    host: "{{ idrac_host }}"
    username: "{{ idrac_user }}"
    password: "{{ idrac_password }}"
    boot_override: pxe
    state: power_cycled
  delegate_to: localhost

- name: Read the console until the kernel is up
  labkit.cluster.bmc_console:
    host: "{{ idrac_host }}"
    username: "{{ idrac_user }}"
    password: "{{ idrac_password }}"
    log_path: "logs/{{ inventory_hostname }}-console.log"
    match: "NRK booted"
    idle_timeout: 60
    timeout: 600
  delegate_to: localhost
  register: boot

- name: A QEMU guest's serial port on a TCP socket, until it goes quiet
  labkit.cluster.bmc_console:
    source: tcp
    host: 127.0.0.1
    port: 4555
    log_path: /tmp/guest-console.log
    idle_timeout: 5
"""

RETURN = r"""
matched:
  description: Whether a line matched O(match).
  returned: always
  type: bool
  sample: true
matched_line:
  description: The first line that matched O(match), or null.
  returned: always
  type: str
  sample: "NRK booted: init process started"
match_groups:
  description: Groups captured by O(match) on that line.
  returned: always
  type: list
  elements: str
  sample: []
reason:
  description: Why the capture stopped, one of C(matched), C(idle), C(timeout), C(eof).
  returned: always
  type: str
  sample: matched
error_kind:
  description:
    - What failed (invalid, unreachable, auth, timeout, protocol, dependency, io, or the stop reason when
      O(match) never matched). C(invalid) means an option was refused before anything was done.
  returned: failure
  type: str
  sample: invalid
log_path:
  description: Absolute path of the log file.
  returned: always
  type: str
  sample: /home/lab/logs/r640-console.log
bytes:
  description: Bytes written to the log in this run.
  returned: always
  type: int
  sample: 4211
lines:
  description: Complete lines received in this run.
  returned: always
  type: int
  sample: 57
elapsed:
  description: Seconds spent reading.
  returned: always
  type: float
  sample: 41.3
tail:
  description: The last lines received (at most 20), to show what the console said.
  returned: always
  type: list
  elements: str
  sample: ["[ INFO]: Started at 0.000s"]
"""

import os
import re
import select
import socket
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labkit.cluster.plugins.module_utils import bmc_inputs as inputs
from ansible_collections.labkit.cluster.plugins.module_utils.bmc_inputs import InvalidInput
from ansible_collections.labkit.cluster.plugins.module_utils.racadm import CONSOLE_ESCAPE, IdracSsh
from ansible_collections.labkit.cluster.plugins.module_utils.redfish import BmcError

TAIL = 20


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            source=dict(type="str", default="ssh", choices=["ssh", "tcp"]),
            host=dict(type="str", required=True, aliases=["baseuri"]),
            port=dict(type="int"),
            username=dict(type="str"),
            password=dict(type="str", no_log=True),
            console_command=dict(type="str", default="console com2"),
            log_path=dict(type="path", required=True),
            append=dict(type="bool", default=False),
            match=dict(type="str"),
            idle_timeout=dict(type="float", default=30),
            timeout=dict(type="float", default=600),
            connect_timeout=dict(type="int", default=30),
        ),
        # source=tcp needs a port, in port or in host: validate() checks it.
        required_if=[("source", "ssh", ("username", "password"))],
        supports_check_mode=False,
    )


def validate(params):
    """Check every option before connecting or writing; returns (address, port, log_path). Raises InvalidInput."""
    address, port = inputs.parse_host(params["host"], params["port"])
    if params["source"] == "tcp" and port is None:
        raise InvalidInput("source=tcp needs a port (in port or as host:port)")
    inputs.check_text("username", params["username"])
    inputs.check_text("console_command", params["console_command"])
    inputs.check_range("idle_timeout", params["idle_timeout"], 0, inputs.CONSOLE_TIMEOUT_MAX)
    inputs.check_range("timeout", params["timeout"], 0, inputs.CONSOLE_TIMEOUT_MAX)
    inputs.check_range("connect_timeout", params["connect_timeout"], 0, inputs.HTTP_TIMEOUT_MAX)
    if params["match"]:
        try:
            re.compile(params["match"])
        except re.error as exc:
            raise InvalidInput(f"match is not a valid regular expression: {exc}") from None
    log_path = inputs.check_log_path(params["log_path"])
    return address, port or inputs.DEFAULT_SSH_PORT, log_path


class TcpConsole:
    def __init__(self, host, port, timeout):
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise BmcError("unreachable", f"cannot connect to the serial console at {host}:{port}: {exc}") from exc

    def recv(self, size=4096):
        ready = select.select([self.sock], [], [], 0.2)[0]
        if not ready:
            return None
        try:
            return self.sock.recv(size)
        except OSError:
            return b""

    def close(self):
        self.sock.close()


class SshConsole:
    def __init__(self, host, port, username, password, *, timeout, command):
        self.escape = CONSOLE_ESCAPE
        self.session = IdracSsh(host, port, username, password, timeout=timeout)
        self.session.start_console(command)

    def recv(self, size=4096):
        return self.session.recv(size)

    def close(self):
        try:
            self.session.chan.send(self.escape)
        except OSError:
            pass
        self.session.close()


class ConsoleCapture:
    """Reads a console into a log file and decides when to stop."""

    def __init__(self, console, log, pattern, *, idle_timeout, timeout, clock=time.monotonic):
        self.console = console
        self.log = log
        self.pattern = re.compile(pattern) if pattern else None
        self.idle_timeout = idle_timeout
        self.timeout = timeout
        self.clock = clock
        self.bytes = 0
        self.lines = 0
        self.tail = []
        self.matched = None
        self.partial = ""

    def _line(self, line):
        self.lines += 1
        self.tail = [*self.tail, line][-TAIL:]
        if self.pattern and self.matched is None:
            found = self.pattern.search(line)
            if found:
                self.matched = (line, list(found.groups()))

    def feed(self, data):
        self.log.write(data)
        self.log.flush()
        self.bytes += len(data)
        text = self.partial + data.decode("utf-8", "replace").replace("\r", "")
        *complete, self.partial = text.split("\n")
        for line in complete:
            self._line(line)
            if self.matched:
                return True
        # A prompt or a line without its newline yet can match too.
        if self.pattern and self.matched is None and self.partial and self.pattern.search(self.partial):
            found = self.pattern.search(self.partial)
            self.matched = (self.partial, list(found.groups()))
        return self.matched is not None

    def run(self):
        start = last = self.clock()
        while True:
            now = self.clock()
            if now - start >= self.timeout:
                return "timeout", now - start
            if now - last >= self.idle_timeout:
                return "idle", now - start
            data = self.console.recv()
            if data is None:
                continue
            if data == b"":
                return "eof", self.clock() - start
            last = self.clock()
            if self.feed(data):
                return "matched", last - start


def main():
    module = build_module()
    p = module.params
    try:
        address, port, log_path = validate(p)
    except InvalidInput as exc:
        module.fail_json(msg=str(exc), error_kind="invalid")
    console = None
    try:
        if p["source"] == "tcp":
            console = TcpConsole(address, port, p["connect_timeout"])
        else:
            console = SshConsole(
                address,
                port,
                p["username"],
                p["password"],
                timeout=p["connect_timeout"],
                command=p["console_command"],
            )
        try:
            os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
            log = open(log_path, "ab" if p["append"] else "wb")
        except OSError as exc:
            raise BmcError("io", f"cannot write the console log {log_path}: {exc.strerror or exc}") from None
        with log:
            capture = ConsoleCapture(console, log, p["match"], idle_timeout=p["idle_timeout"], timeout=p["timeout"])
            reason, elapsed = capture.run()
    except BmcError as exc:
        module.fail_json(msg=exc.msg, error_kind=exc.kind, log_path=log_path, **exc.details)
    finally:
        if console is not None:
            console.close()

    if capture.partial:
        capture.tail = [*capture.tail, capture.partial][-TAIL:]
    result = dict(
        changed=False,
        matched=capture.matched is not None,
        matched_line=capture.matched[0] if capture.matched else None,
        match_groups=capture.matched[1] if capture.matched else [],
        reason=reason,
        log_path=log_path,
        bytes=capture.bytes,
        lines=capture.lines,
        elapsed=round(elapsed, 2),
        tail=capture.tail,
    )
    if p["match"] and not capture.matched:
        what = {
            "idle": f"the console was silent for {p['idle_timeout']} s",
            "timeout": f"{p['timeout']} s passed",
            "eof": "the console closed",
        }[reason]
        module.fail_json(
            msg=f"no console line matched {p['match']!r}: {what}; see {log_path}", error_kind=reason, **result
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
