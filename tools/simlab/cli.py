"""simlab's command line: up, down, status, ssh HOST, clean."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from simlab import paths
from simlab.errors import SimlabError

DEFAULT_INVENTORY = Path(__file__).resolve().parent.parent.parent / "inventories" / "sim"


def _table(rows: list[dict]) -> str:
    if not rows:
        return "(no hosts)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simlab", description="The simulated lab of labkit.cluster.")
    parser.add_argument(
        "-i",
        "--inventory",
        default=os.environ.get("SIMLAB_INVENTORY", str(DEFAULT_INVENTORY)),
        help="the inventory that names the lab (default: inventories/sim)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the lab (idempotent)")
    up.add_argument("--cold", action="store_true", help="boot every guest from scratch, not from the saved state")
    sub.add_parser("down", help="stop every process the lab started and free its ports")
    sub.add_parser("status", help="print a table of the lab's hosts")
    ssh = sub.add_parser("ssh", help="open a shell (or run a command) on a guest")
    ssh.add_argument("host")
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER)
    sub.add_parser("clean", help="delete cached images and saved states (the lab must be down)")
    args = parser.parse_args(argv)

    from simlab.lab import Lab  # after parsing, so --help works without ansible-core

    try:
        if args.command == "clean":
            return _clean()
        lab = Lab(args.inventory)
        if args.command == "up":
            lab.up(cold=args.cold)
            print(_table(lab.status()))
        elif args.command == "down":
            lab.down()
        elif args.command == "status":
            print(_table(lab.status()))
        elif args.command == "ssh":
            command = " ".join(args.remote_command) or None
            argv_ssh = lab.ssh_argv(args.host, command)
            if sys.stdin.isatty():
                argv_ssh.insert(1, "-t")
            os.execvp(argv_ssh[0], argv_ssh)
    except SimlabError as exc:
        print(f"simlab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _clean() -> int:
    running = [d.name for d in paths.run_dir().glob("*/state.json")] if paths.run_dir().exists() else []
    if running:
        raise SimlabError(f"labs are still up ({running}): run `simlab down` first")
    shutil.rmtree(paths.images_dir(), ignore_errors=True)
    print(f"removed {paths.images_dir()}")
    return 0
