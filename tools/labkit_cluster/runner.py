"""One playbook run through ansible-runner, and what it gives back: rc, per-host stats, task results."""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner

ROOT = Path(__file__).resolve().parents[2]  # the checkout: the collection, its ansible.cfg and roles

RESULT_EVENTS = {"runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"}
TAG = re.compile(r"[A-Za-z0-9_.-]+")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_STAT_KINDS = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")
# The controller's environment a run keeps; everything else of the caller's stays out of it.
_PASSED_ENV = (
    "ANSIBLE_CONFIG",
    "ANSIBLE_COLLECTIONS_PATH",
    "ANSIBLE_VAULT_PASSWORD_FILE",
    "PATH",
    "HOME",
    "LABKIT_CACHE",
    "LABKIT_REPORT_DIR",
)


@dataclass
class RunResult:
    rc: int
    stdout: str
    stats: dict
    events: list = field(repr=False)
    report: dict | None = field(default=None, repr=False)  # Lab.provision sets it: the lab report after the run

    def _stat(self, kind: str, host: str) -> int:
        return int(self.stats.get(kind, {}).get(host, 0))

    def changed(self, host: str) -> int:
        return self._stat("changed", host)

    def failed(self, host: str) -> int:
        """Failed tasks, counting an unreachable host as failed."""
        return self._stat("failures", host) + self._stat("dark", host)

    def hosts(self) -> dict[str, dict[str, int]]:
        """Per host: ok, changed, failures, dark (unreachable), skipped, rescued, ignored."""
        names = sorted({host for kind in _STAT_KINDS for host in self.stats.get(kind) or {}})
        return {host: {kind: self._stat(kind, host) for kind in _STAT_KINDS} for host in names}

    def _host_results(self, host: str):
        """(event kind, event_data) of every task result on host, in order."""
        for event in self.events:
            data = event.get("event_data", {})
            if event.get("event") in RESULT_EVENTS and data.get("host") == host:
                yield event["event"], data

    def results(self, host: str, task_name: str) -> list[dict]:
        """Module results (`res`) of every task named task_name on host, in order."""
        return [data.get("res", {}) for _, data in self._host_results(host) if data.get("task") == task_name]

    def changed_tasks(self, host: str) -> list[str]:
        """Names of the tasks that reported changed on host: what an idempotence failure names."""
        return [
            data.get("task", "?")
            for kind, data in self._host_results(host)
            if kind == "runner_on_ok" and data.get("res", {}).get("changed")
        ]

    def result(self, host: str, task_name: str) -> dict:
        res = self.results(host, task_name)
        assert res, f"task {task_name!r} did not run on {host}:\n{self.stdout[-4000:]}"
        return res[-1]

    def profile(self, top: int = 20) -> str:
        """The slowest task results (seconds, host, task): what to look at when a play is slow."""
        rows = []
        for event in self.events:
            data = event.get("event_data", {})
            if event.get("event") in RESULT_EVENTS and "duration" in data:
                rows.append((float(data["duration"]), data.get("host", "?"), data.get("task", "?")))
        rows.sort(reverse=True)
        total = sum(r[0] for r in rows)
        lines = [f"play profile: {len(rows)} task results, {total:.1f} s summed over hosts"]
        lines += [f"{d:7.1f}s  {host:12}  {task}" for d, host, task in rows[:top]]
        return "\n".join(lines) + "\n"


def _check_inputs(*, limit, tags, skip_tags, extra_vars) -> None:
    """Refuse what ansible-playbook would misread, before anything runs."""
    if limit is not None and (not isinstance(limit, str) or CONTROL.search(limit)):
        raise ValueError(f"limit {limit!r}: give a host pattern string without control characters")
    for field_name, names in (("tags", tags), ("skip_tags", skip_tags)):
        if isinstance(names, str):
            raise ValueError(f"{field_name} {names!r}: give a list of tag names, e.g. [{names!r}]")
        for name in names:
            if not isinstance(name, str) or not TAG.fullmatch(name):
                raise ValueError(f"{field_name}: {name!r} is not a tag name (letters, digits, _ . -)")
    if extra_vars is not None and not isinstance(extra_vars, dict):
        raise ValueError(f"extra_vars {extra_vars!r}: give a dict of variable names to values")


def run(
    playbook: str | os.PathLike,
    inventory: str | os.PathLike,
    *,
    limit: str | None = None,
    tags: Iterable[str] = (),
    skip_tags: Iterable[str] = (),
    extra_vars: dict | None = None,
    check: bool = False,
    diff: bool = False,
    args: Iterable[str] = (),
    on_event: Callable[[dict], None] | None = None,
    timeout: int | None = None,
    quiet: bool = True,
    report_dir: str | os.PathLike | None = None,
) -> RunResult:
    """Run playbook against inventory; args are more ansible-playbook options, as a list of words.
    report_dir: where the lab_report callback writes the lab report (cluster.yml's last play)."""
    _check_inputs(limit=limit, tags=tags, skip_tags=skip_tags, extra_vars=extra_vars)
    cmdline = [*args]
    if tags:
        cmdline += ["--tags", ",".join(tags)]
    if skip_tags:
        cmdline += ["--skip-tags", ",".join(skip_tags)]
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")
    if extra_vars:
        # JSON on the command line keeps types (ansible-runner's extravars file would too).
        cmdline += ["-e", json.dumps(extra_vars)]
    envvars = {key: os.environ[key] for key in _PASSED_ENV if key in os.environ}
    envvars.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    envvars["ANSIBLE_ROLES_PATH"] = str(ROOT / "roles")
    if report_dir is not None:
        envvars["LABKIT_REPORT_DIR"] = str(Path(report_dir).resolve())

    def handler(event: dict) -> bool:
        if on_event is not None:
            on_event(event)
        return True  # keep the event in the runner's own record too

    with tempfile.TemporaryDirectory(prefix="labkit-run-") as private:
        runner = ansible_runner.run(
            private_data_dir=private,
            project_dir=str(Path(playbook).resolve().parent),  # run from the playbook's directory
            playbook=str(Path(playbook).resolve()),
            inventory=str(Path(inventory).resolve()),
            limit=limit,
            cmdline=" ".join(shlex.quote(word) for word in cmdline) or None,
            envvars=envvars,
            event_handler=handler,
            quiet=quiet,
            timeout=timeout,
        )
        stdout = runner.stdout.read() if runner.stdout else ""
        return RunResult(rc=runner.rc, stdout=stdout, stats=runner.stats or {}, events=list(runner.events))
