# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The lab report (docs/lab-report.md): one row per host, merged run after run.

The lab_report callback collects a run (per-host outcome, and the `lab_report_host` fact that the
lab_report role sets from its probe) and calls `merge()`; `to_markdown()` and `to_html()` render the
result. A host that a run did not reach keeps its previous row, so `--limit` and `--tags` runs
update the report instead of replacing it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import html

SCHEMA = 1
RUNS_KEPT = 20
# A host's state as the lab_report role reads it: replaced whenever the host reaches the report play.
STATE_KEYS = ("groups", "address", "kernel", "modules", "sysctls", "subsystems", "bmc", "provenance")
# What a role did in the run that ran it (`qemu`: qemu_host's guests), None in a run that did not run it
# (other --tags): kept from the last run that had it, with that run's time (`at`).
RESULT_KEYS = ("qemu",)


def empty():
    return {"schema": SCHEMA, "updated": None, "runs": [], "hosts": {}}


def merge(previous, run):
    """The report after `run` on top of `previous` (a report, or None).

    run: {"at", "playbook", "hosts": {name: {"status", "changed", "last_change", "failure", "state"}}}
    where state is the host's `lab_report_host` fact (None when the host did not reach the report).
    """
    report = copy.deepcopy(previous) if previous and previous.get("schema") == SCHEMA else empty()
    report["updated"] = run["at"]
    report["runs"] = (
        report["runs"] + [{"at": run["at"], "playbook": run.get("playbook"), "hosts": sorted(run["hosts"])}]
    )[-RUNS_KEPT:]
    for name, outcome in run["hosts"].items():
        row = report["hosts"].setdefault(name, {})
        state = outcome.get("state")
        if state:
            for key in STATE_KEYS:
                row[key] = state.get(key)
            for key in RESULT_KEYS:
                if state.get(key) is not None:
                    row[key] = dict(state[key], at=run["at"])
                row.setdefault(key, None)
            row["reported_at"] = run["at"]
        row["status"] = outcome["status"]
        row["run_at"] = run["at"]
        row["changed"] = outcome.get("changed", 0)
        if outcome.get("last_change"):
            row["last_change"] = outcome["last_change"]
        row["failure"] = outcome.get("failure")
    return report


def _kernel_text(kernel):
    kernel = kernel or {}
    parts = [kernel.get("running") or "?"]
    if kernel.get("artifact"):
        parts.append("artifact %s" % kernel["artifact"])
    if kernel.get("committed") and kernel.get("committed") != kernel.get("running"):
        parts.append("committed %s" % kernel["committed"])
    if kernel.get("fallback"):
        parts.append("fallback %s" % kernel["fallback"])
    if kernel.get("trial_pending"):
        parts.append("trial boot pending")
    return ", ".join(parts)


def _modules_text(modules):
    out = []
    for module in modules or []:
        params = " ".join("%s=%s" % item for item in sorted((module.get("params") or {}).items()))
        out.append(module["name"] + (" " + params if params else ""))
    return "; ".join(out)


def _mapping_text(mapping):
    return "; ".join("%s=%s" % item for item in sorted((mapping or {}).items()))


def _provenance_text(provenance):
    out = []
    for item in provenance or []:
        source = item.get("source") or {}
        origin = source.get("url") or source.get("tarball") or ""
        revision = source.get("commit") or source.get("sha256", "")[:16]
        patches = ",".join(p.get("sha256", "")[:12] for p in item.get("patches") or [])
        out.append(
            "%s %s %s@%s patches=[%s] config=%s"
            % (item.get("id"), item.get("release"), origin, revision, patches, (item.get("config_sha256") or "")[:16])
        )
    return "; ".join(out)


