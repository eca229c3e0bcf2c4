#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: sysctl
short_description: Set a Linux kernel parameter (sysctl), verify it, and keep it in a sysctl.d file
version_added: 0.1.0
description:
  - Sets one sysctl key in the running kernel, reads it back and verifies it, and records it in a file
    under C(/etc/sysctl.d/), editing only the lines of that key.
  - Compares values without regard to whitespace (C(4096 87380 6291456) equals C(4096<TAB>87380<TAB>6291456))
    and treats C(true)/C(yes)/C(on) as C(1) and C(false)/C(no)/C(off) as C(0) for numeric keys.
  - Can wait for a key that appears only once a kernel module is loaded, and names the module that usually
    provides the lab's known keys when it never appears.
  - Can work inside a named network namespace, where the C(net.*) keys have their own values.
  - Applies only the key it changed; C(sysctl --system) runs only when O(reload_system=true).
  - Validates every input before it reads or writes anything (see O(name), O(value), O(netns), O(sysctl_file)).
  - A task that fails after it changed the running value or the file reports C(changed=true).
author:
  - labkit developers (@labkit)
attributes:
  check_mode:
    support: full
    description:
      - Reports the change (running value and file) without making it.
      - A key that does not exist yet is reported as a change with a warning instead of waiting for it.
  diff_mode:
    support: full
    description: Shows the running value and the sysctl.d file before and after.
