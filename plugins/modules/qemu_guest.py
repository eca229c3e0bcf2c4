#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: qemu_guest
short_description: Run a QEMU guest declared as data as a systemd service
version_added: 0.1.0
description:
  - Validates a guest definition (docs/modules/qemu_guest.md) before it touches anything, naming the field at
    fault, and turns it into the QEMU command line of a systemd service C(labkit-qemu-<name>.service).
  - A guest whose definition (and so its unit) is unchanged is left running as it is; a changed definition
    rewrites the unit and restarts that guest only.
  - The serial console goes to C(/var/log/labkit/qemu/<name>.log); QMP and the guest agent listen on
    sockets in C(/run/labkit/qemu/<name>/); backing files (CXL memory and label storage) live in
    C(/var/lib/labkit/qemu/<name>/) and are kept when the guest is removed.
  - CXL volatile devices need QEMU 8.0 or later; on an older QEMU the module refuses them, naming the version.
author:
  - labkit developers (@labkit)
attributes:
  check_mode:
    support: full
    description: Reports what would change (unit file, start, restart, stop) without doing it.
  diff_mode:
    support: full
    description: Shows the unit file before and after.
options:
  guest:
    description:
      - The guest definition; keys C(name), C(memory), C(cpus), C(kernel), C(initrd), C(append), C(disk),
        C(disk_format), C(machine), C(accel), C(cpu), C(ssh_port), C(cxl), C(ivshmem), C(extra_args)
        (docs/modules/qemu_guest.md). Unknown keys are refused.
    type: dict
    required: true
  regions:
    description: The QEMU host's ivshmem regions, which the C(ivshmem) list of O(guest) names.
    type: list
    elements: dict
    default: []
  ivshmem_sockets:
    description: Region name to the socket of its ivshmem-server, for doorbell regions.
    type: dict
    default: {}
  state:
    description:
      - V(started) runs the guest (restarting it when its unit changed); V(stopped) stops it and keeps the
        unit; V(absent) stops it and removes the unit, keeping its backing files.
    type: str
    choices: [started, stopped, absent]
    default: started
  enabled:
    description: Start the guest at boot (V(true)) or not.
    type: bool
    default: true
  qemu:
    description: The QEMU binary, a name looked up in PATH or an absolute path.
    type: str
    default: qemu-system-x86_64
  after:
    description: Units the guest needs first (an ivshmem-server for a doorbell region), as After= and Requires=.
    type: list
    elements: str
    default: []
  restart:
    description:
      - Restart a running guest even when its unit did not change, because a file it boots from (kernel,
        initrd, disk) did. With O(state=started) only; a stopped guest is just started.
    type: bool
    default: false
  unit_dir:
    description: Where the unit file is written.
    type: path
    default: /etc/systemd/system
"""

EXAMPLES = r"""
- name: A guest with one persistent CXL type-3 device
  labkit.cluster.qemu_guest:
    guest:
      name: cxl1
      memory: 2G
      cpus: 2
      kernel: /boot/vmlinuz-6.1.0-28-amd64
      initrd: /var/lib/labkit/qemu/initramfs.cpio
      append: console=ttyS0
      cxl:
        devices:
          - {name: mem0, kind: persistent, size: 256M}
"""

RETURN = r"""
unit:
  description: The service's name.
  returned: always
  type: str
  sample: labkit-qemu-cxl1.service
argv:
  description: The QEMU command line of the guest.
  returned: when state is not absent
  type: list
  elements: str
qemu_version:
  description: The QEMU version the command line is for.
  returned: when state is not absent
  type: str
  sample: "7.2"
console_log:
  description: The file the guest's serial console goes to.
  returned: always
  type: str
  sample: /var/log/labkit/qemu/cxl1.log
restarted:
  description: Whether a running guest was restarted because its definition changed (or O(restart) asked).
  returned: always
  type: bool
active:
  description: Whether the service runs when the module ends (what it would be, in check mode).
  returned: always
  type: bool
