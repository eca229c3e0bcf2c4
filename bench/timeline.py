#!/usr/bin/env python3
"""Where a test run's time went, per worker: read the file LABKIT_TIMELINE=<file> made.

    LABKIT_TIMELINE=/tmp/timeline.jsonl bash .ci/run
    python3 bench/timeline.py /tmp/timeline.jsonl [--phases SECONDS]

Prints each worker's work units in the order they ran (start and end in seconds from the first test,
and their length), the time each worker sat idle at the end while the other still ran, and with
--phases the test phases (setup, call, teardown) longer than SECONDS.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def units(records: list[dict]) -> dict[str, list[tuple[str, float, float]]]:
    """worker -> [(unit, start, end)] in the order the units ran."""
    spans: dict[tuple[str, str], list[float]] = {}
    for record in sorted(records, key=lambda r: r["start"]):
        span = spans.setdefault((record["worker"], record["unit"]), [record["start"], record["end"]])
        span[0], span[1] = min(span[0], record["start"]), max(span[1], record["end"])
    by_worker: dict[str, list[tuple[str, float, float]]] = {}
    for (worker, unit), (start, end) in sorted(spans.items(), key=lambda kv: kv[1][0]):
        by_worker.setdefault(worker, []).append((unit, start, end))
    return by_worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("timeline", type=Path)
    parser.add_argument("--phases", type=float, metavar="SECONDS", help="also list test phases longer than this")
    args = parser.parse_args()
    records = _records(args.timeline)
    if not records:
        raise SystemExit(f"{args.timeline}: no records")
    origin = min(r["start"] for r in records)
    finish = max(r["end"] for r in records)
    for worker, spans in sorted(units(records).items()):
        last = max(end for _unit, _start, end in spans)
        print(f"{worker}: {last - origin:.0f} s of work, idle {finish - last:.0f} s at the end")
        for unit, start, end in spans:
            if end - start >= 1:
                print(f"  {start - origin:7.0f} {end - origin:7.0f} {end - start:6.0f}  {unit}")
    if args.phases is not None:
        print(f"test phases over {args.phases:g} s:")
        for record in sorted(records, key=lambda r: r["start"]):
            length = record["end"] - record["start"]
            if length > args.phases:
                name = record["test"].split("/")[-1]
                print(f"  {record['worker']} {record['start'] - origin:7.0f} {length:6.0f} {record['phase']:8} {name}")


if __name__ == "__main__":
    main()