options:
  name:
    description:
      - The sysctl key, in dotted (C(net.ipv4.tcp_rmem)) or slashed (C(net/ipv4/conf/eth0.100/forwarding)) form.
      - Refused, with a message that says what to fix, when it is not a name under C(/proc/sys) - an empty, C(.)
        or C(..) component (also C(//) in dotted form, which is C(..)), a leading C(/), C(-), C(#) or C(;), a C(=),
        whitespace or a control character anywhere - or when it resolves outside C(/proc/sys).
    type: str
    required: true
    aliases: [key]
  value:
    description:
      - The value to set. Required when O(state=present).
      - Booleans become C(1)/C(0); runs of spaces and tabs count as one space.
      - A string, number or boolean on one line; lists, mappings and values with a newline or another control
        character (other than a tab) are refused.
      - The kernel checks the range; a value it refuses, or clamps (with O(verify=true)), fails the task.
    type: raw
    aliases: [val]
  state:
    description:
      - V(present) sets the key (running kernel and file); V(absent) removes the key's lines from the file.
        The running kernel keeps its value on V(absent), since a sysctl cannot be unset.
    type: str
    choices: [present, absent]
    default: present
  reload:
    description:
      - Set the key in the running kernel (only this key). V(false) only edits the file.
    type: bool
    default: true
  verify:
    description:
      - After setting, read the key back and fail when the kernel shows another value (a clamped or refused value).
    type: bool
    default: true
  persistent:
    description:
      - Record the key in O(sysctl_file) so it is set at boot.
      - Defaults to V(true), or to V(false) when O(netns) is set (boot-time sysctl.d files apply to the initial
        namespace only).
    type: bool
  sysctl_file:
    description:
      - The file that keeps the key. A bare file name is taken as relative to C(/etc/sysctl.d/); otherwise give
        an absolute path (other relative paths, a directory and names with control characters are refused).
      - Other keys, comments and blank lines of the file are kept as they are; the file is replaced atomically,
        keeping its owner, mode, extended attributes and SELinux label. A symlink is kept and the file it points to
        is updated (as Debian's C(/etc/sysctl.d/99-sysctl.conf) pointing to C(/etc/sysctl.conf)).
      - The edit holds a lock on the file's directory, so tasks writing the same file at the same time (for example
        on a C(delegate_to) host, or from several plays) keep each other's keys.
    type: path
    default: 99-labkit.conf
  backup:
    description:
      - Keep a copy of O(sysctl_file), with a timestamp in its name, before changing it.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for the key to appear (for keys a kernel module registers when it loads).
      - V(0) fails at once when the key does not exist. Negative values are refused.
    type: int
    default: 0
  netns:
    description:
      - Name of a network namespace (as in C(ip netns list)) to apply the key in, through C(ip netns exec).
      - Only C(net.*) keys have their own value in a network namespace; other keys are host-wide and are refused
        with O(netns) set. A name with C(/), whitespace or control characters, C(.), C(..) or a leading C(-) is
        refused.
    type: str
  reload_system:
    description:
      - After a change, run C(sysctl --system), which applies every sysctl configuration file. Off by default,
        so only the changed key is applied.
    type: bool
    default: false
  ignoreerrors:
    description:
      - When the key does not exist (after O(wait_timeout)), only edit the file and warn instead of failing.
    type: bool
    default: false
notes:
  - Values are written to C(/proc/sys) directly (and with C(sysctl -w) inside O(netns)), so no other key is touched.
requirements:
  - C(sysctl) (procps) and C(ip) (iproute2) when O(netns) or O(reload_system) is used
seealso:
  - module: labkit.cluster.kmod
"""

EXAMPLES = r"""
- name: Bigger TCP receive buffers, kept across reboots in /etc/sysctl.d/90-tcp.conf
  labkit.cluster.sysctl:
    name: net.ipv4.tcp_rmem
    value: 4096 87380 6291456
    sysctl_file: 90-tcp.conf

- name: Turn on web10g statistics once tcp_estats_nl has registered the key
  labkit.cluster.sysctl:
    name: net.ipv4.tcp_estats
    value: 127
    wait_timeout: 30

- name: Forwarding inside a test namespace only (not persistent)
  labkit.cluster.sysctl:
    name: net.ipv4.ip_forward
    value: true
    netns: lab-red

- name: Stop setting a key at boot
  labkit.cluster.sysctl:
    name: net.ipv4.tcp_rmem
    state: absent
    sysctl_file: 90-tcp.conf
"""

RETURN = r"""
name:
  description: The key, as given.
  returned: always
  type: str
  sample: net.ipv4.tcp_rmem
value:
  description:
    - The running value after the task, whitespace normalised (the requested value in check mode).
    - Null when the key does not exist.
  returned: always
  type: str
  sample: 4096 87380 6291456
previous_value:
  description: The running value before the task, whitespace normalised; null when the key did not exist.
  returned: always
  type: str
  sample: 4096 131072 6291456
runtime_changed:
  description: Whether the running value was (or in check mode would be) changed.
  returned: always
  type: bool
  sample: true
file_changed:
  description: Whether O(sysctl_file) was (or would be) changed.
  returned: always
  type: bool
  sample: true
sysctl_file:
  description: The file that keeps the key; null when not persistent.
  returned: always
  type: str
  sample: /etc/sysctl.d/99-labkit.conf
backup_file:
  description: The copy made by O(backup).
  returned: when a backup was made
  type: str
  sample: /etc/sysctl.d/99-labkit.conf.2024-05-01@12:00:00~
netns:
  description: The network namespace the key was applied in; null for the initial namespace.
  returned: always
  type: str
  sample: lab-red
waited:
  description: Seconds spent waiting for the key to appear.
  returned: always
  type: float
  sample: 1.5
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.labkit.cluster.plugins.module_utils import atomic_file
from ansible_collections.labkit.cluster.plugins.module_utils import sysctl_file as sf

NETNS_DIR = "/run/netns"
POLL_INTERVAL = 0.25


class SysctlKey:
    """One sysctl key in the running kernel (optionally in a network namespace) and in a sysctl.d file."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.name = self.params["name"]
        self.netns = self.params["netns"]
        self.proc_path = None
        self.slashed = None
        persistent = self.params["persistent"]
        self.persistent = (not self.netns) if persistent is None else persistent
        path = self.params["sysctl_file"]
        self.file_path = path if os.sep in path else os.path.join(sf.SYSCTL_D, path)
        self.warnings = []
        # What the task has really changed so far: a failure after a change still reports changed.
        self.runtime_done = False
        self.file_done = False
        self.result = {}

    def fail(self, msg, **extra):
        result = dict(self.result)
        result.update(extra)
        result["runtime_changed"] = self.runtime_done
        result["file_changed"] = self.file_done
        result["changed"] = self.runtime_done or self.file_done
        for warning in self.warnings:
            self.module.warn(warning)
        self.module.fail_json(msg=msg, **result)

    def validate(self):
        """Refuse a hostile or impossible input before anything is read or written."""
        p = self.params
        try:
            if self.netns is not None:
                sf.check_netns_name(self.netns)
            self.proc_path = sf.safe_proc_path(self.name)
            self.slashed = "/".join(sf.check_key(self.name))
            if self.netns is not None:
                sf.check_netns_key(self.name)
            if p["value"] is not None:
                sf.check_value(p["value"])
        except sf.InvalidInput as exc:
            self.fail(str(exc))
        if p["wait_timeout"] < 0:
            self.fail("wait_timeout is %d: give 0 (do not wait) or more seconds" % p["wait_timeout"])
        if self.persistent:
            self.validate_file()

    def validate_file(self):
        path = self.params["sysctl_file"]
        if any(not ch.isprintable() for ch in path):
            self.fail("sysctl_file %r contains control characters: give a plain file name or absolute path" % path)
        if os.sep in path and not os.path.isabs(path):
            self.fail(
                "sysctl_file %s is a relative path: give a bare file name (kept under %s) or an absolute path"
                % (path, sf.SYSCTL_D)
            )
        if os.path.basename(path) in ("", ".", "..") or os.path.isdir(self.file_path):
            self.fail("sysctl_file %s is a directory: give a file, such as 90-tuning.conf" % self.file_path)
        if os.path.dirname(self.file_path) == sf.SYSCTL_D and not self.file_path.endswith(".conf"):
            self.warnings.append(
                "%s does not end in .conf, so sysctl --system and systemd-sysctl do not read it at boot"
                % self.file_path
            )

    def run(self, args, msg):
        rc, out, err = self.module.run_command(args, environ_update={"LC_ALL": "C"})
        if rc != 0:
            self.fail("%s: %s" % (msg, (err or out).strip()), rc=rc, stdout=out, stderr=err, cmd=args)
        return out

    def netns_cmd(self, *args):
        ip = self.module.get_bin_path("ip", required=True, opt_dirs=["/sbin", "/usr/sbin"])
        sysctl = self.module.get_bin_path("sysctl", required=True, opt_dirs=["/sbin", "/usr/sbin"])
        return [ip, "netns", "exec", self.netns, sysctl, *args]

    def where(self):
        return " in network namespace %s" % self.netns if self.netns else ""

    def read(self):
        """The running value (whitespace normalised), or None when the key does not exist."""
        if self.netns:
            rc, out, _err = self.module.run_command(self.netns_cmd("-n", self.slashed), environ_update={"LC_ALL": "C"})
            return sf.normalize_value(out) if rc == 0 else None
        try:
            with open(self.proc_path) as handle:
                return sf.normalize_value(handle.read())
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            self.fail(
                "%s is a group of keys (a directory under /proc/sys), not a key: name one of its keys" % self.name
            )
        except PermissionError as exc:
            self.fail("cannot read %s (%s): it is write-only or needs root" % (self.name, exc))
        except OSError as exc:
            self.fail("cannot read %s: %s" % (self.name, exc))

    def write(self, value):
        if self.netns:
            self.run(
                self.netns_cmd("-q", "-w", "%s=%s" % (self.slashed, value)),
                "the kernel refused %s=%s%s" % (self.name, value, self.where()),
            )
            return
        try:
            with open(self.proc_path, "w") as handle:
                handle.write(value)
        except OSError as exc:
            self.fail(
                "the kernel refused %s=%s: %s (check the value's range and format, and that "
                "/proc/sys is writable here)" % (self.name, value, exc)
            )

    def wait_for_key(self):
        """The running value, waiting up to wait_timeout seconds for the key to appear; (value, seconds waited)."""
        start = time.monotonic()
        deadline = start + max(self.params["wait_timeout"], 0)
        value = self.read()
        while value is None and not self.module.check_mode and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            value = self.read()
        return value, round(time.monotonic() - start, 2)

    def missing_key_message(self):
        msg = "sysctl key %s does not exist%s" % (self.name, self.where())
        if self.params["wait_timeout"] > 0:
            msg += " (waited %ds)" % self.params["wait_timeout"]
        provider = sf.provider_hint(self.name)
        if provider:
            msg += (
                "; it is usually provided by the kernel module %s: load it first (labkit.cluster.kmod name=%s), "
                "or raise wait_timeout if it is still loading" % (provider, provider)
            )
        else:
            msg += "; check the name (sysctl -a) or load the module that registers it, then set wait_timeout"
        return msg

    def file_change(self, wanted):
        try:
            change = atomic_file.FileChange(self.file_path, None, module=self.module)
        except OSError as exc:
            self.fail("cannot read sysctl_file %s: %s; give a readable file" % (self.file_path, exc.strerror or exc))
        edited = sf.SysctlFile(change.before)
        if self.params["state"] == "present":
            edited.set(self.name, wanted)
        else:
            edited.remove(self.name)
        if change.before is None and not edited.lines:
            change.after = None
        else:
            change.after = edited.render()
        return change

    def apply(self):
        p = self.params
        state = p["state"]
        self.validate()
        if self.netns and not os.path.exists(os.path.join(NETNS_DIR, self.netns)):
            self.fail(
                "network namespace %s does not exist: create it first (ip netns add %s)" % (self.netns, self.netns)
            )
        result = self.result = dict(
            changed=False,
            name=self.name,
            value=None,
            previous_value=None,
            runtime_changed=False,
            file_changed=False,
            sysctl_file=self.file_path if self.persistent else None,
            netns=self.netns,
            waited=0.0,
        )
        diffs = []

        current, result["waited"] = self.wait_for_key() if (state == "present" and p["reload"]) else (self.read(), 0.0)
        result["previous_value"] = result["value"] = current
        wanted = None
        if state == "present":
            if p["value"] is None:
                self.fail("value is required with state: present")
            wanted = sf.normalize_wanted(p["value"], current)
        # Read the file before the running value changes, so an unreadable file fails with nothing changed.
        change = self.file_change(wanted) if self.persistent else None

        if state == "present" and p["reload"]:
            if current is None:
                if self.module.check_mode:
                    self.warnings.append(self.missing_key_message() + " (check mode does not wait)")
                elif not p["ignoreerrors"]:
                    self.fail(self.missing_key_message())
                else:
                    self.warnings.append(self.missing_key_message() + "; only the file was edited")
            if current != wanted and (current is not None or self.module.check_mode):
                result["runtime_changed"] = True
                diffs.append(
                    {
                        "before_header": "running kernel%s" % self.where(),
                        "after_header": "running kernel%s" % self.where(),
                        "before": "%s = %s\n" % (self.name, current) if current is not None else "",
                        "after": "%s = %s\n" % (self.name, wanted),
                    }
                )
                if self.module.check_mode:
                    result["value"] = wanted
                else:
                    self.write(wanted)
                    self.runtime_done = True
                    result["value"] = self.read()
                    if p["verify"] and result["value"] != wanted:
                        self.fail(
                            '%s was set to "%s"%s but reads back "%s": the kernel clamped or ignored it; '
                            "use a value the key accepts" % (self.name, wanted, self.where(), result["value"])
                        )

        if change is not None and change.changed:
            result["file_changed"] = True
            if not self.module.check_mode:
                change = self.write_file(wanted)
            diffs.append(change.diff())

        result["changed"] = result["runtime_changed"] or result["file_changed"]
        if result["changed"] and p["reload_system"] and not self.module.check_mode:
            cmd = (
                self.netns_cmd("--system")
                if self.netns
                else [self.module.get_bin_path("sysctl", required=True, opt_dirs=["/sbin", "/usr/sbin"]), "--system"]
            )
            self.run(cmd, "sysctl --system failed; fix the file it names")
        if self.module._diff and diffs:
            result["diff"] = diffs
        for warning in self.warnings:
            self.module.warn(warning)
        self.module.exit_json(**result)

    def write_file(self, wanted):
        """Edit the file under its lock (another task writing it at the same time waits); the change made."""
        try:
            with atomic_file.locked(self.file_path):
                change = self.file_change(wanted)
                if change.changed:
                    if self.params["backup"] and change.before is not None:
                        self.result["backup_file"] = atomic_file.backup_path(
                            self.file_path, time.strftime("%Y-%m-%d@%H:%M:%S")
                        )
                    change.apply()
                    self.file_done = True
        except OSError as exc:
            self.fail(
                "cannot write sysctl_file %s: %s; check that its directory exists or can be created and is writable"
                % (self.file_path, exc.strerror or exc)
            )
        return change


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["key"]),
            value=dict(type="raw", aliases=["val"]),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            reload=dict(type="bool", default=True),
            verify=dict(type="bool", default=True),
            persistent=dict(type="bool"),
            sysctl_file=dict(type="path", default="99-labkit.conf"),
            backup=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=0),
            netns=dict(type="str"),
            reload_system=dict(type="bool", default=False),
            ignoreerrors=dict(type="bool", default=False),
        ),
        required_if=[("state", "present", ("value",))],
        supports_check_mode=True,
    )


def main():
    module = build_module()
    SysctlKey(module).apply()


if __name__ == "__main__":
    main()
