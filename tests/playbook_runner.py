"""Run a play written in a test (YAML text or Python lists) through labkit_cluster's runner.

The result (labkit_cluster.RunResult) gives what an assertion needs: `rc`, `changed(host)`,
`failed(host)`, `results(host, task_name)` and the full stdout for messages.
`LABKIT_PLAY_PROFILE=1` prints each play's slowest task results to stderr; `LABKIT_PLAY_PROFILE=<file>`
appends them to that file with the test's name (for a whole run under xdist, where stderr is captured).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import yaml
from labkit_cluster.runner import RunResult, run

ROOT = Path(__file__).resolve().parent.parent
SIM_INVENTORY = ROOT / "inventories" / "sim"


def run_playbook(
    play: str | list | os.PathLike,
    *,
    inventory: str | os.PathLike = SIM_INVENTORY,
    limit: str | None = None,
    tags: tuple[str, ...] | list[str] = (),
    extra_vars: dict | None = None,
    check: bool = False,
    diff: bool = False,
    timeout: int = 1800,
) -> RunResult:
    """Run `play` (a playbook's path, YAML text or a list of plays) against `inventory` and collect its result."""
    options = {"limit": limit, "tags": tags, "extra_vars": extra_vars, "check": check, "diff": diff, "timeout": timeout}
    if isinstance(play, os.PathLike):
        result = run(play, inventory, **options)
    else:
        text = play if isinstance(play, str) else yaml.safe_dump(play, sort_keys=False)
        with tempfile.TemporaryDirectory(prefix="labkit-play-") as tmp:
            playbook = Path(tmp, "play.yml")
            playbook.write_text(text)
            result = run(playbook, inventory, **options)
    _write_profile(result)
    return result


def _write_profile(result: RunResult) -> None:
    target = os.environ.get("LABKIT_PLAY_PROFILE", "")
    if target in ("", "0"):
        return
    if target == "1":
        sys.stderr.write(result.profile())
        return
    with open(target, "a", encoding="utf-8") as out:
        out.write(f"== {os.environ.get('PYTEST_CURRENT_TEST', '?')}\n{result.profile()}")
