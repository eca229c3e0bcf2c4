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

import os
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

# A key component is a /proc/sys file or directory name; NAME_MAX bytes at most.
NAME_MAX = 255


class InvalidInput(ValueError):
    """A name, value or path the module refuses; the message says what to fix."""


def _control_chars(text, allowed=""):
    return sorted({ch for ch in text if not ch.isprintable() and ch not in allowed})


def check_key(key):
    """The /proc/sys components of key (dotted or slashed), or InvalidInput when the kernel has no such name.

    Refused: control characters and whitespace anywhere, a leading '/' or '-', '=' (it ends the key in a
    sysctl.d line), a leading '#' or ';' (a comment), empty, '.' and '..' components (after the dotted
    form's '/' -> '.' swap, so 'net.//.//.x' is refused like 'net/../../x').
    """
    if not isinstance(key, str) or not key:
        raise InvalidInput("name is empty: give a sysctl key such as net.ipv4.ip_forward")
    bad = _control_chars(key)
    if bad:
        raise InvalidInput(
            "name %r contains control or non-printable characters (%s): a sysctl key is one line of printable "
            "characters" % (key, ", ".join(repr(ch) for ch in bad))
        )
    if any(ch.isspace() for ch in key):
        raise InvalidInput("name %r contains whitespace: a sysctl key has none (remove it)" % key)
    if key[0] == "/":
        raise InvalidInput(
            "name %r starts with '/': give the key relative to /proc/sys (net/ipv4/ip_forward or net.ipv4.ip_forward)"
            % key
        )
    if key[0] in "-#;":
        raise InvalidInput("name %r starts with %r: a sysctl key starts with a letter or digit" % (key, key[0]))
    if "=" in key:
        raise InvalidInput("name %r contains '=': give the key in name and the value in value" % key)
    components = key_to_proc_path(key, root="")[1:].split("/")
    for component in components:
        if component in ("", ".", ".."):
            raise InvalidInput(
                "name %r has %s component: a sysctl key is names separated by single dots (or slashes), "
                "each naming an entry under /proc/sys" % (key, "an empty" if not component else "a '%s'" % component)
            )
        if len(component.encode("utf-8", errors="surrogateescape")) > NAME_MAX:
            raise InvalidInput("name %r has a component longer than %d bytes" % (key, NAME_MAX))
    return components


def safe_proc_path(key, root=None):
    """The /proc/sys file of key after check_key(), refused (InvalidInput) unless it resolves under /proc/sys."""
    root = PROC_SYS if root is None else root
    path = os.path.join(root, *check_key(key))
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise InvalidInput("name %r resolves to %s, outside %s: give a key under %s" % (key, real, root, root))
    return path


def check_netns_key(key):
    """Refuse (InvalidInput) a key that is not per network namespace: only net.* keys are."""
    if check_key(key)[0] != "net":
        raise InvalidInput(
            "%s is not a network namespace key: only net.* keys have their own value inside a namespace, other "
            "keys are host-wide; drop netns to set it on the host, or use a net.* key" % key
        )


def check_netns_name(name):
    """Refuse (InvalidInput) a network namespace name that ip-netns(8) would not create."""
    if not name:
        raise InvalidInput("netns is empty: give the name of a namespace from ip netns list")
    if _control_chars(name) or any(ch.isspace() for ch in name):
        raise InvalidInput("netns %r contains whitespace or control characters: give a name from ip netns list" % name)
    if "/" in name or name in (".", "..") or name[0] == "-" or len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise InvalidInput(
            "netns %r is not a namespace name (no '/', not '.' or '..', no leading '-'): "
            "give a name from ip netns list" % name
        )


def check_value(value):
    """Refuse (InvalidInput) a value that is not one line of text: lists, mappings, control characters.

    Spaces and tabs are allowed (they separate the numbers of vector keys such as tcp_rmem).
    """
    if isinstance(value, (list, tuple, dict, set)):
        raise InvalidInput(
            "value must be a string, a number or a boolean, not a %s: give several numbers as one string "
            "separated by spaces (4096 87380 6291456)" % type(value).__name__
        )
    if not isinstance(value, (str, int, float, bool)):
        raise InvalidInput("value must be a string, a number or a boolean, not %s" % type(value).__name__)
    text = str(value)
    bad = _control_chars(text, allowed=" \t")
    if bad:
        raise InvalidInput(
            "value %r contains control or non-printable characters (%s): a sysctl value is one line; separate "
            "numbers with spaces or tabs" % (text, ", ".join(repr(ch) for ch in bad))
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
