#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: grub_entry
short_description: Find a kernel's GRUB menu entry and make it the next boot once or the saved default
version_added: 0.1.0
description:
  - Reads the menu entries of C(grub.cfg) (submenus included) and finds the entry that boots
    C(vmlinuz-<release>) normally (not in recovery mode), preferring the entry whose id names the release, which
    C(update-grub) keeps stable.
  - With O(select=once) sets C(next_entry) in the GRUB environment block (what C(grub-reboot) does), so GRUB boots that
    entry once and then its saved default again. With O(select=default) sets C(saved_entry) (what
    C(grub-set-default) does).
  - With O(saved_default=true) sets C(GRUB_DEFAULT=saved) in O(defaults_file) (a backup is kept beside it), so
    C(saved_entry) decides what boots, then regenerates C(grub.cfg).
  - With O(regenerate=true) runs C(update-grub) (or C(grub-mkconfig -o) O(config)) before it reads the menu.
  - Writes the environment block itself, atomically, in C(grub-editenv)'s format (1024 bytes, other variables kept).
  - Validates every input before it reads or writes anything (see O(release), O(config), O(env), O(defaults_file)).
author:
  - labkit developers (@labkit)
attributes:
  check_mode:
    support: full
    description:
      - Reports the changes to O(defaults_file) and the environment block without making them; C(grub.cfg) is not
        regenerated, so an entry that only regeneration would add is reported missing with a warning.
  diff_mode:
    support: full
    description: Shows O(defaults_file) and the environment block's variables before and after.
