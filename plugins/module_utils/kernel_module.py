# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Kernel module facts and decisions: modinfo output, vermagic, modules.builtin, parameters.

Pure functions (no AnsibleModule) so unit tests can feed them text; the kmod module does the I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

MODULES_ROOT = "/lib/modules"
SYS_MODULE = "/sys/module"
PROC_MODULES = "/proc/modules"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
PROC_STAT = "/proc/stat"

# Fields modinfo may print more than once.
MULTI_FIELDS = frozenset(("alias", "parm", "firmware", "import_ns", "softdep", "sig_hashalgo"))
KO_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
_TRUE = frozenset(("y", "yes", "true", "on", "1"))
_FALSE = frozenset(("n", "no", "false", "off", "0"))


def normalize_name(name):
    """Module names treat '-' and '_' alike; the kernel shows '_'."""
    return name.replace("-", "_")


def name_from_path(path):
    base = os.path.basename(path)
    for suffix in KO_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return normalize_name(base)


def installed_file_name(name, path):
    """File name for installing the module `name` from `path`: modprobe finds a module by its file name,
    so a build copied as lkf-rev2.ko must be installed as labkit_fixture.ko (compression suffix kept)."""
    base = os.path.basename(path)
    suffix = next((s for s in sorted(KO_SUFFIXES, key=len, reverse=True) if base.endswith(s)), ".ko")
    return normalize_name(name) + suffix


_MODINFO_LINE = re.compile(r"^([A-Za-z0-9_.-]+):(?:\s+|$)(.*)$")


def parse_modinfo(text):
    """modinfo output -> dict.

    Single fields are strings, MULTI_FIELDS are lists, 'depends' is a list of names, and the 'parm'
    lines also become {name: description} under the extra key 'parameters'. A line that does not start
    with a field name continues the previous value (multi-line descriptions).
    """
    info = {}
    parameters = {}
    last = None
    for line in text.splitlines():
        match = _MODINFO_LINE.match(line)
        if not match:
            if last and line.strip():
                if isinstance(info[last], list):
                    info[last][-1] += "\n" + line.strip()
                else:
                    info[last] += "\n" + line.strip()
            continue
        key, value = match.group(1), match.group(2).strip()
        if key == "parm":
            pname, _sep, desc = value.partition(":")
            parameters[pname.strip()] = desc.strip()
        if key in MULTI_FIELDS:
            info.setdefault(key, []).append(value)
        else:
            info[key] = value
        last = key
    info["parameters"] = parameters
    info["depends"] = [normalize_name(d.strip()) for d in info.get("depends", "").split(",") if d.strip()]
    return info


def vermagic_release(vermagic):
    """The kernel release a vermagic string was built for (its first word)."""
    parts = (vermagic or "").split()
    return parts[0] if parts else ""


def vermagic_mismatch(module_vermagic, kernel_release, kernel_vermagic=None):
    """None when a module with module_vermagic can load into kernel_release, else the reason.

    kernel_vermagic (the vermagic of a module shipped with that kernel) also compares the flags
    (SMP, preempt, mod_unload, modversions) when known.
    """
    if not module_vermagic:
        return "the module has no vermagic (is it a kernel module?)"
    if vermagic_release(module_vermagic) != kernel_release:
        return "built for kernel %s, the kernel is %s" % (vermagic_release(module_vermagic), kernel_release)
    if kernel_vermagic and module_vermagic.split()[1:] != kernel_vermagic.split()[1:]:
        return 'built with options "%s", the kernel has "%s"' % (
            " ".join(module_vermagic.split()[1:]),
            " ".join(kernel_vermagic.split()[1:]),
        )
    return None


def parse_modules_builtin(text):
    """modules.builtin ('kernel/drivers/net/dummy.ko' per line) -> set of normalised module names."""
    names = set()
    for line in text.splitlines():
        if line.strip():
            names.add(name_from_path(line.strip()))
    return names


