"""Run a play written in a test (YAML text or Python lists) through labkit_cluster's runner.

The result (labkit_cluster.RunResult) gives what an assertion needs: `rc`, `changed(host)`,
`failed(host)`, `results(host, task_name)` and the full stdout for messages.
`LABKIT_PLAY_PROFILE=1` prints each play's slowest task results to stderr.
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
    play: str | list,
    *,
    inventory: str | os.PathLike = SIM_INVENTORY,
    limit: str | None = None,
    extra_vars: dict | None = None,
    check: bool = False,
    diff: bool = False,
    timeout: int = 1800,
) -> RunResult:
    """Run `play` (YAML text or a list of plays) against `inventory` and collect its result."""
    text = play if isinstance(play, str) else yaml.safe_dump(play, sort_keys=False)
    with tempfile.TemporaryDirectory(prefix="labkit-play-") as tmp:
        playbook = Path(tmp, "play.yml")
        playbook.write_text(text)
        result = run(playbook, inventory, limit=limit, extra_vars=extra_vars, check=check, diff=diff, timeout=timeout)
    if os.environ.get("LABKIT_PLAY_PROFILE"):
        sys.stderr.write(result.profile())
    return result
