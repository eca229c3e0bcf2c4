"""python -m labkit_cluster -i INVENTORY [ansible-playbook options]: provision the lab, with live progress.

`python -m labkit_cluster report [options]` prints the lab report instead (labkit_cluster.report).

On a terminal, a host-by-subsystem table updated as the run goes (labkit_cluster.table); elsewhere, a line for
each changed, failed or unreachable task result as it happens (labkit_cluster.progress). Then cluster.yml's
per-host summary and the play recap; exits with ansible-playbook's return code.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from labkit_cluster import report
from labkit_cluster.lab import CLUSTER_PLAYBOOK, Lab
from labkit_cluster.progress import Progress
from labkit_cluster.table import Table

SUMMARY_TASK = "Print one line per lab host"  # cluster.yml's last task, on localhost
COLOR = re.compile(r"\x1b\[[0-9;]*m")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["report"]:
        return report.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m labkit_cluster", description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory", required=True)
    parser.add_argument("--playbook", default=str(CLUSTER_PLAYBOOK))
    options, rest = parser.parse_known_args(argv)
    live = sys.stderr.isatty() and os.environ.get("TERM", "dumb") != "dumb"
    result = Lab(options.inventory, options.playbook).provision(args=rest, on_event=Table() if live else Progress())
    for line in (result.results("localhost", SUMMARY_TASK) or [{}])[-1].get("msg", []):
        sys.stdout.write(f"{line}\n")
    recap = result.stdout[result.stdout.rfind("PLAY RECAP") :] if "PLAY RECAP" in result.stdout else result.stdout
    if not sys.stdout.isatty():  # a log file or a pipe gets the recap without terminal colours
        recap = COLOR.sub("", recap)
    sys.stdout.write(recap if recap.endswith("\n") else recap + "\n")
    return result.rc


if __name__ == "__main__":
    sys.exit(main())
