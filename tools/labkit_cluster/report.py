"""./labkit report [-i INVENTORY] [--query EXPR] [--json]: print the lab report.

The report is what the lab_report callback writes after each run of cluster.yml (lab-report.json in
the report directory, by default `lab-report/` next to the inventory). --query selects from it with
a JMESPath expression over the report with `hosts` as a list of rows (each with its `host` name)
and prints the result as JSON, for example the hosts whose last trial boot fell back:

    ./labkit report --query "hosts[?kernel.fallback].host"
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

import jmespath

ROOT = Path(__file__).resolve().parents[2]
REPORT_FILE = "lab-report.json"


def _collection_module(relative: str):
    """A module of the collection in this checkout (stdlib only), without Ansible's collection loader."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lab_report = _collection_module("plugins/module_utils/lab_report.py")


def default_dir(inventory: str | os.PathLike) -> Path:
    """Where a run against inventory writes its report: LABKIT_REPORT_DIR, else lab-report/ beside it."""
    if os.environ.get("LABKIT_REPORT_DIR"):
        return Path(os.environ["LABKIT_REPORT_DIR"])
    inventory = Path(inventory)
    return (inventory if inventory.is_dir() else inventory.parent) / "lab-report"


def load(directory: str | os.PathLike) -> dict:
    """The report in directory; FileNotFoundError names the directory when no run has written one yet."""
    path = Path(directory) / REPORT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no lab report at {path}: run cluster.yml against the inventory first")
    return json.loads(path.read_text())


def query(report: dict, expression: str):
    """JMESPath over the report; `hosts` is a list there (each row with its `host` name), so
    expressions filter rows: hosts[?status=='failed'].host"""
    data = dict(report, hosts=[dict(row, host=name) for name, row in sorted(report["hosts"].items())])
    try:
        return jmespath.search(expression, data)
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"--query {expression!r} is not a JMESPath expression the report answers: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./labkit report", description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory", default=str(ROOT / "inventories" / "sim"))
    parser.add_argument("--dir", help="the report directory (default: lab-report/ beside the inventory)")
    parser.add_argument("--query", help="a JMESPath expression; prints what it selects, as JSON")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    options = parser.parse_args(argv)
    try:
        report = load(options.dir or default_dir(options.inventory))
        if options.query:
            output = json.dumps(query(report, options.query), indent=2, sort_keys=True) + "\n"
        elif options.json:
            output = json.dumps(report, indent=2, sort_keys=True) + "\n"
        else:
            output = lab_report.to_markdown(report)
    except (FileNotFoundError, ValueError) as exc:
        sys.stderr.write(f"labkit report: {exc}\n")
        return 2
    sys.stdout.write(output)
    return 0
