"""Run a playbook through ansible-runner and read its per-host stats and task results.

Tests write their plays as YAML text or Python lists; the result gives what an assertion needs:
`rc`, `changed(host)`, `failed(host)`, `results(host, task_name)` and the full stdout for messages.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner
import yaml

ROOT = Path(__file__).resolve().parent.parent
SIM_INVENTORY = ROOT / "inventories" / "sim"

_RESULT_EVENTS = {"runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"}


@dataclass
class PlaybookResult:
    rc: int
    stdout: str
    stats: dict
    events: list = field(repr=False)

    def _stat(self, kind: str, host: str) -> int:
        return int(self.stats.get(kind, {}).get(host, 0))

    def changed(self, host: str) -> int:
        return self._stat("changed", host)

    def failed(self, host: str) -> int:
        return self._stat("failures", host) + self._stat("dark", host)

    def results(self, host: str, task_name: str) -> list[dict]:
        """Module results (`res`) of every task named task_name on host, in order."""
        found = []
        for event in self.events:
            data = event.get("event_data", {})
            if event.get("event") in _RESULT_EVENTS and data.get("host") == host and data.get("task") == task_name:
                found.append(data.get("res", {}))
        return found

    def profile(self, top: int = 20) -> str:
        """The slowest task results (seconds, host, task): what to look at when a play is slow."""
        rows = []
        for event in self.events:
            data = event.get("event_data", {})
            if event.get("event") in _RESULT_EVENTS and "duration" in data:
                rows.append((float(data["duration"]), data.get("host", "?"), data.get("task", "?")))
        rows.sort(reverse=True)
        total = sum(r[0] for r in rows)
        lines = [f"play profile: {len(rows)} task results, {total:.1f} s summed over hosts"]
        lines += [f"{d:7.1f}s  {host:12}  {task}" for d, host, task in rows[:top]]
        return "\n".join(lines) + "\n"

    def result(self, host: str, task_name: str) -> dict:
        res = self.results(host, task_name)
        assert res, f"task {task_name!r} did not run on {host}:\n{self.stdout[-4000:]}"
        return res[-1]


def run_playbook(
    play: str | list,
    *,
    inventory: str | os.PathLike = SIM_INVENTORY,
    limit: str | None = None,
    extra_vars: dict | None = None,
    check: bool = False,
    diff: bool = False,
    timeout: int = 1800,
) -> PlaybookResult:
    """Run `play` (YAML text or a list of plays) against `inventory` and collect its result."""
    text = play if isinstance(play, str) else yaml.safe_dump(play, sort_keys=False)
    with tempfile.TemporaryDirectory(prefix="labkit-play-") as tmp:
        project = Path(tmp, "project")
        project.mkdir()
        (project / "play.yml").write_text(text)
        cmdline = []
        if check:
            cmdline.append("--check")
        if diff:
            cmdline.append("--diff")
        if extra_vars:
            # JSON on the command line keeps types (ansible-runner's extravars file would too).
            cmdline += ["-e", json.dumps(extra_vars)]
        envvars = {
            key: os.environ[key]
            for key in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "PATH", "HOME", "LABKIT_CACHE")
            if key in os.environ
        }
        envvars.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
        envvars["ANSIBLE_ROLES_PATH"] = str(ROOT / "roles")
        runner = ansible_runner.run(
            private_data_dir=tmp,
            playbook="play.yml",
            inventory=str(Path(inventory).resolve()),
            limit=limit,
            cmdline=" ".join(shlex.quote(c) for c in cmdline) or None,
            envvars=envvars,
            quiet=True,
            timeout=timeout,
        )
        stdout = runner.stdout.read() if runner.stdout else ""
        result = PlaybookResult(
            rc=runner.rc,
            stdout=stdout,
            stats=runner.stats or {},
            events=list(runner.events),
        )
    if os.environ.get("LABKIT_PLAY_PROFILE"):
        sys.stderr.write(result.profile())
    return result
