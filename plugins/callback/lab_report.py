# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: lab_report
type: notification
short_description: Write the lab report (JSON, Markdown, HTML) at the end of a run of cluster.yml
description:
  - Collects each host's outcome (ok, changed, failed, unreachable), its last change and its failure with the
    message, and the C(lab_report_host) fact that the P(labkit.cluster.lab_report#role) role sets from its probe
    (kernels, modules, sysctls, subsystems, QEMU guests, BMC power, provenance).
  - At the end of the run merges them into C(lab-report.json) in the report directory (a host this run did not
    reach keeps its row) and writes C(lab-report.md) and C(lab-report.html) next to it.
  - Writes only for a playbook that has the lab_report role (cluster.yml), whether or not the run reaches it, so
    a run that fails before the end still records its failures. Other playbooks leave the report alone.
author:
  - labkit developers (@labkit)
requirements:
  - enable it in C(callbacks_enabled) (the collection's C(ansible.cfg) does) or with
    C(ANSIBLE_CALLBACKS_ENABLED=labkit.cluster.lab_report)
options:
  dir:
    description:
      - The report directory. When unset, the C(lab_report_dir) of the first reported host, else the directory
        C(lab-report) next to the inventory (the role's default).
    type: path
    env:
      - name: LABKIT_REPORT_DIR
    ini:
      - section: labkit_lab_report
        key: dir
"""

import datetime
import json
import os

from ansible.plugins.callback import CallbackBase
from ansible_collections.labkit.cluster.plugins.module_utils import lab_report
from ansible_collections.labkit.cluster.plugins.module_utils.atomic_file import atomic_write, locked

FACT = "lab_report_host"


def _new_host():
    return {"failure": None, "last_change": None, "state": None}


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "labkit.cluster.lab_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._playbook = None
        self._reporting = False
        self._inventory_dir = None
        self._hosts = {}

    def _host(self, result):
        if getattr(result._host, "implicit", False):  # the implicit localhost of cluster.yml's summary
            return _new_host()
        if self._inventory_dir is None:
            self._inventory_dir = result._host.get_vars().get("inventory_dir")
        return self._hosts.setdefault(result._host.get_name(), _new_host())

    def v2_playbook_on_start(self, playbook):
        self._playbook = os.path.basename(playbook._file_name)
        # roles: of every play (imported playbooks included) are loaded before the run starts
        self._reporting = any(
            role.get_name().split(".")[-1] == "lab_report" for play in playbook.get_plays() for role in play.get_roles()
        )

    def v2_runner_on_ok(self, result):
        host = self._host(result)
        facts = result._result.get("ansible_facts") or {}
        if FACT in facts:
            host["state"] = facts[FACT]
        if result._result.get("changed"):
            host["last_change"] = {"task": result._task.get_name(), "at": _now()}

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if ignore_errors:
            return
        self._host(result)["failure"] = {"task": result._task.get_name(), "msg": self._message(result._result)}

    def v2_runner_on_unreachable(self, result):
        self._host(result)["failure"] = {"task": result._task.get_name(), "msg": self._message(result._result)}

    @staticmethod
    def _message(result):
        """The module's message, with the command's rc and output when it ran one (as fail_json gives them)."""
        parts = [str(result.get("msg") or "")]
        if result.get("rc") not in (None, 0):
            parts.append("rc=%s" % result["rc"])
        output = str(result.get("stderr") or result.get("stdout") or "").strip()
        if output and output not in parts[0]:
            parts.append(output[-1000:])
        return "; ".join(part for part in parts if part)[-2000:]

    def v2_playbook_on_stats(self, stats):
        if not self._reporting or not self._hosts:
            return
        states = [host["state"] for host in self._hosts.values() if host["state"]]
        directory = self.get_option("dir") or (states[0].get("dir") if states else None)
        if not directory and self._inventory_dir:
            directory = os.path.join(self._inventory_dir, "lab-report")
        if not directory:
            self._display.warning("lab_report: no report directory (set lab_report_dir or LABKIT_REPORT_DIR)")
            return
        run = {"at": _now(), "playbook": self._playbook, "hosts": {}}
        for name, host in self._hosts.items():
            summary = stats.summarize(name)
            if summary["unreachable"]:
                status = "unreachable"
            elif summary["failures"]:
                status = "failed"
            else:
                status = "changed" if summary["changed"] else "ok"
            run["hosts"][name] = dict(host, status=status, changed=summary["changed"])
        path = os.path.join(directory, "lab-report.json")
        # read, merge and write under one lock: two runs against one inventory must not lose each other's rows
        with locked(path):
            report = lab_report.merge(self._read(path), run)
            atomic_write(path, json.dumps(report, indent=2, sort_keys=True) + "\n")
            atomic_write(os.path.join(directory, "lab-report.md"), lab_report.to_markdown(report))
            atomic_write(os.path.join(directory, "lab-report.html"), lab_report.to_html(report))
        self._display.display("lab report: %s (.md, .html)" % path)

    def _read(self, path):
        if not os.path.exists(path):
            return None
        try:
            with open(path) as handle:
                return json.load(handle)
        except ValueError as exc:
            self._display.warning("lab_report: %s is not JSON (%s); starting a new report" % (path, exc))
            return None