def _qemu_text(qemu, run_at):
    """Each guest: what this run did to it, its unit and console, and the checks qemu_host made when it made them."""
    if not qemu:
        return ""
    out = []
    for name, guest in sorted((qemu.get("guests") or {}).items()):
        if guest.get("restarted"):
            done = "restarted"
        elif guest.get("changed"):
            done = "started"
        else:
            done = "kept running"
        parts = ["%s: %s (%s)" % (name, done, guest.get("unit")), "console %s" % guest.get("console_log")]
        checks = guest.get("checks") or {}
        if "cxl_memdevs" in checks:
            parts.append("CXL memdevs %s" % (",".join(checks["cxl_memdevs"] or []) or "none"))
        for region, verdict in sorted((checks.get("ivshmem") or {}).items()):
            parts.append("ivshmem %s %s" % (region, verdict))
        out.append(", ".join(parts))
    if qemu.get("at") and qemu["at"] != run_at:
        out.insert(0, "as of %s" % qemu["at"])
    return "; ".join(out) or "no guests"


def _failure_text(failure):
    if not failure:
        return ""
    return "%s: %s" % (failure.get("task"), " ".join(str(failure.get("msg", "")).split())[:300])


def _last_change_text(change):
    if not change:
        return ""
    return "%s (%s)" % (change.get("task"), change.get("at"))


def rows(report):
    """(header, [row]) of the report's table, as text cells."""
    header = ("host", "groups", "status", "kernel", "modules", "sysctls", "subsystems", "QEMU guests", "BMC power",
              "last change", "failure", "provenance")  # fmt: skip
    body = []
    for name in sorted(report["hosts"]):
        host = report["hosts"][name]
        body.append(
            (
                name,
                ",".join(host.get("groups") or []),
                host.get("status", ""),
                _kernel_text(host.get("kernel")) if host.get("kernel") else "",
                _modules_text(host.get("modules")),
                _mapping_text(host.get("sysctls")),
                _mapping_text(host.get("subsystems")),
                _qemu_text(host.get("qemu"), host.get("run_at")),
                (host.get("bmc") or {}).get("power") or "",
                _last_change_text(host.get("last_change")),
                _failure_text(host.get("failure")),
                _provenance_text(host.get("provenance")),
            )
        )
    return header, body


def _md_cell(text):
    return text.replace("|", "\\|").replace("\n", " ") or " "


def to_markdown(report):
    header, body = rows(report)
    lines = ["# Lab report", "", "Updated %s; %d hosts." % (report.get("updated"), len(body)), ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row in body:
        lines.append("| " + " | ".join(_md_cell(cell) for cell in row) + " |")
    return "\n".join(lines) + "\n"


_STYLE = (
    "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
    "th,td{border:1px solid #999;padding:.3em .5em;vertical-align:top;text-align:left}"
    "th{background:#eee}tr.failed td,tr.unreachable td{background:#fdd}tr.changed td{background:#ffd}"
)


# The filter box: rows that do not contain its text are hidden; the page's #fragment fills it, so a
# link such as lab-report.html#failed shows the failed hosts only.
_SCRIPT = """<script>
function labkitFilter(text) {
  const query = text.toLowerCase();
  for (const row of document.querySelectorAll("#hosts tbody tr")) {
    row.hidden = query !== "" && !row.textContent.toLowerCase().includes(query);
  }
}
const box = document.getElementById("filter");
box.addEventListener("input", () => labkitFilter(box.value));
if (location.hash.length > 1) {
  box.value = decodeURIComponent(location.hash.slice(1));
  labkitFilter(box.value);
}
</script>"""


def to_html(report):
    header, body = rows(report)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Lab report</title>',
        "<style>%s</style></head><body>" % _STYLE,
        "<h1>Lab report</h1>",
        '<p><input id="filter" placeholder="show rows containing..." size="40"></p>',
        '<p id="updated">Updated %s; %d hosts.</p>' % (html.escape(str(report.get("updated"))), len(body)),
        '<table id="hosts"><thead><tr>%s</tr></thead><tbody>' % "".join("<th>%s</th>" % html.escape(h) for h in header),
    ]
    for row in body:
        status = row[2] if row[2] in ("ok", "changed", "failed", "unreachable") else "unknown"
        cells = "".join("<td>%s</td>" % html.escape(cell) for cell in row)
        out.append('<tr class="%s" data-host="%s">%s</tr>' % (status, html.escape(row[0]), cells))
    out.append("</tbody></table>")
    out.append(_SCRIPT)
    out.append("</body></html>")
    return "\n".join(out) + "\n"