def parse_proc_modules(text):
    """/proc/modules -> {name: {'size', 'refcount', 'holders', 'state', 'address'}}.

    'address' is where the module sits in memory (zeros when kptr_restrict hides it from the reader).
    """
    loaded = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        holders = [h for h in fields[3].strip(",").split(",") if h and h != "-"]
        refcount = int(fields[2]) if fields[2].isdigit() else 0
        loaded[fields[0]] = {
            "size": fields[1],
            "refcount": refcount,
            "holders": holders,
            "state": fields[4],
            "address": fields[5] if len(fields) > 5 else "",
        }
    return loaded


def parse_boot_time(proc_stat):
    """Seconds since the epoch at which the kernel booted ('btime' of /proc/stat), or None."""
    for line in (proc_stat or "").splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "btime" and fields[1].isdigit():
            return int(fields[1])
    return None


def load_identity(entry, boot_id):
    """What tells one load of a module from the next: the boot, and its size and address in /proc/modules.

    A module unloaded and loaded again (by anyone) almost always lands at another address, so a record
    made at load time stops matching. When the address is hidden (kptr_restrict), size and boot remain.
    """
    entry = entry or {}
    return {"boot_id": (boot_id or "").strip(), "size": entry.get("size", ""), "address": entry.get("address", "")}


def _split_options(text):
    """Split a modprobe options string on whitespace outside double quotes (as the kernel parses them)."""
    words, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
            current += char
        elif char.isspace() and not quoted:
            if current:
                words.append(current)
            current = ""
        else:
            current += char
    if current:
        words.append(current)
    return words


def parse_options(text, name):
    """The parameters that 'options <name> k=v ...' lines of a modprobe.d file give module name.

    Values are returned as the kernel would store them (quotes removed); a later line wins.
    """
    params = {}
    name = normalize_name(name)
    for line in (text or "").splitlines():
        words = [] if line.lstrip().startswith("#") else _split_options(line)
        if len(words) < 3 or words[0] != "options" or normalize_name(words[1]) != name:
            continue
        for word in words[2:]:
            key, _sep, value = word.partition("=")
            params[key] = _unquote(value)
    return params


def config_order(listing):
    """The modprobe.d files in the order libkmod reads them.

    listing: [(directory, [file names])] in precedence order (/etc/modprobe.d first). Files ending in
    .conf are sorted by name across all directories; of two files with the same name, the one in the
    earlier directory is read and the other ignored.
    """
    chosen = {}
    for directory, names in listing:
        for name in names:
            if name.endswith(".conf") and name not in chosen:
                chosen[name] = os.path.join(directory, name)
    return [chosen[name] for name in sorted(chosen)]


def effective_options(configs, name):
    """What a `modprobe name` applies from modprobe.d: ({param: value}, {param: file that set it}).

    configs: [(path, text)] in config_order. modprobe passes every matching options line in that order,
    and the kernel keeps the last value of a parameter, so a later file wins (systemd's
    /usr/lib/modprobe.d/systemd.conf, with `options dummy numdummies=0`, beats /etc/modprobe.d/dummy.conf).
    """
    values, sources = {}, {}
    for path, text in configs:
        for key, value in parse_options(text, name).items():
            values[key] = value
            sources[key] = path
    return values, sources


def recorded_value(value):
    """A requested parameter value as kmod records it: the text the kernel parses, without quotes."""
    return _unquote(format_param_value(value))


def known_params(sysfs, recorded, boot_options):
    """Best known value of each parameter and where it comes from.

    sysfs (what /sys/module/<m>/parameters shows) wins; then the values kmod recorded when it loaded this
    instance of the module; then the options of kmod's own modprobe.d file when that file was in place
    before boot. Returns ({name: value}, {name: 'sysfs' | 'recorded' | 'modprobe.d'}).
    """
    values, sources = {}, {}
    for source, layer in (("modprobe.d", boot_options), ("recorded", recorded), ("sysfs", sysfs)):
        for key, value in (layer or {}).items():
            if value is not None:
                values[key] = value
                sources[key] = source
    return values, sources


def format_param_value(value):
    """A parameter value as the kernel parses it (bools as 1/0, lists comma-joined, quoted when spaced)."""
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, (list, tuple)):
        text = ",".join(format_param_value(v) for v in value)
    elif value is None:
        text = ""
    else:
        text = str(value)
    if any(c.isspace() for c in text) and not (text.startswith('"') and text.endswith('"')):
        if '"' in text:
            raise ValueError("a parameter value cannot hold both whitespace and double quotes: %r" % text)
        text = '"%s"' % text
    return text


