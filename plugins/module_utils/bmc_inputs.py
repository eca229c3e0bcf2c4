# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Defaults, limits and validation of the inputs the BMC modules share (idrac_power, bmc_console).

Everything here is pure: a check either returns the cleaned value or raises InvalidInput with a
message that names the option, before any module opens a connection or writes a file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os
import re

DEFAULT_REDFISH_PORT = 443
DEFAULT_SSH_PORT = 22
DEFAULT_SYSTEM_ID = "System.Embedded.1"

PORT_MIN, PORT_MAX = 1, 65535
HTTP_TIMEOUT_MAX = 300  # one answer from the BMC
WAIT_TIMEOUT_MAX = 3600  # one power transition
POLL_INTERVAL_MIN, POLL_INTERVAL_MAX = 0.1, 60.0
CONSOLE_TIMEOUT_MAX = 86400  # one console capture

# Where a log file makes no sense: kernel and device pseudo file systems.
FORBIDDEN_LOG_ROOTS = ("/proc", "/sys", "/dev")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_SYSTEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class InvalidInput(ValueError):
    """An option value the module refuses; str() is the message for the user."""


def check_text(name, value, *, allow_empty=False):
    """A single-line string without control characters."""
    if value is None:
        return None
    if not allow_empty and value == "":
        raise InvalidInput(f"{name} must not be empty")
    if _CONTROL.search(value):
        raise InvalidInput(f"{name} must not contain control characters (newline, tab, escape ...): {value!r}")
    return value


def check_port(value, name="port"):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not PORT_MIN <= value <= PORT_MAX:
        raise InvalidInput(f"{name} must be between {PORT_MIN} and {PORT_MAX}, got {value!r}")
    return value


def check_range(name, value, low, high, *, unit="s"):
    """A number with low < value <= high (NaN fails every comparison, so it is refused too)."""
    if value is None:
        return None
    if isinstance(value, bool) or not low < value <= high:
        raise InvalidInput(f"{name} must be greater than {low} and at most {high} {unit}, got {value!r}")
    return value


def check_poll_interval(value, name="poll_interval"):
    if value is None:
        return None
    if isinstance(value, bool) or not POLL_INTERVAL_MIN <= value <= POLL_INTERVAL_MAX:
        raise InvalidInput(f"{name} must be between {POLL_INTERVAL_MIN} and {POLL_INTERVAL_MAX} s, got {value!r}")
    return value


def _is_hostname(name):
    if len(name) > 253:
        return False
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return all(_LABEL.fullmatch(label) for label in labels)


def parse_host(value, port=None, name="host"):
    """Split `host[:port]` into (address, port); the address is a host name, IPv4 or IPv6 address.

    IPv6 addresses come bare (fe80::1) or in brackets ([fe80::1] or [fe80::1]:8443). A port in the
    host and a different O(port) conflict. A URL is refused: the modules choose the scheme.
    """
    if value is None or value.strip() == "":
        raise InvalidInput(f"{name} must not be empty")
    check_text(name, value)
    scheme = _SCHEME.match(value)
    if scheme:
        raise InvalidInput(
            f"{name} must be an address, not a URL: drop {scheme.group(0)!r} "
            f"(give {value[scheme.end() :].split('/', 1)[0]!r}; the module picks the protocol)"
        )
    if "/" in value or "?" in value or "#" in value or "@" in value:
        raise InvalidInput(f"{name} must be a host name or an IP address, optionally with :port, got {value!r}")
    in_host = None
    if value.startswith("["):
        address, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InvalidInput(f"{name} has an unclosed or malformed IPv6 literal: {value!r}")
        in_host = rest[1:] if rest else None
        if not _is_ipv6(address):
            raise InvalidInput(f"{name} has an invalid IPv6 address in brackets: {value!r}")
    elif value.count(":") > 1:
        address = value
        if not _is_ipv6(address):
            raise InvalidInput(f"{name} is not a valid IPv6 address: {value!r} (write [address]:port with a port)")
    else:
        address, sep, in_host = value.partition(":")
        in_host = in_host if sep else None
        if not _is_ipv4(address) and (re.match(r"^[0-9.]+$", address) or not _is_hostname(address)):
            raise InvalidInput(f"{name} is not a valid host name or IPv4 address: {value!r}")
    if in_host is not None:
        if not in_host.isdigit():
            raise InvalidInput(f"{name} has a port that is not a number: {value!r}")
        in_host = check_port(int(in_host), name=f"the port in {name}")
        if port is not None and port != in_host:
            raise InvalidInput(f"{name} names port {in_host} but port is {port}: give the port once")
    return address, check_port(port, "port") if in_host is None else in_host


def _is_ipv4(text):
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _is_ipv6(text):
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def netloc(address, port):
    """`address:port` for a URL, with IPv6 addresses in brackets."""
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{port}" if port else host


def check_system_id(value, name="system_id"):
    """A Redfish resource id: it becomes a URL path segment, so no '/', '..' or control characters."""
    if value is None:
        return None
    if not _SYSTEM_ID.fullmatch(value) or ".." in value:
        raise InvalidInput(
            f"{name} must be a Redfish id like {DEFAULT_SYSTEM_ID} (letters, digits, '.', '_', ':', '-'; "
            f"no '/', '..', spaces or control characters), got {value!r}"
        )
    return value


def check_log_path(path, name="log_path"):
    """An absolute path for a log file that can exist: not a directory, not in /proc, /sys or /dev."""
    check_text(name, path)
    absolute = os.path.abspath(path)
    real = os.path.realpath(absolute)
    for root in FORBIDDEN_LOG_ROOTS:
        if any(p == root or p.startswith(root + "/") for p in (absolute, real)):
            raise InvalidInput(f"{name} {path!r} is under {root}, a pseudo file system; give a regular file path")
    if path.endswith("/") or os.path.isdir(real):
        raise InvalidInput(f"{name} {path!r} is a directory; give the path of the log file inside it")
    if os.path.exists(real) and not os.path.isfile(real):
        raise InvalidInput(f"{name} {path!r} exists and is not a regular file")
    parent = os.path.dirname(real)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise InvalidInput(f"{name} {path!r} cannot be created: {parent} is not a directory")
    writable = os.access(real, os.W_OK) if os.path.exists(real) else os.access(parent, os.W_OK | os.X_OK)
    if parent and not writable:
        raise InvalidInput(f"{name} {path!r} is not writable by this user")
    return absolute
