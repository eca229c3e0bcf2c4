"""A lab is an inventory; provisioning it runs playbooks/cluster.yml (or another playbook) against it."""

from __future__ import annotations

import os
from pathlib import Path

from labkit_cluster import report
from labkit_cluster.runner import ROOT, RunResult, run

CLUSTER_PLAYBOOK = ROOT / "playbooks" / "cluster.yml"


class Lab:
    """The lab of one inventory (a file or a directory with group_vars and host_vars)."""

    def __init__(
        self,
        inventory: str | os.PathLike,
        playbook: str | os.PathLike = CLUSTER_PLAYBOOK,
        report_dir: str | os.PathLike | None = None,
    ):
        self.inventory = Path(inventory)
        self.playbook = Path(playbook)
        # cluster.yml's lab report: LABKIT_REPORT_DIR, else lab-report/ beside the inventory
        self.report_dir = Path(report_dir) if report_dir else report.default_dir(self.inventory)
        if not self.inventory.exists():
            raise FileNotFoundError(f"no inventory at {self.inventory}: give a file or a directory that exists")
        if not self.playbook.is_file():
            raise FileNotFoundError(f"no playbook at {self.playbook}")

    def provision(self, **options) -> RunResult:
        """Run the lab's playbook. options are labkit_cluster.run's: limit, tags, skip_tags, extra_vars,
        check, diff, args (more ansible-playbook options), on_event (each ansible-runner event, as it
        happens), timeout. The result's `report` is the lab report after the run (None when the
        playbook writes none)."""
        result = run(self.playbook, self.inventory, report_dir=self.report_dir, **options)
        result.report = self.report()
        return result

    def report(self) -> dict | None:
        """The lab report as the last run left it (see docs/lab-report.md), or None before the first."""
        try:
            return report.load(self.report_dir)
        except FileNotFoundError:
            return None