def params_to_args(params):
    """{'numdummies': 3, 'tag': 'a b'} -> ['numdummies=3', 'tag="a b"'] in a stable order."""
    return ["%s=%s" % (key, format_param_value(params[key])) for key in sorted(params or {})]


def params_to_options_line(name, params):
    """The modprobe.d line that applies params at every load, or None without params."""
    if not params:
        return None
    return "options %s %s" % (name, " ".join(params_to_args(params)))


def _unquote(text):
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    return text


def param_matches(requested, actual):
    """Whether a sysfs parameter value equals the requested one; None when sysfs does not show it."""
    if actual is None:
        return None
    actual = actual.strip()
    wanted = _unquote(format_param_value(requested))
    if wanted == actual:
        return True
    low_w, low_a = wanted.lower(), actual.lower()
    if (low_w in _TRUE and low_a in _TRUE) or (low_w in _FALSE and low_a in _FALSE):
        return True
    # Arrays: sysfs shows "1,2,3"; ints may be written differently ("0x10" vs "16").
    w_items, a_items = wanted.split(","), actual.split(",")
    if len(w_items) == len(a_items):
        try:
            return all(int(w_items[i], 0) == int(a_items[i], 0) for i in range(len(w_items)))
        except ValueError:
            return False
    return False


def params_differences(requested, current):
    """Names of requested parameters whose live value differs (sorted); unknown ones are listed apart.

    current maps a parameter name to its sysfs text, or None when sysfs does not show it
    (write-only or 0000 permissions): those cannot be compared and are returned as `unknown`.
    """
    differ, unknown = [], []
    for key in sorted(requested or {}):
        match = param_matches(requested[key], current.get(key))
        if match is None:
            unknown.append(key)
        elif not match:
            differ.append(key)
    return differ, unknown


def decide(state, loaded, builtin, reload, differences):
    """What to do with the running kernel.

    differences: reasons the loaded module differs from what is asked ('srcversion', 'params: x').
    Returns (action, warning) with action in 'none', 'load', 'unload', 'reload'.
    """
    if state == "absent":
        return ("unload", None) if loaded else ("none", None)
    if builtin:
        return "none", None
    if not loaded:
        return "load", None
    if differences:
        if reload:
            return "reload", None
        return "none", "the loaded module differs from what is asked (%s); set reload: true to reload it" % (
            ", ".join(differences)
        )
    return "none", None


def explain_failure(stderr, name, release):
    """A message that says what to do for the usual modprobe/insmod/rmmod errors, or None."""
    text = stderr or ""
    if re.search(r"not found in directory|Module \S+ not found|could not find module", text, re.I):
        return (
            "module %s is not available for kernel %s: install the package that ships it, build it against "
            "%s/%s/build and pass path=, or check the name" % (name, release, MODULES_ROOT, release)
        )
    if "Unknown symbol" in text:
        return (
            "module %s needs symbols of a module that is not loaded (dependency missing): load its dependencies "
            "first, or use install: true so modprobe resolves them; dmesg names the missing symbols" % name
        )
    if "Invalid module format" in text or "Exec format error" in text:
        return (
            "the kernel refused %s as an invalid module format: it was built for another kernel or config "
            "(vermagic or symbol versions differ); rebuild it against %s/%s/build (dmesg says more)"
            % (name, MODULES_ROOT, release)
        )
    if "Key was rejected" in text or "Required key not available" in text:
        return (
            "the kernel enforces module signatures and %s is unsigned or signed by an unknown key: sign it with a "
            "key the kernel trusts or boot without module.sig_enforce" % name
        )
    if "in use" in text or "Resource temporarily unavailable" in text:
        return (
            "module %s is in use: stop what uses it (and unload the modules that depend on it) before unloading" % name
        )
    if "Unknown parameter" in text or "unknown parameter" in text:
        return "module %s rejected a parameter: check the names against `modinfo %s`" % (name, name)
    if "Operation not permitted" in text:
        return (
            "loading modules is not permitted here (not root, kernel lockdown, or module loading disabled): "
            "run as root on a host that allows it"
        )
    return None