"""

import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.labkit.cluster.plugins.module_utils import atomic_file
from ansible_collections.labkit.cluster.plugins.module_utils import qemu_guest as spec

STATE_DIR = "/var/lib/labkit/qemu"
LOG_DIR = "/var/log/labkit/qemu"
UNIT_NAME = r"^[A-Za-z0-9:_.@\\-]+\.(service|socket|mount|target)$"


class QemuGuest:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.result = {"changed": False, "restarted": False}

    def fail(self, msg, **extra):
        self.result.update(extra)
        self.module.fail_json(msg=msg, **self.result)

    def systemctl(self, *args, check=True):
        rc, out, err = self.module.run_command([self.systemctl_path, *args])
        if check and rc != 0:
            self.fail(f"systemctl {' '.join(args)} failed", rc=rc, stdout=out, stderr=err)
        return rc, out.strip()

    def validate(self):
        """Everything is checked before anything is touched."""
        p = self.params
        for unit in p["after"]:
            if not isinstance(unit, str) or not re.fullmatch(UNIT_NAME, unit):
                self.fail(f"after: {unit!r} is not a unit name such as labkit-ivshmem-shm0.service")
        try:
            self.regions = spec.validate_regions(p["regions"])
            name = spec.check_name((p["guest"] or {}).get("name"), "guest name")
        except spec.GuestError as exc:
            self.fail(str(exc))
        self.name = name
        self.unit = f"labkit-qemu-{name}.service"
        self.unit_path = os.path.join(p["unit_dir"], self.unit)
        self.console_log = f"{LOG_DIR}/{name}.log"
        self.result.update(unit=self.unit, console_log=self.console_log)
        self.systemctl_path = self.module.get_bin_path("systemctl", required=True)
        if p["state"] == "absent":
            return
        self.qemu = p["qemu"] if os.path.isabs(p["qemu"]) else self.module.get_bin_path(p["qemu"])
        if not self.qemu or not os.access(self.qemu, os.X_OK):
            self.fail(f"qemu: {p['qemu']} is not an executable QEMU; install qemu-system-x86 or give its path")
        rc, out, err = self.module.run_command([self.qemu, "--version"])
        try:
            version = spec.qemu_version(out)
            guest = spec.validate_guest(p["guest"], self.regions, version)
            self.argv = spec.qemu_argv(
                guest,
                self.regions,
                run_dir=f"{spec.RUN_DIR}/{name}",
                files_dir=f"{STATE_DIR}/{name}",
                console_log=self.console_log,
                qemu=self.qemu,
                qemu_version=version,
                ivshmem_sockets=p["ivshmem_sockets"],
            )
        except spec.GuestError as exc:
            self.fail(str(exc), rc=rc, stdout=out, stderr=err)
        self.text = spec.unit_text(guest, self.argv, after=p["after"])
        self.result.update(argv=self.argv, qemu_version="%d.%d" % version)

    def is_active(self):
        return self.systemctl("is-active", "--quiet", self.unit, check=False)[0] == 0

    def is_enabled(self):
        return self.systemctl("is-enabled", "--quiet", self.unit, check=False)[0] == 0

    def wait_running(self):
        """A QEMU that refuses its command line exits at once: catch it here, with its reason."""
        for _attempt in range(10):
            time.sleep(0.5)
            if not self.is_active():
                _rc, log = self.systemctl("status", "--no-pager", "--lines=20", self.unit, check=False)
                self.fail(f"guest {self.name} did not keep running; see {self.console_log}", stdout=log)

    def write(self, change):
        try:
            change.apply()
        except OSError as exc:
            self.fail(f"cannot write {self.unit_path}: {exc.strerror or exc}; check unit_dir")

    def apply(self):
        self.validate()
        check = self.module.check_mode
        try:
            text = None if self.params["state"] == "absent" else self.text
            change = atomic_file.FileChange(self.unit_path, text, mode=0o644, module=self.module)
        except OSError as exc:
            self.fail(f"cannot read {self.unit_path}: {exc.strerror or exc}")
        if self.module._diff:
            self.result["diff"] = change.diff()
        active = self.is_active() if change.before is not None else False
        state = self.params["state"]
        if state == "absent":
            if active and not check:
                self.systemctl("stop", self.unit)
            if change.changed and not check:
                self.systemctl("disable", self.unit, check=False)
                self.write(change)
                self.systemctl("daemon-reload")
            self.result.update(changed=change.changed or active, active=False)
            return self.module.exit_json(**self.result)
        if change.changed:
            self.result["changed"] = True
            if not check:
                self.write(change)
                self.systemctl("daemon-reload")
        if state == "started":
            if active and (change.changed or self.params["restart"]):
                self.result.update(changed=True, restarted=True)
                if not check:
                    self.systemctl("restart", self.unit)
                    self.wait_running()
            elif not active:
                self.result["changed"] = True
                if not check:
                    self.systemctl("start", self.unit)
                    self.wait_running()
        elif active:
            self.result["changed"] = True
            if not check:
                self.systemctl("stop", self.unit)
        enabled = self.is_enabled() if change.before is not None else False
        if enabled != self.params["enabled"]:
            self.result["changed"] = True
            if not check:
                self.systemctl("enable" if self.params["enabled"] else "disable", self.unit)
        self.result["active"] = state == "started"
        self.module.exit_json(**self.result)


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            guest=dict(type="dict", required=True),
            regions=dict(type="list", elements="dict", default=[]),
            ivshmem_sockets=dict(type="dict", default={}),
            state=dict(type="str", default="started", choices=["started", "stopped", "absent"]),
            enabled=dict(type="bool", default=True),
            qemu=dict(type="str", default="qemu-system-x86_64"),
            after=dict(type="list", elements="str", default=[]),
            restart=dict(type="bool", default=False),
            unit_dir=dict(type="path", default="/etc/systemd/system"),
        ),
        supports_check_mode=True,
    )


def main():
    QemuGuest(build_module()).apply()


if __name__ == "__main__":
    main()