options:
  release:
    description:
      - The kernel release (C(uname -r)) whose entry is looked up, such as V(6.1.0-13-amd64).
      - Refused when empty, longer than 128 characters, or holding C(/), C(..), whitespace or a control character.
    type: str
    required: true
  select:
    description:
      - V(none) only looks the entry up.
      - V(once) makes it C(next_entry), booted at the next boot only.
      - V(default) makes it C(saved_entry), booted whenever no C(next_entry) is set (with C(GRUB_DEFAULT=saved)).
    type: str
    choices: [none, once, default]
    default: none
  keep_valid:
    description:
      - With O(select=default), keep a C(saved_entry) that names an entry of C(grub.cfg) by its ids or titles, and
        replace one given as an index (which follows update-grub's ordering) by the ids of the entry it names now.
        Only an empty or dangling C(saved_entry), or one left from before C(GRUB_DEFAULT=saved), becomes the entry
        of O(release).
    type: bool
    default: false
  saved_default:
    description:
      - Set C(GRUB_DEFAULT=saved) in O(defaults_file) when it says otherwise (a copy C(<file>.<time>~) is kept), and
        regenerate C(grub.cfg) afterwards.
    type: bool
    default: false
  regenerate:
    description:
      - Regenerate C(grub.cfg) before reading it, with C(update-grub) when O(config) is C(/boot/grub/grub.cfg) and
        the host has it, else C(grub-mkconfig -o) O(config) (or C(grub2-mkconfig)).
    type: bool
    default: false
  config:
    description:
      - The generated GRUB configuration. An absolute path without C(..) or control characters.
    type: path
    default: /boot/grub/grub.cfg
  env:
    description:
      - The GRUB environment block. An absolute path without C(..) or control characters. Created when missing.
    type: path
    default: /boot/grub/grubenv
  defaults_file:
    description:
      - The file C(update-grub) reads C(GRUB_DEFAULT) from. An absolute path without C(..) or control characters.
    type: path
    default: /etc/default/grub
notes:
  - GRUB clears C(next_entry) when it boots it, so a kernel that never comes back leaves the host with its saved
    default on the following boot (with a watchdog or C(panic=) to reset it).
"""

EXAMPLES = r"""
- name: Make sure the running kernel is GRUB's saved default before anything new is installed
  labkit.cluster.grub_entry:
    release: "{{ ansible_facts.kernel }}"
    select: default
    keep_valid: true
    saved_default: true

- name: Boot 6.1.0-labkit once at the next reboot
  labkit.cluster.grub_entry:
    release: 6.1.0-labkit
    select: once
    regenerate: true
  register: trial

- name: Commit it after it came up
  labkit.cluster.grub_entry:
    release: 6.1.0-labkit
    select: default
"""

RETURN = r"""
entry:
  description: The path (ids joined by C(>)) of the entry of O(release); null when C(grub.cfg) has none.
  type: str
  returned: always
  sample: gnulinux-advanced-0b1c>gnulinux-6.1.0-labkit-advanced-0b1c
entry_title:
  description: Its title.
  type: str
  returned: when the entry was found
kernel_cmdline:
  description: The arguments of its C(linux) line.
  type: str
  returned: when the entry was found
  sample: root=/dev/vda2 ro console=ttyS0,115200
entries:
  description: Every menu entry of C(grub.cfg) (title, id, path, index_path, submenu, kernel, cmdline, initrd).
  type: list
  elements: dict
  returned: always
saved_entry:
  description: C(saved_entry) after the task.
  type: str
  returned: always
next_entry:
  description: C(next_entry) after the task.
  type: str
  returned: always
previous_saved_entry:
  description: C(saved_entry) before the task.
  type: str
  returned: always
default_entry:
  description: The entry C(saved_entry) names after the task (null when it names none).
  type: dict
  returned: always
regenerated:
  description: Whether C(grub.cfg) was regenerated.
  type: bool
  returned: always
backup_file:
  description: The copy of O(defaults_file) made before it was changed.
  type: str
  returned: when O(defaults_file) changed
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.labkit.cluster.plugins.module_utils import atomic_file
from ansible_collections.labkit.cluster.plugins.module_utils import grub

DEFAULT_CONFIG = "/boot/grub/grub.cfg"


class GrubEntry:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.changed = False
        self.diffs = []
        self.result = {"regenerated": False}

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, changed=self.changed, **extra)

    def validate(self):
        problems = [grub.release_problem(self.params["release"])]
        for option in ("config", "env", "defaults_file"):
            problems.append(grub.path_problem(self.params[option], option))
        problems = [problem for problem in problems if problem]
        if problems:
            self.fail("grub_entry: " + "; ".join(problems) + ". Nothing was changed.")

    def ensure_saved_default(self):
        """True when GRUB_DEFAULT was already saved (so the environment's saved_entry meant something)."""
        if not self.params["saved_default"]:
            return True
        path = self.params["defaults_file"]
        before = atomic_file.read_text(path)
        if before is None:
            self.fail(f"grub_entry: {path} does not exist: is GRUB (grub2-common) installed?")
        was_saved = grub.uses_saved_default(before)
        change = atomic_file.FileChange(path, grub.with_saved_default(before), module=self.module)
        if change.changed:
            self.diffs.append(change.diff())
            if not self.check:
                self.result["backup_file"] = atomic_file.backup_path(path, time.strftime("%Y%m%d%H%M%S"))
                change.apply()
            self.changed = True
        return was_saved

    def mkconfig_command(self):
        config = self.params["config"]
        if config == DEFAULT_CONFIG:
            update = self.module.get_bin_path("update-grub")
            if update:
                return [update]
        for name in ("grub-mkconfig", "grub2-mkconfig"):
            path = self.module.get_bin_path(name)
            if path:
                return [path, "-o", config]
        self.fail("grub_entry: this host has neither update-grub nor grub-mkconfig: GRUB is not installed")

    def regenerate(self):
        args = self.mkconfig_command()
        rc, out, err = self.module.run_command(args, environ_update={"LC_ALL": "C"})
        if rc != 0:
            self.fail(f"grub_entry: {' '.join(args)} failed", rc=rc, stdout=out, stderr=err, cmd=args)
        self.result["regenerated"] = True
        self.changed = True

    def read_menu(self):
        path = self.params["config"]
        text = atomic_file.read_text(path)
        if text is None:
            self.fail(f"grub_entry: {path} does not exist: run update-grub once, or set config")
        return grub.parse_menu(text)

    def read_env(self):
        try:
            return grub.parse_env(atomic_file.read_bytes(self.params["env"]))
        except grub.GrubError as exc:
            self.fail(f"grub_entry: {self.params['env']}: {exc}")

    def wanted_env(self, env, entries, entry, was_saved):
        after = dict(env)
        select = self.params["select"]
        if select == "none":
            return after
        key = "next_entry" if select == "once" else "saved_entry"
        if select == "default" and self.params["keep_valid"] and was_saved:
            current, stable = grub.resolve_saved(entries, env.get("saved_entry", ""))
            if current is not None:
                after["saved_entry"] = env["saved_entry"] if stable else current["path"]
                return after
        if entry is None:
            return None
        after[key] = entry["path"]
        return after

    def write_env(self, before, after):
        if after == before:
            return
        for value in after.values():
            problem = grub.value_problem(value)
            if problem:
                self.fail(f"grub_entry: {problem}; the environment block was not changed")
        try:
            data = grub.render_env(after)
        except grub.GrubError as exc:
            self.fail(f"grub_entry: {exc}")
        self.diffs.append(
            {
                "before_header": self.params["env"],
                "after_header": self.params["env"],
                "before": "".join(f"{k}={v}\n" for k, v in before.items()),
                "after": "".join(f"{k}={v}\n" for k, v in after.items()),
            }
        )
        if not self.check:
            atomic_file.atomic_write(self.params["env"], data, mode=0o644, module=self.module)
        self.changed = True

    def apply(self):
        self.validate()
        release = self.params["release"]
        was_saved = self.ensure_saved_default()
        pending = self.params["regenerate"] or (self.changed and self.params["saved_default"])
        if pending and not self.check:
            self.regenerate()
        entries = self.read_menu()
        entry = grub.entry_for_release(entries, release)
        env = self.read_env()
        after = self.wanted_env(env, entries, entry, was_saved)
        if after is None:
            missing = (
                f"{self.params['config']} has no entry that boots vmlinuz-{release}"
                f" (entries: {', '.join(e['title'] for e in entries) or 'none'})"
            )
            if self.check and pending:
                self.module.warn(f"{missing}; grub.cfg is not regenerated in check mode")
                after = dict(env)
            else:
                self.fail(f"grub_entry: {missing}. The environment block was not changed.")
        self.write_env(env, after)
        default_entry, _stable = grub.resolve_saved(entries, after.get("saved_entry", ""))
        self.result.update(
            changed=self.changed,
            entry=entry["path"] if entry else None,
            entries=entries,
            saved_entry=after.get("saved_entry", ""),
            next_entry=after.get("next_entry", ""),
            previous_saved_entry=env.get("saved_entry", ""),
            default_entry=default_entry,
        )
        if entry:
            self.result.update(entry_title=entry["title"], kernel_cmdline=entry["cmdline"])
        if self.module._diff:
            self.result["diff"] = self.diffs
        self.module.exit_json(**self.result)


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            release=dict(type="str", required=True),
            select=dict(type="str", default="none", choices=["none", "once", "default"]),
            keep_valid=dict(type="bool", default=False),
            saved_default=dict(type="bool", default=False),
            regenerate=dict(type="bool", default=False),
            config=dict(type="path", default=DEFAULT_CONFIG),
            env=dict(type="path", default="/boot/grub/grubenv"),
            defaults_file=dict(type="path", default="/etc/default/grub"),
        ),
        supports_check_mode=True,
    )


def main():
    module = build_module()
    os.umask(0o022)
    GrubEntry(module).apply()


if __name__ == "__main__":
    main()
