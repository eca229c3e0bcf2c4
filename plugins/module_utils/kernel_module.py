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
import unicodedata

MODULES_ROOT = "/lib/modules"
SYS_MODULE = "/sys/module"
PROC_MODULES = "/proc/modules"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
PROC_STAT = "/proc/stat"

# Fields modinfo may print more than once.
MULTI_FIELDS = frozenset(("alias", "parm", "firmware", "import_ns", "softdep", "sig_hashalgo"))
KO_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
# The kernel keeps module names in char name[MODULE_NAME_LEN], MODULE_NAME_LEN = 64 - sizeof(unsigned long):
# 55 characters and the NUL on 64-bit kernels.
MODULE_NAME_MAX = 55
# A parameter is a file under /sys/module/<m>/parameters/, so its name is a file name (NAME_MAX).
PARAM_NAME_MAX = 255
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
# module_param() names are C identifiers; '-' equals '_' when the kernel matches them, and '.' appears in
# names of the form <prefix>.<param> (module_param_named with a prefix). A leading '-' would be an option
# to insmod and modprobe.
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# Bytes the kernel's isspace() takes for a word separator when it parses module arguments (lib/ctype.c:
# 0xA0 counts, and it appears inside UTF-8 sequences such as "à").
_KERNEL_SPACE = frozenset(b" \t\n\v\f\r\xa0")
_TRUE = frozenset(("y", "yes", "true", "on", "1"))
_FALSE = frozenset(("n", "no", "false", "off", "0"))


def normalize_name(name):
    """Module names treat '-' and '_' alike; the kernel shows '_'."""
    return name.replace("-", "_")


def bad_characters(text):
    """Characters of text that must not reach a config file or a kernel argument: control characters
    (newline included), line and paragraph separators, lone surrogates. Shown as repr() in messages."""
    return sorted({repr(c) for c in text if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")})


def module_name_problem(name):
    """Why name cannot be a kernel module name (what to fix), or None."""
    if not isinstance(name, str) or not name:
        return "module name is empty: give the name the kernel shows in /proc/modules, such as dummy"
    bad = bad_characters(name)
    if bad:
        return "module name %r holds control characters (%s): remove them" % (name, ", ".join(bad))
    if "/" in name or ".." in name:
        return (
            "module name %r holds '/' or '..': a module name is not a path; give the name (such as dummy), "
            "or the .ko file as path" % name
        )
    if not _MODULE_NAME.fullmatch(name):
        return "module name %r may hold only letters, digits, '_' and '-' (as the kernel names modules)" % name
    if len(name) > MODULE_NAME_MAX:
        return "module name %r is %d characters long; the kernel allows at most %d" % (
            name,
            len(name),
            MODULE_NAME_MAX,
        )
    return None


def param_name_problem(key):
    """Why key cannot be a module parameter name (what to fix), or None."""
    if not isinstance(key, str) or not key:
        return "parameter name %r is empty or not a string: give names as modinfo lists them (parm:)" % (key,)
    bad = bad_characters(key)
    if bad:
        return "parameter name %r holds control characters (%s): remove them" % (key, ", ".join(bad))
    if not _PARAM_NAME.fullmatch(key):
        return (
            "parameter name %r is not a kernel parameter name: it must start with a letter or '_' and hold only "
            "letters, digits, '_', '-' and '.' (no spaces, no '='); check the names with modinfo" % key
        )
    if len(key) > PARAM_NAME_MAX:
        return "parameter name %r is longer than %d characters" % (key, PARAM_NAME_MAX)
    return None


def _scalar_text(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    return str(value)


def param_value_problem(key, value):
    """Why value cannot be passed to the kernel as parameter key (what to fix), or None.

    The kernel splits module arguments at whitespace outside double quotes and drops the quotes around a value;
    it has no escape for a double quote, so a quote inside a value would swallow the arguments after it.
    """
    if isinstance(value, dict):
        return "parameter %s: a value cannot be a dictionary; give a string, a number, a boolean or a list" % key
    if isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, (dict, list, tuple)):
                return "parameter %s: list items must be strings, numbers or booleans (arrays are one level)" % key
            if "," in _scalar_text(item):
                return (
                    "parameter %s: list item %r holds ',', which the kernel takes as the separator of array "
                    "items: give one item per list entry" % (key, _scalar_text(item))
                )
        text = ",".join(_scalar_text(item) for item in value)
    elif isinstance(value, (str, int, float)) or value is None:
        text = _scalar_text(value)
    else:
        return "parameter %s: unsupported value type %s" % (key, type(value).__name__)
    bad = bad_characters(text)
    if bad:
        return (
            "parameter %s: the value holds control characters (%s); a newline would end the options line of the "
            "modprobe.d file and start another command: remove them" % (key, ", ".join(bad))
        )
    inner = text[1:-1] if len(text) >= 2 and text[0] == '"' and text[-1] == '"' else text
    if '"' in inner:
        return (
            "parameter %s: the value %s holds a double quote, which the kernel cannot take inside a value (it "
            "has no escape for it, and the quote would swallow the arguments after it): remove it" % (key, text)
        )
    return None


def params_problems(params):
    """Every reason params cannot be passed to the kernel or written to modprobe.d, as a list of messages."""
    if params is None:
        return []
    problems = []
    seen = {}
    for key in sorted(params, key=str):
        problem = param_name_problem(key)
        if problem is None:
            problem = param_value_problem(key, params[key])
            same = seen.setdefault(normalize_name(key), key)
            if problem is None and same != key:
                problem = "parameters %s and %s are the same parameter to the kernel ('-' equals '_'): keep one" % (
                    same,
                    key,
                )
        if problem:
            problems.append(problem)
    return problems


def install_dir_problem(install_dir):
    """(normalised relative directory, None) or (None, what to fix) for the install_dir option."""
    bad = bad_characters(install_dir or "")
    if bad:
        return None, "install_dir %r holds control characters (%s): remove them" % (install_dir, ", ".join(bad))
    if (install_dir or "").startswith("/"):
        return None, (
            "install_dir %r is absolute; it is a directory relative to %s/<release>/, such as updates or extra"
            % (install_dir, MODULES_ROOT)
        )
    parts = [part for part in (install_dir or "").split("/") if part not in ("", ".")]
    if ".." in parts:
        return None, (
            "install_dir %r holds '..': it must stay under %s/<release>/; give a directory there, such as updates"
            % (install_dir, MODULES_ROOT)
        )
    if not parts:
        return None, "install_dir is empty: give a directory under %s/<release>/, such as updates" % MODULES_ROOT
    return "/".join(parts), None


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


def format_param_value(value, key="value"):
    """A parameter value as the kernel parses it (bools as 1/0, lists comma-joined, quoted when it holds a byte
    the kernel takes for whitespace). ValueError (saying what to fix) for a value param_value_problem refuses."""
    problem = param_value_problem(key, value)
    if problem:
        raise ValueError(problem)
    if isinstance(value, (list, tuple)):
        text = ",".join(_scalar_text(item) for item in value)
    else:
        text = _scalar_text(value)
    already = len(text) >= 2 and text[0] == '"' and text[-1] == '"'
    if not already and _KERNEL_SPACE.intersection(text.encode("utf-8")):
        text = '"%s"' % text
    return text


def params_to_args(params):
    """{'numdummies': 3, 'tag': 'a b'} -> ['numdummies=3', 'tag="a b"'] in a stable order."""
    return ["%s=%s" % (key, format_param_value(params[key], key)) for key in sorted(params or {})]


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
