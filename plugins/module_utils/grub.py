# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""GRUB's files, read and written without a shell: the menu of grub.cfg, the environment block
(grubenv: saved_entry, next_entry) and GRUB_DEFAULT in /etc/default/grub.

Pure functions on text, so unit tests feed them real-looking files; the grub_entry module does the I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re
import shlex

ENV_HEADER = "# GRUB Environment Block\n"
ENV_SIZE = 1024
RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DEFAULT_LINE = re.compile(r"^GRUB_DEFAULT=.*$", re.M)


class GrubError(ValueError):
    pass


def release_problem(release):
    """Why `release` is not a kernel release (None when it is one)."""
    if not isinstance(release, str) or not release:
        return "release is empty"
    if _CONTROL.search(release):
        return f"release {release!r} contains a control character"
    if "/" in release or ".." in release:
        return f"release {release!r} contains '/' or '..': a kernel release names files in /boot and /lib/modules"
    if not RELEASE.fullmatch(release):
        return f"release {release!r} is not a kernel release (letters, digits, '.', '_', '+', '~', '-'; 128 at most)"
    return None


def path_problem(path, option):
    """Why `path` is not an absolute path without '..' or control characters (None when it is fine)."""
    if not isinstance(path, str) or not path:
        return f"{option} is empty"
    if _CONTROL.search(path):
        return f"{option} {path!r} contains a newline or another control character"
    if not posixpath.isabs(path):
        return f"{option} {path!r} is not an absolute path"
    if ".." in path.split("/"):
        return f"{option} {path!r} contains a '..' component"
    return None


def _words(line):
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError:
        return line.split()


def _entry_id(words):
    for flag in ("$menuentry_id_option", "--id"):
        if flag in words and words.index(flag) + 1 < len(words):
            return words[words.index(flag) + 1]
    return None


def parse_menu(text):
    """The menu entries of grub.cfg, in order, submenus flattened.

    Each entry: title, id (None without one), path (ids, or titles where an id is missing, joined by
    '>', as grub-reboot and grub-set-default take them), index_path (the same by position),
    submenu (the titles of the enclosing submenus), kernel (the `linux` image), cmdline (its arguments),
    initrd.
    """
    entries = []
    stack = []  # one frame per open '{': ('submenu'|'menuentry'|'block', data)
    counters = [0]  # position of the next entry at each submenu depth
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = _words(line)
        if not words:
            continue
        head = words[0]
        if head in ("menuentry", "submenu") and line.endswith("{"):
            title = words[1] if len(words) > 1 else ""
            ident = _entry_id(words)
            parents = [frame[1] for frame in stack if frame[0] == "submenu"]
            node = {
                "title": title,
                "id": ident,
                "index": counters[-1],
                "parents": parents,
            }
            counters[-1] += 1
            if head == "submenu":
                stack.append(("submenu", node))
                counters.append(0)
            else:
                node.update(kernel=None, cmdline="", initrd=[])
                stack.append(("menuentry", node))
            continue
        if line == "}" or line.startswith("}"):
            if stack:
                kind, node = stack.pop()
                if kind == "submenu":
                    counters.pop()
                elif kind == "menuentry":
                    entries.append(_finish(node))
            continue
        if line.endswith("{"):
            stack.append(("block", None))
            continue
        current = next((frame[1] for frame in reversed(stack) if frame[0] == "menuentry"), None)
        if current is None:
            continue
        if head in ("linux", "linux16", "linuxefi") and len(words) > 1:
            current["kernel"] = words[1]
            current["cmdline"] = " ".join(words[2:])
        elif head in ("initrd", "initrd16", "initrdefi"):
            current["initrd"] = words[1:]
    return entries


def _finish(node):
    chain = node["parents"] + [node]
    return {
        "title": node["title"],
        "id": node["id"],
        "path": ">".join(item["id"] or item["title"] for item in chain),
        "index_path": ">".join(str(item["index"]) for item in chain),
        "submenu": [item["title"] for item in node["parents"]],
        "kernel": node["kernel"],
        "cmdline": node["cmdline"],
        "initrd": node["initrd"],
    }


def is_recovery(entry):
    return (
        "recovery mode" in entry["title"] or "-recovery-" in (entry["id"] or "") or "single" in entry["cmdline"].split()
    )


def entry_for_release(entries, release):
    """The entry that boots /boot/vmlinuz-<release> normally: one whose id names the release (stable across
    update-grub), else the first such entry; None when grub.cfg has none."""
    image = f"vmlinuz-{release}"
    candidates = [
        entry
        for entry in entries
        if entry["kernel"] and posixpath.basename(entry["kernel"]) == image and not is_recovery(entry)
    ]
    named = [entry for entry in candidates if entry["id"] and f"-{release}-" in entry["id"]]
    return (named or candidates or [None])[0]


def resolve_saved(entries, saved):
    """(entry, stable) for a saved_entry/next_entry value: stable when it names the entry by ids or titles
    (an index follows update-grub's ordering). (None, False) when it names no entry."""
    if not saved:
        return None, False
    for entry in entries:
        if saved == entry["path"]:
            return entry, True
        titles = ">".join(entry["submenu"] + [entry["title"]])
        if saved == titles:
            return entry, True
        if entry["id"] and saved == entry["id"] and not entry["submenu"]:
            return entry, True
    for entry in entries:
        if saved == entry["index_path"]:
            return entry, False
    return None, False


def parse_env(data):
    """grubenv (bytes) as an ordered dict of its variables."""
    if not data:
        return {}
    text = data.decode("utf-8", errors="surrogateescape")
    if not text.startswith(ENV_HEADER):
        raise GrubError("not a GRUB environment block (no '# GRUB Environment Block' header)")
    variables = {}
    for line in text[len(ENV_HEADER) :].split("\n"):
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise GrubError(f"malformed line in the GRUB environment block: {line[:60]!r}")
        variables[name] = value.replace("\\n", "\n").replace("\\\\", "\\")
    return variables


def render_env(variables):
    """The 1024-byte environment block grub-editenv writes."""
    body = ENV_HEADER + "".join(
        f"{name}={value.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}\n"
        for name, value in variables.items()
    )
    data = body.encode("utf-8", errors="surrogateescape")
    if len(data) > ENV_SIZE:
        raise GrubError(f"the GRUB environment block would be {len(data)} bytes, more than its {ENV_SIZE}")
    return data + b"#" * (ENV_SIZE - len(data))


def with_saved_default(text):
    """/etc/default/grub with GRUB_DEFAULT=saved (replacing the line, or appended)."""
    text = text or ""
    if _DEFAULT_LINE.search(text):
        return _DEFAULT_LINE.sub("GRUB_DEFAULT=saved", text)
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "GRUB_DEFAULT=saved\n"


def uses_saved_default(text):
    values = [line.split("=", 1)[1].strip().strip("'\"") for line in _DEFAULT_LINE.findall(text or "")]
    return bool(values) and values[-1] == "saved"


def value_problem(value):
    """Why a value read from grub.cfg may not be written to grubenv (None when it may)."""
    if _CONTROL.search(value) or "\\" in value:
        return f"the entry id {value!r} holds a control character or a backslash"
    return None
