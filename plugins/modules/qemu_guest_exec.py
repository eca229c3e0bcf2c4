#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: qemu_guest_exec
short_description: Run a command inside a QEMU guest through its guest agent
version_added: 0.1.0
description:
  - Runs a command in a guest started by M(labkit.cluster.qemu_guest), through the QEMU guest agent
    (C(qemu-ga)) on the guest's virtio-serial port C(org.qemu.guest_agent.0), whose host side is the socket
    C(/run/labkit/qemu/<name>/agent.sock). No network or SSH into the guest is needed.
  - Waits for the agent until O(timeout), so a guest that is still booting is waited for, not refused.
  - Like M(ansible.builtin.command), it reports a change and fails when the command exits with a code other
    than 0 (give O(expect_rc) for others); in check mode it runs nothing.
author:
  - labkit developers (@labkit)
attributes:
  check_mode:
    support: partial
    description: Can run in check_mode and return changed status prediction without modifying target.
    details: The command is not run in check mode; the module says so and reports no change.
  diff_mode:
    support: none
    description: A command has no before and after to show.
options:
  name:
    description: The guest's name, as in its definition (1 to 31 lower-case letters, digits and C(-)).
    type: str
  socket:
    description: The agent socket, for a guest not started by M(labkit.cluster.qemu_guest). Absolute path.
    type: path
  argv:
    description:
      - The command and its arguments; the first word is looked up in the guest's C(PATH). No shell is
        involved unless the command is one (C([/bin/sh, -c, ...])).
    type: list
    elements: str
    required: true
  stdin:
    description: Text given to the command on its standard input.
    type: str
  timeout:
    description: Seconds for all of it (waiting for the agent, running the command), 1 to 3600.
    type: int
    default: 60
  expect_rc:
    description: Exit codes that count as success.
    type: list
    elements: int
    default: [0]
notes:
  - Exactly one of O(name) and O(socket) is given.
  - The agent caps captured output (16 MiB in QEMU 7.2); RV(truncated) says when it did.
"""

EXAMPLES = r"""
- name: Wait for the guest and list its CXL devices
  labkit.cluster.qemu_guest_exec:
    name: cxl1
    argv: [ls, /sys/bus/cxl/devices]
    timeout: 180
  register: cxl_devices
  changed_when: false
"""

RETURN = r"""
rc:
  description: The command's exit code (none when a signal ended it).
  returned: when the command ran
  type: int
signal:
  description: The signal that ended the command, if one did.
  returned: when the command ran and a signal ended it
  type: int
stdout:
  description: Its standard output.
  returned: when the command ran
  type: str
stderr:
  description: Its standard error.
  returned: when the command ran
  type: str
stdout_lines:
  description: Its standard output, line by line.
  returned: when the command ran
  type: list
  elements: str
truncated:
  description: Whether the agent cut the captured output.
  returned: when the command ran
  type: bool
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.labkit.cluster.plugins.module_utils import guest_agent
from ansible_collections.labkit.cluster.plugins.module_utils import qemu_guest as spec

MAX_TIMEOUT = 3600


class QemuGuestExec:
    def __init__(self, module):
        self.module = module
        self.params = module.params

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, **extra)

    def validate(self):
        """Everything is checked before the socket is opened."""
        p = self.params
        try:
            if p["name"] is not None:
                self.socket = f"{spec.RUN_DIR}/{spec.check_name(p['name'], 'name')}/agent.sock"
            else:
                self.socket = spec.check_path(p["socket"], "socket")
        except spec.GuestError as exc:
            self.fail(str(exc))
        argv = p["argv"]
        if not argv or not argv[0]:
            self.fail("argv: give the command to run, such as [ls, /sys/bus/cxl/devices]")
        for index, word in enumerate(argv):
            # exec takes no NUL; a command name is one line
            if "\0" in word or (index == 0 and ("\n" in word or "\r" in word)):
                self.fail(f"argv[{index}]: {word!r} contains a NUL or (in the command) a newline")
        if not 1 <= p["timeout"] <= MAX_TIMEOUT:
            self.fail(f"timeout: {p['timeout']} must be from 1 to {MAX_TIMEOUT} seconds")
        if p["stdin"] is not None and "\0" in p["stdin"]:
            self.fail("stdin: contains a NUL; give text")

    def run(self):
        self.validate()
        p = self.params
        if self.module.check_mode:
            self.module.exit_json(changed=False, skipped=True, msg="not run in check mode")
        agent = guest_agent.GuestAgent(self.socket, time.monotonic() + p["timeout"])
        try:
            agent.connect()
            agent.sync()
            rc, signal, out, err, truncated = agent.execute(p["argv"], stdin=p["stdin"])
        except (guest_agent.AgentError, OSError) as exc:
            where = p["name"] or self.socket
            self.fail(f"guest {where}: {exc}", socket=self.socket)
        finally:
            agent.close()
        result = dict(
            changed=True,
            rc=rc,
            stdout=out,
            stderr=err,
            stdout_lines=out.splitlines(),
            stderr_lines=err.splitlines(),
            truncated=truncated,
            cmd=p["argv"],
        )
        if signal is not None:
            result["signal"] = signal
        if rc not in p["expect_rc"]:
            why = f"was ended by signal {signal}" if rc is None else f"exited with {rc}"
            self.fail(f"{os.path.basename(p['argv'][0])} {why} in guest {p['name'] or self.socket}", **result)
        self.module.exit_json(**result)


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            socket=dict(type="path"),
            argv=dict(type="list", elements="str", required=True),
            stdin=dict(type="str"),
            timeout=dict(type="int", default=60),
            expect_rc=dict(type="list", elements="int", default=[0]),
        ),
        required_one_of=[("name", "socket")],
        mutually_exclusive=[("name", "socket")],
        supports_check_mode=True,
    )


def main():
    QemuGuestExec(build_module()).run()


if __name__ == "__main__":
    main()
