"""A lab is an inventory; provisioning it runs playbooks/cluster.yml (or another playbook) against it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from labkit_cluster.runner import ROOT, RunResult, run

CLUSTER_PLAYBOOK = ROOT / "playbooks" / "cluster.yml"


class Lab:
    """The lab of one inventory (a file or a directory with group_vars and host_vars)."""

    def __init__(self, inventory: str | os.PathLike, playbook: str | os.PathLike = CLUSTER_PLAYBOOK):
        self.inventory = Path(inventory)
        self.playbook = Path(playbook)
        if not self.inventory.exists():
            raise FileNotFoundError(f"no inventory at {self.inventory}: give a file or a directory that exists")
        if not self.playbook.is_file():
            raise FileNotFoundError(f"no playbook at {self.playbook}")

    def provision(
        self,
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
    ) -> RunResult:
        """Run the lab's playbook; on_event gets each ansible-runner event as it happens."""
        return run(
            self.playbook,
            self.inventory,
            limit=limit,
            tags=tags,
            skip_tags=skip_tags,
            extra_vars=extra_vars,
            check=check,
            diff=diff,
            args=args,
            on_event=on_event,
            timeout=timeout,
        )
