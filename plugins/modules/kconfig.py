#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kconfig
short_description: Check that a kernel configuration has the requested Kconfig symbols
version_added: 0.1.0
description:
  - Reads a kernel configuration (a C(.config), a C(config-*) file from C(/boot), or the gzipped
    C(/proc/config.gz) of a running kernel), or the first readable one of several candidates, and
    compares it with requested symbol values, given directly, as requirements (V(CONFIG_X) for built in
    or a module) or as configuration fragments (C(CONFIG_X=y) lines, as C(scripts/kconfig/merge_config.sh)
    takes them).
  - Reports every requested symbol the configuration does not have, with the value it has instead and
    why Kconfig usually drops such a symbol, and fails naming them unless O(fail_on_mismatch=false).
  - Meant to run after C(make olddefconfig), where Kconfig silently drops symbols it does not know (a
    patch that adds them was not applied) or whose dependencies are not met.
  - Never changes anything.
author:
  - labkit developers (@labkit)
attributes:
  check_mode:
    support: full
    description: Reads the configuration in check mode too; the module never changes anything.
  diff_mode:
    support: none
    description: The module changes nothing, so there is no diff.
options:
  path:
    description:
      - The configuration to check. A name ending in C(.gz) is read through gzip (C(/proc/config.gz)).
      - Exactly one of O(path) and O(paths) is required.
    type: path
  paths:
    description:
      - Candidate configurations, in order; the first that is a readable file is checked (RV(path) tells
        which). For example C(/boot/config-<release>), then C(/proc/config.gz), then a kernel tree's C(.config).
      - When none is readable the module fails, unless O(fail_on_missing=false).
    type: list
    elements: path
  fail_on_missing:
    description:
      - Fail when no configuration in O(path) or O(paths) is a readable file.
      - With V(false) the module returns RV(path) as null and compares nothing (RV(mismatched) and RV(missing)
        are empty).
    type: bool
    default: true
  symbols:
    description:
      - Requested symbols and their values. Names may omit the C(CONFIG_) prefix.
      - Values as a C(.config) writes them, V(y), V(m) or V(n); a number; a hex number (C(0x...)); or a
        string. Booleans become V(y) and V(n); a string that is not already in double quotes is compared
        as text. A list of such values is satisfied by any of them, such as V([y, m]) for built in or a module.
      - V(n) is also satisfied by a symbol that the configuration does not mention at all.
      - A value with a newline or another control character is refused.
    type: dict
    default: {}
  require:
    description:
      - Requirements, each V(CONFIG_X) (the symbol is V(y) or V(m)) or V(CONFIG_X=value) (exactly that
        value, as in O(symbols)). RV(missing) lists the ones the configuration does not meet, as written here.
      - They are requested after O(fragments) and before O(symbols).
    type: list
    elements: str
    default: []
  fragments:
    description:
      - Configuration fragments whose assignments are also requested (C(CONFIG_X=y), C(CONFIG_X=\"text\"),
        C(# CONFIG_X is not set) or C(CONFIG_X=n)). Later fragments, then O(require) and then O(symbols) win over
        earlier ones.
    type: list
    elements: path
    default: []
  fail_on_mismatch:
    description:
      - Fail, naming the symbols, when the configuration does not have a requested value.
      - With V(false) the module only reports them in RV(mismatched).
    type: bool
    default: true
notes:
  - Symbols that are absent from a C(.config) are reported as V(absent); symbols written as
    C(# CONFIG_X is not set) as V(not set).
seealso:
  - name: Kconfig language
    description: How Kconfig resolves symbol values and dependencies.
    link: https://docs.kernel.org/kbuild/kconfig-language.html
"""

EXAMPLES = r"""
- name: Fail before the build when Kconfig dropped a requested symbol
  labkit.cluster.kconfig:
    path: /srv/kernel/build/.config
    fragments:
      - /srv/kernel/fragments/web10g.config
    symbols:
      TCP_ESTATS: y
      LOCALVERSION: -web10g

- name: Check the running kernel of a Pi
  labkit.cluster.kconfig:
    path: /proc/config.gz
    symbols:
      CONFIG_TCP_ESTATS: y
  register: running

- name: Check the first configuration found; CONFIG_TCP_ESTATS built in or a module, HZ exactly 1000
  labkit.cluster.kconfig:
    paths:
      - /boot/config-{{ ansible_facts.kernel }}
      - /proc/config.gz
      - /lib/modules/{{ ansible_facts.kernel }}/build/.config
    require:
      - CONFIG_TCP_ESTATS
      - CONFIG_HZ=1000
    fail_on_missing: false
    fail_on_mismatch: false
  register: kernel_config

- name: Only report what differs
  labkit.cluster.kconfig:
    path: /boot/config-6.1.0-56-amd64
    symbols:
      CONFIG_KVM: m
      CONFIG_HZ: 1000
    fail_on_mismatch: false
  register: differences
"""

RETURN = r"""
path:
  description: The configuration that was read; null when none of O(paths) was readable and O(fail_on_missing=false).
  returned: always
  type: str
  sample: /proc/config.gz
missing:
  description: The entries of O(require) that the configuration does not meet, as they were written there.
  returned: always
  type: list
  elements: str
  sample: ["CONFIG_TCP_ESTATS", "CONFIG_HZ=1000"]
requested:
  description:
    - Every requested symbol (with its C(CONFIG_) prefix) and the value requested, as a .config writes it
      (a list of alternatives where several values satisfy it).
  returned: always
  type: dict
  sample: {"CONFIG_TCP_ESTATS": "y", "CONFIG_LOCALVERSION": "\"-web10g\""}
values:
  description: The value the configuration has for each requested symbol; V(n) for "is not set", null when absent.
  returned: always
  type: dict
  sample: {"CONFIG_TCP_ESTATS": null, "CONFIG_LOCALVERSION": "\"-web10g\""}
mismatched:
  description: The requested symbols the configuration does not have, in the order they were requested.
  returned: always
  type: list
  elements: dict
  contains:
    symbol:
      description: The symbol name.
      type: str
      sample: CONFIG_TCP_ESTATS
    requested:
      description: The requested value, or a list of the values that would satisfy it.
      type: raw
      sample: "y"
    actual:
      description: The value in the configuration, V(not set), or V(absent).
      type: str
      sample: absent
    source:
      description: The fragment that requested it, or V(symbols).
      type: str
      sample: /srv/kernel/fragments/web10g.config
    reason:
      description: Why Kconfig usually gives such a value.
      type: str
      sample: "absent from the configuration: an unknown symbol (is the patch that adds it applied?) or ..."
"""

import gzip
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible_collections.labkit.cluster.plugins.module_utils import kconfig


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            paths=dict(type="list", elements="path"),
            fail_on_missing=dict(type="bool", default=True),
            symbols=dict(type="dict", default={}),
            require=dict(type="list", elements="str", default=[]),
            fragments=dict(type="list", elements="path", default=[]),
            fail_on_mismatch=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("path", "paths")],
        required_one_of=[("path", "paths")],
        supports_check_mode=True,
    )


class KconfigCheck:
    """Requested symbols (from fragments, `require`, then `symbols`) checked against one configuration file."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.requested = {}
        self.sources = {}
        self.requirements = []

    def request(self, symbol, value, source):
        self.requested.pop(symbol, None)
        self.requested[symbol] = value
        self.sources[symbol] = source

    def candidates(self):
        return [self.params["path"]] if self.params["path"] else self.params["paths"]

    def find(self):
        """The first candidate that is a readable file, or None."""
        for path in self.candidates():
            if os.path.isfile(path) and os.access(path, os.R_OK):
                return path
        return None

    def read(self, path):
        if not os.path.isfile(path):
            self.module.fail_json(msg=f"{path} does not exist or is not a file")
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rb") as handle:
                    data = handle.read()
            else:
                with open(path, "rb") as handle:
                    data = handle.read()
        except (OSError, EOFError) as exc:
            self.module.fail_json(msg=f"cannot read {path}: {to_native(exc)}")
        return to_text(data, errors="surrogate_or_strict")

    def collect(self):
        for fragment in self.params["fragments"]:
            for name, value in kconfig.parse(self.read(fragment)).items():
                self.request(name, value, fragment)
        for text in self.params["require"]:
            try:
                symbol, value = kconfig.requirement(text)
            except kconfig.KconfigError as exc:
                self.module.fail_json(msg=f"require: {text}: {exc}")
            self.requirements.append((text, symbol, value))
            self.request(symbol, value, "require")
        for name, value in self.params["symbols"].items():
            try:
                symbol = kconfig.symbol_name(name)
                normalized = kconfig.normalize_value(value)
            except kconfig.KconfigError as exc:
                self.module.fail_json(msg=f"symbols: {name}: {exc}")
            self.request(symbol, normalized, "symbols")

    def run(self):
        self.collect()
        path = self.find()
        result = dict(changed=False, path=path, requested=self.requested, missing=[], mismatched=[])
        if path is None:
            candidates = self.candidates()
            result["values"] = {name: None for name in self.requested}
            if not self.params["fail_on_missing"]:
                self.module.exit_json(**result)
            if len(candidates) == 1:
                result["msg"] = f"{candidates[0]} does not exist or is not a readable file"
            else:
                result["msg"] = f"none of {', '.join(candidates)} exists as a readable file"
            self.module.fail_json(**result)
        config = kconfig.parse(self.read(path))
        mismatched = kconfig.compare(self.requested, config, self.sources)
        result.update(
            values={name: config.get(name) for name in self.requested},
            mismatched=mismatched,
            missing=[text for text, symbol, value in self.requirements if kconfig.compare({symbol: value}, config)],
        )
        if mismatched and self.params["fail_on_mismatch"]:
            names = ", ".join(m["symbol"] for m in mismatched)
            result["msg"] = (
                f"{path} does not have {len(mismatched)} requested symbol(s): {names}. "
                f"Kconfig dropped or changed them: {kconfig.summary(mismatched)}"
            )
            self.module.fail_json(**result)
        self.module.exit_json(**result)


def main():
    module = build_module()
    KconfigCheck(module).run()


if __name__ == "__main__":
    main()
