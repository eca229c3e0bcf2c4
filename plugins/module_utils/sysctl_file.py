# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""sysctl names, values and sysctl.d files.

SysctlFile edits one key of a sysctl.d file and leaves every other line (keys, comments, blank lines,
spacing) exactly as it was, which is what users expect from a file they may also edit by hand.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

SYSCTL_D = "/etc/sysctl.d"
PROC_SYS = "/proc/sys"

# Keys of the lab that only exist once a module is loaded: prefix -> module that usually provides it.
KNOWN_PROVIDERS = (
    ("net.ipv4.tcp_estats", "tcp_estats_nl"),
    ("net.dcpim.", "dcpim_module"),
    ("net.labkit_fixture.", "labkit_fixture"),
    ("net.bridge.", "br_netfilter"),
    ("net.netfilter.nf_conntrack_", "nf_conntrack"),
    ("net.ipv4.vs.", "ip_vs"),
    ("net.ipv4.tcp_bbr", "tcp_bbr"),
)

_BOOL_WORDS = {"yes": "1", "true": "1", "on": "1", "no": "0", "false": "0", "off": "0"}
_LINE_RE = re.compile(r"^(?P<lead>\s*)(?P<dash>-?)(?P<key>[^=\s]+)(?P<sep>\s*=\s*)(?P<value>.*?)(?P<trail>\s*)$")


def normalize_key(key):
    """Canonical dotted form. 'net/ipv4/conf/eth0.1/rp_filter' -> 'net.ipv4.conf.eth0/1.rp_filter'.

    As sysctl(8) and systemd-sysctl do: when the first separator is '/', slashes separate and dots are
    part of names, so the two swap.
    """
    key = key.strip().lstrip("-")
    first = re.search(r"[./]", key)
    if first and first.group(0) == "/":
        key = key.translate(str.maketrans("./", "/."))
    return key


def key_to_proc_path(key, root=None):
    """The /proc/sys file of a key (in dotted or slashed form)."""
    dotted = normalize_key(key)
    return "%s/%s" % (PROC_SYS if root is None else root, dotted.translate(str.maketrans("./", "/.")))


def normalize_value(value):
    """Whitespace-insensitive form: '4096\\t87380   6291456' -> '4096 87380 6291456'; bools -> 1/0."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    return " ".join(str(value).split())


def normalize_wanted(value, current):
    """The requested value as the kernel would show it: yes/true/on -> 1 when the key is numeric."""
    text = normalize_value(value)
    if current is not None and re.match(r"^-?\d+$", current.strip()) and text.lower() in _BOOL_WORDS:
        return _BOOL_WORDS[text.lower()]
    return text


def provider_hint(key):
    """The module that usually provides key, or None when the key is not one the lab knows."""
    key = normalize_key(key)
    for prefix, module in KNOWN_PROVIDERS:
        if key == prefix.rstrip(".") or key.startswith(prefix):
            return module
    return None


class SysctlFile:
    """The lines of a sysctl.d file; set/remove edit only the lines of one key."""

    def __init__(self, text):
        self.text = text or ""
        self.lines = self.text.splitlines(True)

    def _matches(self, key):
        wanted = normalize_key(key)
        for index, line in enumerate(self.lines):
            stripped = line.strip()
            if not stripped or stripped[0] in "#;":
                continue
            match = _LINE_RE.match(line.rstrip("\r\n"))
            if match and normalize_key(match.group("key")) == wanted:
                yield index, match

    def get(self, key):
        """The value the file gives key (the last line wins, as in sysctl), or None."""
        value = None
        for _index, match in self._matches(key):
            value = match.group("value")
        return value

    def set(self, key, value):
        """Give key the value: every line of that key gets it (spacing kept), or a line is appended."""
        value = normalize_value(value)
        found = False
        for index, match in list(self._matches(key)):
            found = True
            if normalize_value(match.group("value")) == value:
                continue
            ending = self.lines[index][len(self.lines[index].rstrip("\r\n")) :]
            self.lines[index] = "%s%s%s%s%s%s%s" % (
                match.group("lead"),
                match.group("dash"),
                match.group("key"),
                match.group("sep"),
                value,
                match.group("trail"),
                ending,
            )
        if not found:
            if self.lines and not self.lines[-1].endswith("\n"):
                self.lines[-1] += "\n"
            self.lines.append("%s = %s\n" % (key, value))

    def remove(self, key):
        """Drop the lines that set key; comments that mention it stay."""
        drop = {index for index, _match in self._matches(key)}
        self.lines = [line for index, line in enumerate(self.lines) if index not in drop]

    def render(self):
        return "".join(self.lines)
