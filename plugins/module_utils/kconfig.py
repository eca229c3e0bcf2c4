# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Kernel configuration (Kconfig) files: parse a .config or a fragment, compare requested symbols,
write fragment lines.

Pure functions (no AnsibleModule) so unit tests can feed them text; the kconfig module does the I/O and
the kconfig filters render fragments with them. Values are kept the way a .config writes them: C(y),
C(m), C(n) (for "is not set"), a number, a hex number, or a double-quoted string. A requested value
may also be a tuple of alternatives (C(("y", "m")): built in or a module).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

PREFIX = "CONFIG_"
NOT_SET = "n"
TRISTATE = frozenset(("y", "m", "n"))
# What a bare "CONFIG_X" requirement asks for: built in or a module.
ENABLED = ("y", "m")

_ASSIGN = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_NOT_SET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set\s*$")
_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_INT = re.compile(r"^-?[0-9]+$")
_HEX = re.compile(r"^0[xX][0-9a-fA-F]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class KconfigError(ValueError):
    """A symbol name or value that cannot be written to a .config."""


def symbol_name(name):
    """`TCP_ESTATS` and `CONFIG_TCP_ESTATS` both name CONFIG_TCP_ESTATS."""
    name = str(name).strip()
    if not name.startswith(PREFIX):
        name = PREFIX + name
    if not _NAME.fullmatch(name):
        raise KconfigError(f"{name!r} is not a Kconfig symbol name")
    return name


def quote(text):
    """A string value the way Kconfig writes it: double quotes, with backslash and quote escaped."""
    text = str(text)
    if _CONTROL.search(text):
        raise KconfigError(f"{text!r} has a newline or another control character")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(value):
    """The text of a double-quoted .config string (the value itself when it is not quoted)."""
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def normalize_value(value):
    """A requested value as a .config would show it.

    Booleans become y/n, integers stay numbers, y/m/n/numbers/hex are kept, a double-quoted text is
    kept as it is, and any other text becomes a quoted string. A list gives a tuple of alternatives.
    Text with a newline or another control character is refused: it would add lines to a .config.
    """
    if isinstance(value, (list, tuple)):
        if not value:
            raise KconfigError("an empty list of alternatives matches no value")
        return tuple(normalize_value(item) for item in value)
    if isinstance(value, bool):
        return "y" if value else NOT_SET
    if isinstance(value, int):
        return str(value)
    if value is None:
        raise KconfigError("a symbol needs a value (y, m, n, a number or a string)")
    text = str(value).strip()
    if text.lower() in TRISTATE:
        return text.lower()
    if _INT.fullmatch(text) or _HEX.fullmatch(text):
        return text
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        if _CONTROL.search(text):
            raise KconfigError(f"{text!r} has a newline or another control character")
        return text
    return quote(value)


def requirement(text):
    """Symbol and wanted value of a requirement: `CONFIG_X` wants y or m, `CONFIG_X=v` exactly v."""
    name, sep, value = str(text).partition("=")
    if not sep:
        return symbol_name(name), ENABLED
    return symbol_name(name), normalize_value(value)


def line(name, value):
    """The fragment line that sets a symbol: `CONFIG_X=v`, or `# CONFIG_X is not set` for n."""
    symbol = symbol_name(name)
    value = normalize_value(value)
    if isinstance(value, tuple):
        raise KconfigError(f"{symbol}: a fragment sets one value, not a list")
    if value == NOT_SET:
        return f"# {symbol} is not set"
    return f"{symbol}={value}"


def fragment(symbols):
    """A fragment (one line per symbol, in the mapping's order, ending in a newline) for a mapping."""
    return "".join(line(name, value) + "\n" for name, value in symbols.items())


def parse(text):
    """Symbol -> value of a .config or fragment text; `# CONFIG_X is not set` and `CONFIG_X=n` give n.

    A later line for the same symbol wins, as it does when Kconfig reads the file.
    """
    values = {}
    for raw in text.splitlines():
        line = raw.strip()
        match = _ASSIGN.match(line)
        if match:
            value = match.group(2).strip()
            values[match.group(1)] = NOT_SET if value == NOT_SET else value
            continue
        match = _NOT_SET.match(line)
        if match:
            values[match.group(1)] = NOT_SET
    return values


def same_value(requested, actual):
    """Whether a .config value satisfies a requested one (strings by their text, hex case-insensitively).

    A tuple of alternatives is satisfied by any of them.
    """
    if isinstance(requested, tuple):
        return any(same_value(item, actual) for item in requested)
    if requested == actual:
        return True
    if requested.startswith('"') or actual.startswith('"'):
        return unquote(requested) == unquote(actual)
    if _HEX.fullmatch(requested) and _HEX.fullmatch(actual):
        return int(requested, 16) == int(actual, 16)
    return False


def describe(value):
    if isinstance(value, tuple):
        return " or ".join(describe(item) for item in value)
    if value is None:
        return "absent"
    if value == NOT_SET:
        return "not set"
    return value


def compare(requested, config, sources=None):
    """Requested symbols whose value the configuration does not have, in the requested order.

    `requested` maps symbol -> normalized value, `config` is what `parse` gives for the .config and
    `sources` optionally maps a symbol to where it was requested (a fragment's path).
    An absent symbol counts as "not set" when n was requested, and as dropped otherwise: Kconfig
    leaves out symbols it does not know (a patch that adds them was not applied) and those whose
    dependencies are not met.
    """
    sources = sources or {}
    mismatched = []
    for name, want in requested.items():
        have = config.get(name)
        if have is None and same_value(want, NOT_SET):
            continue
        if have is not None and same_value(want, have):
            continue
        if have is None:
            reason = (
                "absent from the configuration: an unknown symbol (is the patch that adds it applied?)"
                " or its dependencies are not met"
            )
        elif have == NOT_SET:
            reason = "not set: its dependencies are not met, or another symbol turned it off"
        else:
            reason = f"Kconfig chose {have} (a dependency limits it, or the symbol takes another type of value)"
        mismatched.append(
            {
                "symbol": name,
                "requested": want,
                "actual": describe(have),
                "source": sources.get(name, "symbols"),
                "reason": reason,
            }
        )
    return mismatched


def summary(mismatched):
    """One line per dropped symbol, for an error message."""
    return "; ".join(f"{m['symbol']} (requested {describe(m['requested'])}, got {m['actual']})" for m in mismatched)
