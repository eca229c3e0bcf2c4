#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kmod
short_description: Load, reload, install and persist Linux kernel modules (by name or from a .ko file)
version_added: 0.1.0
description:
  - Loads a kernel module by name with C(modprobe) or from a C(.ko) file with C(insmod), or unloads it.
  - Treats a module built into the kernel (listed in C(modules.builtin)) as present.
  - Compares the loaded module with the file on disk (C(srcversion)) and with the requested parameters
    (C(/sys/module/<name>/parameters)) and reloads it when they differ and O(reload=true).
  - Checks the vermagic of a C(.ko) file against the running kernel before loading or installing it.
  - Can install a C(.ko) under C(/lib/modules/<release>/) (running C(depmod) only when the file changed) and make
    the module and its parameters persistent in its own files under C(/etc/modules-load.d/) and C(/etc/modprobe.d/),
    written atomically.
author:
  - labkit developers (@labkit)
attributes:
  check_mode:
    support: full
    description: Reports what would change (module state, installed file, persistence files) without changing it.
  diff_mode:
    support: full
    description: Shows the module state (loaded, srcversion, parameters) and each file before and after.
options:
  name:
    description:
      - Name of the kernel module. C(-) and C(_) are the same.
      - Letters, digits, C(_) and C(-) only, at most 55 characters (the kernel's limit); a name with C(/), C(..),
        spaces or control characters is refused.
      - Optional when O(path) is given; then the name comes from the file (C(modinfo)) and, if both are given,
        must match it.
    type: str
  path:
    description:
      - Absolute path on the target of a C(.ko) file (for example an out-of-tree build). A directory, a relative path
        or a path with control characters is refused.
      - Without O(install), the module is loaded from this file with C(insmod), after loading its dependencies
        with C(modprobe).
    type: path
  state:
    description:
      - V(present) loads the module (built-in modules count as loaded), V(absent) unloads it.
      - V(absent) with O(persistent=present) is refused (it would unload the module and load it at every boot).
    type: str
    choices: [present, absent]
    default: present
  params:
    description:
      - Module parameters as a dictionary. Booleans become C(1)/C(0), lists become comma-separated arrays,
        values with spaces are passed in double quotes, as the kernel parses them.
      - Names must be kernel parameter names (a letter or C(_), then letters, digits, C(_), C(-), C(.)); two names
        that differ only in C(-)/C(_) are refused. Values must be strings, numbers, booleans or lists of those; a
        value with a control character (a newline would start another line of the modprobe.d file) or a double quote
        (the kernel has no escape for it) is refused, and so is a list item with a comma.
      - Compared with the values of the loaded module when it is already loaded; see O(reload). A value comes from
        C(/sys/module/<name>/parameters/) when the module shows it there. Many modules hide some parameters
        (declared with permissions C(0), such as C(numdummies) of C(dummy)); for those the module uses what it
        recorded in C(/run/labkit/kmod/<name>.json) when it loaded this very instance of the module, else the
        C(options) that C(modprobe) applies (its own C(/etc/modprobe.d/zz-<name>.conf) and the other modprobe.d files)
        when those files were in place before the last boot (O(persistent=present)).
        A parameter known none of these ways is listed in RV(unverified_params) with a
        warning and does not cause a reload.
      - Parameters the module does not have are refused. For a built-in module the parameters cannot be changed
        at run time; they are accepted only when they already hold these values.
    type: dict
  reload:
    description:
      - When the loaded module differs from the file on disk (its C(srcversion)) or its live parameters differ
        from O(params), unload it and load it again.
      - When V(false), such a difference is only reported (RV(reload_reasons) and a warning).
      - When the load that follows the unload fails, the previous module is loaded again (the same file, put back
        first when O(install) had replaced it, and the parameters it had been loaded with as far as they are known)
        and the task fails with the error of the failed load, saying whether the previous module was restored
        (RV(restored)); C(changed) is then V(true).
    type: bool
    default: false
  install:
    description:
      - Copy O(path) to C(/lib/modules/<running release>/<install_dir>/<name>.ko) (named after the module, whatever
        the name of O(path), since C(modprobe) finds modules by file name) and run C(depmod) when that file changed,
        then load the module by name with C(modprobe) (which resolves its dependencies).
      - Needed for O(persistent=present) of a module that is not part of the kernel's module tree.
    type: bool
    default: false
  install_dir:
    description:
      - Directory under C(/lib/modules/<release>/) for O(install). C(updates) takes precedence over modules
        shipped with the kernel in the default C(depmod) search order.
      - A relative path, normalised (C(./extra/) is C(extra)); an absolute path, a C(..) component, or a directory
        whose symbolic links lead out of C(/lib/modules/<release>/) (such as C(build)) is refused.
    type: str
    default: updates
  persistent:
    description:
      - V(present) writes C(/etc/modules-load.d/<name>.conf) (load at boot) and, when O(params) is given,
        C(/etc/modprobe.d/zz-<name>.conf) with an C(options) line (an empty O(params) removes that file).
      - The options file is named C(zz-<name>.conf) because C(modprobe) applies the options lines of all modprobe.d
        files in file name order and the last value of a parameter wins; systemd's C(/usr/lib/modprobe.d/systemd.conf)
        sets C(numdummies=0) for C(dummy), C(numifbs=0) for C(ifb) and C(max_bonds=0) for C(bonding), which would beat
        a C(<name>.conf). A warning names any file that is still read later and sets one of O(params).
        An options file C(<name>.conf) written by an earlier version of this module is removed.
      - V(absent) removes those files.
      - V(disabled) leaves persistence alone (the default, as in community.general.modprobe).
      - Only files that carry this module's marker line are changed or removed; a file of the same name written
        by someone else is overwritten by V(present) (with a warning) and left in place by V(absent) (with a warning).
        Lines in other files are never edited.
      - The files are read at boot by systemd-modules-load and by the kmod init script of non-systemd
        Debian systems; no service is restarted.
    type: str
    choices: [present, absent, disabled]
    default: disabled
  check_vermagic:
    description:
      - Compare the vermagic of O(path) with the running kernel before loading or installing it and fail with
        both strings when they differ.
    type: bool
    default: true
notes:
  - A module compiled without C(MODULE_VERSION) has no C(srcversion) unless the kernel sets
    C(CONFIG_MODULE_SRCVERSION_ALL) (Debian does not); then only the parameters can be compared.
  - Parameters that C(/sys/module/<name>/parameters/) does not show (mode 0) are compared with what the module
    recorded when it loaded the module (C(/run/labkit/kmod/<name>.json), on tmpfs, so gone at reboot with the loaded
    module; a record stops counting once the module is unloaded or loaded again by anyone, which the module tells
    by its address and size in C(/proc/modules) and the boot id), else with the options of its own
    C(/etc/modprobe.d/zz-<name>.conf) and the other modprobe.d files when they predate the boot (any C(modprobe)
    since then applied them).
    Otherwise they are reported in RV(unverified_params) with a warning, not reloaded on every run.
requirements:
  - kmod (C(modprobe), C(insmod), C(rmmod), C(modinfo), C(depmod))
seealso:
  - module: labkit.cluster.sysctl
"""

EXAMPLES = r"""
- name: Load dummy with three interfaces, reloading it if it runs with another count
  labkit.cluster.kmod:
    name: dummy
    params:
      numdummies: 3
    reload: true

- name: Load an out-of-tree module straight from its build directory
  labkit.cluster.kmod:
    path: /usr/src/dcpim/dcpim_module.ko
    params:
      tag: "lab run 7"
      ports: [4000, 4001]

- name: Install web10g's module for the running kernel, load it, keep it across reboots
  labkit.cluster.kmod:
    path: /opt/web10g/tcp_estats_nl.ko
    install: true
    persistent: present
    reload: true

- name: Unload a module and stop loading it at boot
  labkit.cluster.kmod:
    name: ifb
    state: absent
    persistent: absent
"""

RETURN = r"""
name:
  description: Module name as the kernel shows it.
  returned: always
  type: str
  sample: dummy
loaded:
  description: Whether the module is loaded (or built in) after the task.
  returned: always
  type: bool
  sample: true
builtin:
  description: Whether the module is built into the kernel.
  returned: always
  type: bool
  sample: false
srcversion:
  description: C(srcversion) of the loaded module after the task, else of the file on disk; empty when unknown.
  returned: always
  type: str
  sample: 15A3BA94DC48031C48FD057
vermagic:
  description: Vermagic of the module file (O(path) or the file C(modprobe) would load); empty when unknown.
  returned: always
  type: str
  sample: 6.1.0-50-amd64 SMP preempt mod_unload modversions
filename:
  description: The module file (O(path), the installed copy, or what C(modinfo) finds); empty for built-ins.
  returned: always
  type: str
  sample: /lib/modules/6.1.0-50-amd64/updates/labkit_fixture.ko
params:
  description:
    - Known parameter values of the module after the task (requested values in check mode), that is what
      C(/sys/module/<name>/parameters/) shows, plus hidden parameters whose values are known from the module's
      own load record or boot-time options file (see O(params)). Empty when the module is not loaded.
  returned: always
  type: dict
  sample: {numdummies: '3'}
unverified_params:
  description:
    - Requested parameters of the loaded module whose values could not be known (see O(params)), so they were
      neither compared nor a reason to reload.
  returned: always
  type: list
  elements: str
  sample: [numdummies]
reloaded:
  description: Whether the module was (or in check mode would be) unloaded and loaded again.
  returned: always
  type: bool
  sample: true
reload_reasons:
  description: How the loaded module differed from what was asked (C(srcversion), C(params:) and the parameter names).
  returned: always
  type: list
  elements: str
  sample: ['params: numdummies']
installed:
  description: Whether O(install) copied a new file (and ran C(depmod)).
  returned: always
  type: bool
  sample: false
files:
  description: Persistence and installed files this task changed (or would change in check mode).
  returned: always
  type: list
  elements: str
  sample: [/etc/modules-load.d/dummy.conf, /etc/modprobe.d/zz-dummy.conf]
commands:
  description: Commands the task ran to change the kernel (none in check mode).
  returned: always
  type: list
  elements: list
  sample: [[/usr/sbin/modprobe, -r, dummy], [/usr/sbin/modprobe, dummy, numdummies=3]]
restored:
  description:
    - Whether the previous module was loaded again after a reload whose load failed (the task fails either way).
  returned: when a reload failed after the module was unloaded
  type: bool
  sample: true
restore_error:
  description: What failed when loading the previous module again (C(msg), and C(rc), C(stdout), C(stderr), C(cmd)).
  returned: when restoring the previous module failed too
  type: dict
  sample: {msg: "modprobe dummy numdummies=3 failed (rc=1): ...", rc: 1}
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.labkit.cluster.plugins.module_utils import atomic_file
from ansible_collections.labkit.cluster.plugins.module_utils import kernel_module as km

MODULES_LOAD_D = "/etc/modules-load.d"
MODPROBE_D = "/etc/modprobe.d"
# Where else modprobe reads options, after MODPROBE_D (libkmod's search path).
SYSTEM_MODPROBE_DIRS = ("/run/modprobe.d", "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d")
# What kmod passed when it loaded a module, per load; tmpfs, so it goes away at reboot with the module.
STATE_DIR = "/run/labkit/kmod"
MARKER = "# Managed by labkit.cluster.kmod: edits are replaced on the next run."


class KernelModule:
    """State of one kernel module on the target and the steps that bring it where the task asks."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.release = os.uname()[2]
        self.modules_dir = os.path.join(km.MODULES_ROOT, self.release)
        self.commands = []
        self.files = []
        self.diffs = []
        self.warnings = []
        self.changed = False
        self.file_info = {}
        self.name = None
        self.path = self.params["path"]
        self.unverified = []
        self.dest_before = None  # the installed file before install replaced it (None: there was none)
        self.copied = False  # install copied path over it

    # ---- commands and facts -------------------------------------------------------------
    def fail(self, msg, **kwargs):
        """fail_json with the warnings so far, the commands run and whether something was changed already."""
        for warning in self.warnings:
            self.module.warn(warning)
        kwargs.setdefault("commands", self.commands)
        self.module.fail_json(msg=msg, changed=self.changed, **kwargs)

    def failure(self, args, rc, out, err, fail_msg=None):
        """What fail() reports for a command that failed: msg (with what to do when known), rc, output, cmd."""
        hint = km.explain_failure(err + out, self.name or self.path, self.release)
        msg = "%s failed (rc=%d): %s" % (" ".join(args), rc, (err or out).strip())
        if hint or fail_msg:
            msg = "%s. %s" % (hint or fail_msg, msg)
        return dict(msg=msg, rc=rc, stdout=out, stderr=err, cmd=args)

    def run(self, args, fail_msg=None, check_rc=True):
        args = [str(a) for a in args]
        rc, out, err = self.module.run_command(args, environ_update={"LC_ALL": "C"})
        if rc != 0 and check_rc:
            self.fail(**self.failure(args, rc, out, err, fail_msg))
        return rc, out, err

    def bin(self, name):
        return self.module.get_bin_path(name, required=True, opt_dirs=["/sbin", "/usr/sbin"])

    def modinfo(self, target):
        """Parsed modinfo of a file or name, or None when modinfo cannot find it."""
        rc, out, _err = self.run([self.bin("modinfo"), target], check_rc=False)
        if rc != 0:
            return None
        return km.parse_modinfo(out)

    def loaded_modules(self):
        return km.parse_proc_modules(atomic_file.read_text(km.PROC_MODULES) or "")

    def is_builtin(self):
        text = atomic_file.read_text(os.path.join(self.modules_dir, "modules.builtin"))
        return bool(text) and self.name in km.parse_modules_builtin(text)

    def sys_path(self, *parts):
        return os.path.join(km.SYS_MODULE, self.name, *parts)

    def live_srcversion(self):
        return (atomic_file.read_text(self.sys_path("srcversion")) or "").strip()

    def live_param(self, key):
        try:
            return atomic_file.read_text(self.sys_path("parameters", key)).rstrip("\n")
        except (AttributeError, OSError):
            return None

    def live_params(self):
        try:
            keys = sorted(os.listdir(self.sys_path("parameters")))
        except OSError:
            return {}
        values = {}
        for key in keys:
            value = self.live_param(key)
            if value is not None:
                values[key] = value
        return values

    # ---- parameters the kernel does not show ---------------------------------------------
    def record_path(self):
        return os.path.join(STATE_DIR, "%s.json" % self.name)

    def identity(self):
        entry = self.loaded_modules().get(self.name)
        return km.load_identity(entry, atomic_file.read_text(km.BOOT_ID)) if entry else None

    def read_record(self):
        """What kmod recorded when it loaded the instance of the module that is loaded now, else None."""
        try:
            record = json.loads(atomic_file.read_text(self.record_path()) or "null")
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("identity") != self.identity():
            return None  # loaded again since (by someone else), or never by kmod
        return record

    def options_file(self):
        # "zz-" so that it is read after the distribution's files: modprobe applies every options line in file
        # name order and the last value wins, and systemd's systemd.conf sets numdummies=0 / numifbs=0 / max_bonds=0.
        return os.path.join(MODPROBE_D, "zz-%s.conf" % self.name)

    def modprobe_configs(self, replace=None):
        """[(path, text)] of the modprobe.d files in the order modprobe reads them; replace: {path: text or None}."""
        listing = []
        for directory in (MODPROBE_D, *SYSTEM_MODPROBE_DIRS):
            try:
                listing.append((directory, os.listdir(directory)))
            except OSError:
                continue
        replace = replace or {}
        extra = [(os.path.dirname(path), [os.path.basename(path)]) for path in replace if replace[path] is not None]
        configs = []
        for path in km.config_order(extra + listing):
            text = replace[path] if path in replace else atomic_file.read_text(path)
            if text is not None:
                configs.append((path, text))
        return configs

    def write_record(self, via, wanted, path):
        identity = self.identity()
        if identity is None:
            return
        # modprobe applies the modprobe.d options first and the command line after them (which wins)
        params = km.effective_options(self.modprobe_configs(), self.name)[0] if via == "modprobe" else {}
        params.update({key: km.recorded_value(value) for key, value in (wanted or {}).items()})
        record = {"identity": identity, "via": via, "path": path if via == "insmod" else "", "params": params}
        try:
            atomic_file.atomic_write(self.record_path(), json.dumps(record, sort_keys=True) + "\n")
        except OSError as exc:
            self.warnings.append(
                "could not record the parameters %s was loaded with in %s (%s): hidden parameters will be "
                "reported as unverifiable" % (self.name, STATE_DIR, exc)
            )

    def remove_record(self):
        try:
            atomic_file.remove(self.record_path())
        except OSError:
            pass

    def boot_options(self):
        """The modprobe.d options of the module if kmod's own options file and every file that gives this module
        options were in place at boot, so every modprobe of this boot applied them; else {}."""
        text = atomic_file.read_text(self.options_file())
        if not text or MARKER not in text:
            return {}
        booted = km.parse_boot_time(atomic_file.read_text(km.PROC_STAT))
        values, sources = km.effective_options(self.modprobe_configs(), self.name)
        for path in set(sources.values()) | {self.options_file()}:
            try:
                written = os.stat(path).st_mtime
            except OSError:
                return {}
            if booted is None or written > booted:
                return {}
        return values

    def current_params(self):
        """Known parameter values of the loaded module: sysfs, else what kmod recorded, else boot-time options."""
        record = self.read_record()
        recorded = record.get("params", {}) if record else {}
        boot = self.boot_options() if record is None or record.get("via") == "modprobe" else {}
        values, _sources = km.known_params(self.live_params(), recorded, boot)
        return values

    def kernel_vermagic(self):
        """Vermagic of a module shipped with the running kernel (to compare flags too), or None."""
        dep = atomic_file.read_text(os.path.join(self.modules_dir, "modules.dep")) or ""
        for line in dep.splitlines():
            rel = line.split(":", 1)[0]
            if rel.startswith("kernel/"):
                info = self.modinfo(os.path.join(self.modules_dir, rel))
                return info.get("vermagic") if info else None
        return None

    # ---- steps --------------------------------------------------------------------------
    def resolve_name(self):
        wanted = self.params["name"]
        if self.path:
            if os.path.isdir(self.path):
                self.fail(
                    "path %s is a directory, expected a .ko file (such as %s/<module>.ko): give the module file"
                    % (self.path, self.path.rstrip("/"))
                )
            if not os.path.isfile(self.path):
                self.fail("path %s does not exist on the target: build or copy the .ko there first" % self.path)
            info = self.modinfo(self.path)
            if info is None:
                rc, out, err = self.run([self.bin("modinfo"), self.path], check_rc=False)
                self.fail(
                    "%s is not a kernel module modinfo can read: check the file" % self.path,
                    rc=rc,
                    stdout=out,
                    stderr=err,
                )
            self.file_info = info
            from_file = km.normalize_name(info.get("name") or km.name_from_path(self.path))
            problem = km.module_name_problem(from_file)
            if problem:
                self.fail("%s does not name a usable module: %s" % (self.path, problem))
            if wanted and km.normalize_name(wanted) != from_file:
                self.fail(
                    "name %s does not match the module in %s, which is %s: fix name or path"
                    % (wanted, self.path, from_file)
                )
            self.name = from_file
        else:
            self.name = km.normalize_name(wanted)

    def check_vermagic(self):
        vermagic = self.file_info.get("vermagic", "")
        reason = km.vermagic_mismatch(vermagic, self.release)
        if reason is None:
            reason = km.vermagic_mismatch(vermagic, self.release, self.kernel_vermagic())
        if reason:
            self.fail(
                '%s cannot be loaded into this kernel: %s. Module vermagic: "%s"; kernel release: "%s". '
                "Rebuild it against %s/build (or set check_vermagic: false if you know better)."
                % (self.path, reason, vermagic.strip(), self.release, self.modules_dir),
                vermagic=vermagic.strip(),
                kernel_release=self.release,
            )

    def plan_install(self):
        install_dir = km.install_dir_problem(self.params["install_dir"])[0]
        dest_dir = os.path.join(self.modules_dir, install_dir)
        real_root = os.path.realpath(self.modules_dir)
        if not os.path.realpath(dest_dir).startswith(real_root + os.sep):
            self.fail(
                "install_dir %s leads to %s, outside %s (through a symbolic link): give a directory under %s, "
                "such as updates" % (install_dir, os.path.realpath(dest_dir), real_root, self.modules_dir)
            )
        dest = os.path.join(dest_dir, km.installed_file_name(self.name, self.path))
        self.dest_before = atomic_file.read_bytes(dest)
        same = self.dest_before == atomic_file.read_bytes(self.path)
        rel = os.path.relpath(dest, self.modules_dir)
        dep = atomic_file.read_text(os.path.join(self.modules_dir, "modules.dep")) or ""
        indexed = any(line.split(":", 1)[0] == rel for line in dep.splitlines())
        return dest, not same, not indexed

    def do_install(self, dest, copy, depmod):
        if copy:
            self.files.append(dest)
            before = "previous file\n" if os.path.exists(dest) else ""
            after = "copy of %s (srcversion %s)\n" % (self.path, self.file_info.get("srcversion", "?"))
            self.diffs.append({"before_header": dest, "after_header": dest, "before": before, "after": after})
        if self.module.check_mode:
            return
        if copy:
            atomic_file.atomic_copy(self.path, dest)
            self.copied = True
            self.changed = True
        if copy or depmod:
            self.run([self.bin("depmod"), "-a", self.release])

    def differences(self, disk_srcversion):
        reasons = []
        live_src = self.live_srcversion()
        if live_src and disk_srcversion and live_src != disk_srcversion:
            reasons.append("srcversion")
        wanted = self.params["params"]
        if wanted:
            known = self.current_params()
            differ, unknown = km.params_differences(wanted, {key: known.get(key) for key in wanted})
            if differ:
                reasons.append("params: %s" % ", ".join(differ))
            if unknown:
                self.unverified = unknown
                self.warnings.append(
                    "%s: the values of parameters %s are unknown (not shown in %s, and the module was not loaded by "
                    "labkit.cluster.kmod in this boot nor with its modprobe.d options), so they were not compared and "
                    "did not cause a reload; to have them known, unload the module (state: absent) and load it with "
                    "this task once" % (self.name, ", ".join(unknown), self.sys_path("parameters"))
                )
        return reasons

    def check_param_names(self, info):
        wanted = self.params["params"] or {}
        known = (info or {}).get("parameters") or {}
        unknown = sorted(set(wanted) - set(known))
        if info and unknown:
            self.fail(
                "module %s has no parameter %s; it has: %s (see modinfo %s)"
                % (self.name, ", ".join(unknown), ", ".join(sorted(known)) or "none", self.name)
            )

    def unload(self, holders):
        if self.module.check_mode:
            return
        if self.modinfo(self.name) is not None:
            args = [self.bin("modprobe"), "-r", self.name]
        else:
            args = [self.bin("rmmod"), self.name]
        self.commands.append(args)
        rc, out, err = self.run(args, check_rc=False)
        if rc != 0:
            if not holders and os.path.isdir(self.sys_path("holders")):
                holders = sorted(os.listdir(self.sys_path("holders")))
            msg = km.explain_failure(err + out, self.name, self.release) or "unloading %s failed" % self.name
            if holders:
                msg += " (used by: %s)" % ", ".join(holders)
            self.fail(msg, rc=rc, stdout=out, stderr=err, cmd=args)
        self.changed = True
        self.remove_record()

    def load(self, from_file, wanted, path):
        """Load the module (from path with insmod when from_file, else with modprobe) with the parameters wanted.

        Returns None, or when a command failed what fail() reports for it.
        """
        if self.module.check_mode:
            return None
        args = km.params_to_args(wanted)
        if from_file:
            loaded = self.loaded_modules()
            builtin_text = atomic_file.read_text(os.path.join(self.modules_dir, "modules.builtin")) or ""
            builtins = km.parse_modules_builtin(builtin_text)
            for dep in self.file_info.get("depends", []):
                if dep not in loaded and dep not in builtins:
                    cmd = [self.bin("modprobe"), dep]
                    self.commands.append(cmd)
                    rc, out, err = self.run(cmd, check_rc=False)
                    if rc != 0:
                        return self.failure(
                            cmd,
                            rc,
                            out,
                            err,
                            fail_msg="module %s depends on %s, which modprobe cannot load for kernel %s: "
                            "install it first" % (self.name, dep, self.release),
                        )
                    self.changed = True
            cmd = [self.bin("insmod"), path, *args]
        else:
            cmd = [self.bin("modprobe"), self.name, *args]
        self.commands.append(cmd)
        rc, out, err = self.run(cmd, check_rc=False)
        if rc != 0:
            return self.failure(cmd, rc, out, err)
        self.changed = True
        # modprobe returns before a module's init finishes only when it fails; still, give sysfs a moment.
        for _attempt in range(20):
            if os.path.isdir(self.sys_path()):
                break
            time.sleep(0.05)
        self.write_record("insmod" if from_file else "modprobe", wanted, path)
        return None

    # ---- a failed reload ---------------------------------------------------------------------
    def previous_load(self, from_file):
        """How the loaded module was loaded, so that a reload whose load fails can load it again.

        kmod's load record says it exactly (tool, file, parameters). Without one, the module is loaded again the
        way this task loads it (modprobe, or insmod from path), with the known values of the parameters this
        task changes; the others come from modprobe.d and the module's defaults, as at any load.
        """
        record = self.read_record()
        if record:
            via = record.get("via")
            path = record.get("path") or self.path
            params = dict(record.get("params") or {})
        else:
            via = "insmod" if from_file else "modprobe"
            path = self.path
            known = self.current_params()
            params = {key: known[key] for key in self.params["params"] or {} if key in known}
        # values the kernel showed that cannot be passed back as they are ("(null)" is an unset string)
        params = {
            key: value
            for key, value in params.items()
            if value != "(null)" and km.param_name_problem(key) is None and km.param_value_problem(key, value) is None
        }
        return {"via": via, "path": path, "params": params, "srcversion": self.live_srcversion()}

    def restore(self, previous, failure):
        """After an unload and a failed load: load the previous module again, then fail with the load's error."""
        steps = []
        error = None
        if self.copied:
            dest = self.file_info["filename"]
            try:
                if self.dest_before is None:
                    atomic_file.remove(dest)
                    steps.append("removed %s" % dest)
                else:
                    atomic_file.atomic_write(dest, self.dest_before)
                    steps.append("put the previous %s back" % dest)
            except OSError as exc:
                error = {"msg": "could not put back the previous %s: %s" % (dest, exc)}
            if error is None:
                cmd = [self.bin("depmod"), "-a", self.release]
                self.commands.append(cmd)
                rc, out, err = self.run(cmd, check_rc=False)
                if rc != 0:
                    error = self.failure(cmd, rc, out, err)
        if error is None:
            error = self.load(previous["via"] == "insmod", previous["params"], previous["path"])
        args = " ".join(km.params_to_args(previous["params"]))
        how = "with %s" % args if args else "without parameters"
        extra = dict(
            rc=failure.get("rc"),
            stdout=failure.get("stdout", ""),
            stderr=failure.get("stderr", ""),
            cmd=failure.get("cmd"),
        )
        if error is None:
            steps.append("loaded it again %s" % how)
            now = self.live_srcversion()
            if previous["srcversion"] and now and now != previous["srcversion"]:
                steps.append(
                    "its file changed since it was loaded, so srcversion is now %s, was %s"
                    % (now, previous["srcversion"])
                )
            self.fail(
                "%s. The previous module %s was restored (%s)."
                % (failure["msg"].rstrip("."), self.name, "; ".join(steps)),
                restored=True,
                **extra,
            )
        self.fail(
            "%s. Restoring the previous module failed too, so %s is not loaded: %s"
            % (failure["msg"].rstrip("."), self.name, error["msg"]),
            restored=False,
            restore_error=error,
            **extra,
        )

    def persistence(self, builtin):
        mode = self.params["persistent"]
        if mode == "disabled":
            return
        load_file = os.path.join(MODULES_LOAD_D, "%s.conf" % self.name)
        opts_file = self.options_file()
        wanted = {}
        # an options file of kmod before it was named zz-<name>.conf: removed when it is ours
        legacy = os.path.join(MODPROBE_D, "%s.conf" % self.name)
        if MARKER in (atomic_file.read_text(legacy) or ""):
            wanted[legacy] = None
        if mode == "present":
            if builtin:
                self.warnings.append(
                    "%s is built into the kernel: nothing to load at boot; parameters of a built-in "
                    "module go on the kernel command line as %s.<param>=<value>" % (self.name, self.name)
                )
                return
            if self.path and not self.params["install"]:
                self.warnings.append(
                    "%s is loaded from %s, which modprobe cannot find at boot: use install: true so "
                    "the boot-time load works" % (self.name, self.path)
                )
            wanted[load_file] = "%s\n%s\n" % (MARKER, self.name)
            if self.params["params"] is not None:
                line = km.params_to_options_line(self.name, self.params["params"])
                wanted[opts_file] = "%s\n%s\n" % (MARKER, line) if line else None
        else:
            wanted[load_file] = None
            wanted[opts_file] = None
        for path, content in wanted.items():
            change = atomic_file.FileChange(path, content)
            ours = change.before is None or MARKER in change.before
            if not ours:
                if content is None:
                    self.warnings.append("%s was not written by labkit.cluster.kmod; left in place" % path)
                    continue
                self.warnings.append("%s was not written by labkit.cluster.kmod; replaced" % path)
            if not change.changed:
                continue
            self.changed = True
            self.files.append(path)
            self.diffs.append(change.diff())
            if not self.module.check_mode:
                change.apply()
        if mode == "present" and self.params["params"]:
            self.check_options_win(opts_file, wanted.get(opts_file))

    def check_options_win(self, opts_file, content):
        """Warn when another modprobe.d file, read after ours, sets one of the parameters (it would win at boot)."""
        values, sources = km.effective_options(self.modprobe_configs({opts_file: content}), self.name)
        for key in sorted(self.params["params"]):
            if sources.get(key) not in (None, opts_file):
                self.warnings.append(
                    "%s sets %s=%s for %s and is read after %s, so it wins when the module is loaded at boot: "
                    "remove that line, or rename that file so it sorts before %s"
                    % (sources[key], key, values[key], self.name, opts_file, os.path.basename(opts_file))
                )

    # ---- the task ---------------------------------------------------------------------------
    def validate(self):
        """Refuse, before anything is run or written, every input that is not what the kernel and kmod take."""
        p = self.params
        problems = []
        if p["name"] is not None:
            problems.append(km.module_name_problem(p["name"]))
        if p["path"] is not None:
            bad = km.bad_characters(p["path"])
            if bad:
                problems.append("path %r holds control characters (%s): remove them" % (p["path"], ", ".join(bad)))
            elif not os.path.isabs(p["path"]):
                problems.append("path %s is relative: give the absolute path of the .ko file on the target" % p["path"])
        if p["install"] and not p["path"]:
            problems.append("install: true needs path: the .ko file to install")
        problems.append(km.install_dir_problem(p["install_dir"])[1])
        if p["state"] == "absent" and p["persistent"] == "present":
            problems.append(
                "state: absent with persistent: present asks to unload the module and to load it at every boot: "
                "use persistent: absent (or disabled) to unload it, or state: present to keep it"
            )
        if p["params"] is not None:
            problems.extend(km.params_problems(p["params"]))
        problems = [problem for problem in problems if problem]
        if problems:
            self.module.fail_json(msg="; ".join(problems), changed=False)

    def apply(self):
        p = self.params
        self.validate()
        self.resolve_name()
        builtin = self.is_builtin()
        loaded = self.name in self.loaded_modules()
        state = p["state"]
        installed = False
        from_file = bool(self.path) and not p["install"]

        if state == "present" and self.path and p["check_vermagic"]:
            self.check_vermagic()
        if state == "present" and p["install"]:
            dest, copy, depmod = self.plan_install()
            if copy or depmod:
                self.changed = True
                installed = copy
                self.do_install(dest, copy, depmod)
            self.file_info["filename"] = dest

        disk_info = self.file_info
        if state == "present" and not builtin and not self.path:
            disk_info = self.modinfo(self.name)
            if disk_info is None and not loaded:
                rc, out, err = self.run([self.bin("modinfo"), self.name], check_rc=False)
                self.fail(
                    km.explain_failure("not found in directory", self.name, self.release),
                    rc=rc,
                    stdout=out,
                    stderr=err,
                )
        if state == "present":
            self.check_param_names(disk_info)

        reasons = []
        if state == "present" and builtin:
            if p["params"]:
                current = {key: self.live_param(key) for key in p["params"]}
                differ, _unknown = km.params_differences(p["params"], current)
                if differ:
                    self.fail(
                        "%s is built into kernel %s, so parameters %s cannot be changed at run time: set them on "
                        "the kernel command line (%s)"
                        % (
                            self.name,
                            self.release,
                            ", ".join(differ),
                            " ".join("%s.%s" % (self.name, arg) for arg in km.params_to_args(p["params"])),
                        ),
                        builtin=True,
                    )
        elif state == "present" and loaded:
            reasons = self.differences((disk_info or {}).get("srcversion", ""))
        elif state == "absent" and builtin:
            self.fail(
                "%s is built into kernel %s and cannot be unloaded: leave it, or use a kernel "
                "that builds it as a module" % (self.name, self.release),
                builtin=True,
            )

        action, warning = km.decide(state, loaded, builtin, p["reload"], reasons)
        if warning:
            self.warnings.append("%s: %s" % (self.name, warning))
        known_before = self.current_params() if loaded or builtin else {}
        before = self.describe(loaded or builtin, self.live_srcversion(), known_before)
        previous = self.previous_load(from_file) if action == "reload" else None
        if action in ("unload", "reload"):
            holders = self.loaded_modules().get(self.name, {}).get("holders", [])
            self.unload(holders)
        if action in ("load", "reload"):
            failure = self.load(from_file, p["params"], self.path)
            if failure and action == "reload":
                self.restore(previous, failure)
            if failure:
                self.fail(**failure)
        if action != "none":
            self.changed = True

        self.persistence(builtin)

        if self.module.check_mode:
            after_loaded = state == "present"
            after_src = (
                (disk_info or {}).get("srcversion", "")
                if action in ("load", "reload")
                else (self.live_srcversion() if after_loaded else "")
            )
            after_params = dict(self.current_params()) if action == "none" and (loaded or builtin) else {}
            if after_loaded:
                after_params.update({k: km.format_param_value(v).strip('"') for k, v in (p["params"] or {}).items()})
        else:
            after_loaded = builtin or self.name in self.loaded_modules()
            after_src = self.live_srcversion()
            after_params = self.current_params() if after_loaded else {}
            if state == "present" and not after_loaded:
                self.fail("%s did not stay loaded; see dmesg" % self.name)
        after = self.describe(after_loaded, after_src, after_params)
        if action != "none":
            self.diffs.insert(
                0,
                {
                    "before_header": "kernel module %s" % self.name,
                    "after_header": "kernel module %s" % self.name,
                    "before": before,
                    "after": after,
                },
            )

        result = dict(
            changed=self.changed,
            name=self.name,
            loaded=bool(after_loaded),
            builtin=builtin,
            srcversion=after_src or (disk_info or {}).get("srcversion", ""),
            vermagic=(disk_info or {}).get("vermagic", "").strip(),
            filename="" if builtin else (disk_info or {}).get("filename", ""),
            params=after_params,
            reloaded=action == "reload",
            reload_reasons=reasons,
            unverified_params=self.unverified,
            installed=installed,
            files=self.files,
            commands=self.commands,
        )
        if self.module._diff and self.diffs:
            result["diff"] = self.diffs
        for warning in self.warnings:
            self.module.warn(warning)
        self.module.exit_json(**result)

    def describe(self, loaded, srcversion, params):
        lines = ["loaded: %s" % ("true" if loaded else "false")]
        if srcversion:
            lines.append("srcversion: %s" % srcversion)
        for key in sorted(params or {}):
            lines.append("param %s: %s" % (key, params[key]))
        return "\n".join(lines) + "\n"


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            path=dict(type="path"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            params=dict(type="dict"),
            reload=dict(type="bool", default=False),
            install=dict(type="bool", default=False),
            install_dir=dict(type="str", default="updates"),
            persistent=dict(type="str", default="disabled", choices=["present", "absent", "disabled"]),
            check_vermagic=dict(type="bool", default=True),
        ),
        required_one_of=[("name", "path")],
        supports_check_mode=True,
    )


def main():
    module = build_module()
    KernelModule(module).apply()


if __name__ == "__main__":
    main()
