#!/usr/bin/env python3
"""Benchmark: the whole test suite from an empty cache, then again with the cache that run left.

Runs `bash .ci/run` (what CI runs: set-up, then `./labkit test`) twice, one after the other, with
LABKIT_CACHE pointing at a fresh directory: the first run is the cold one (every image, template,
kernel and container image is made), the second the warm one. Debian packages are installed on the
machine already (both runs share them, as CI's machine does). Writes bench/results/suite.md: wall
time of each run, its pytest summary, the 25 slowest tests (pytest's --durations), the load average
before and during each run, the ccache hit rate of the kernel builds, the date and the commit.

Each run is also recorded in bench/results/suite.json (one entry per kind, with its commit and date),
and the report shows every recorded kind: `--only warm` after an earlier cold run keeps that cold
run's figures beside the new warm ones, each with the commit it measured.

Usage: python3 bench/suite.py [--cache DIR] [--only cold|warm] [--output FILE]
       python3 bench/suite.py --record KIND --log LOG --seconds S --cache DIR [--commit C]
    --cache   the cache directory both runs use (default: a new directory under /var/tmp);
              it must be empty or absent for the cold run
    --only    run one of the two (warm needs a cache a cold run filled)
    --record  record a run made by `bash .ci/run` outside this script (its log and wall time), for
              a run whose bench process was stopped before it wrote the report; the load average
              of such a run is unknown and reported as such
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "suite.md"
RECORD = ROOT / "bench" / "results" / "suite.json"
GOALS = {"cold": 40 * 60, "warm": 20 * 60}


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


class LoadSampler(threading.Thread):
    """The 1-minute load average every 30 s while a run lasts."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self._done = threading.Event()

    def run(self):
        while not self._done.wait(30):
            self.samples.append(_loadavg())

    def stop(self) -> float:
        self._done.set()
        self.join()
        return sum(self.samples) / len(self.samples) if self.samples else _loadavg()


def _ccache(cache: Path, *args: str) -> str:
    if not shutil.which("ccache"):
        return ""
    env = dict(os.environ, CCACHE_DIR=str(cache / "kernel" / "ccache"))
    return subprocess.run(["ccache", *args], env=env, capture_output=True, text=True, check=False).stdout


def _hit_rate(stats: str) -> str:
    """`ccache -s` of ccache 4.x: the 'Hits:' line of the cacheable calls."""
    match = re.search(r"^\s*Hits:\s+(\d+)\s*/\s*(\d+)\s*\(([\d.]+)\s*%\)", stats, re.M)
    return f"{match.group(3)} % ({match.group(1)} of {match.group(2)} compilations)" if match else "n/a"


def _commit() -> str:
    commit, dirty = (
        subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False).stdout
        for cmd in (["rev-parse", "--short", "HEAD"], ["status", "--porcelain", "--untracked-files=no"])
    )
    return commit.strip() + (" (with uncommitted changes)" if dirty.strip() else "")


def _parse_log(kind: str, log: Path, seconds: float, rc: int | None) -> dict:
    text = log.read_text(errors="replace")
    summary = [line.strip("= ") for line in text.splitlines() if re.match(r"^=+ .*(passed|failed|error).* in ", line)]
    durations = re.search(r"=+ slowest \d+ durations =+\n(.*?)\n(?:=|\n)", text, re.S)
    if rc is None:  # a recorded run: its exit status is what its summary says
        rc = 0 if summary and not re.search(r"\b(failed|error)", summary[-1]) else 1
    return {
        "kind": kind,
        "rc": rc,
        "seconds": seconds,
        "summary": summary[-1] if summary else "(no pytest summary: see the log)",
        "durations": durations.group(1).strip().splitlines()[:25] if durations else [],
        "log": str(log),
        "commit": _commit(),
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    }


def run_suite(kind: str, cache: Path, log: Path) -> dict:
    env = dict(os.environ, LABKIT_CACHE=str(cache), CI="true")
    env.pop("LABKIT_KEEP_LAB", None)
    _ccache(cache, "-z")
    before = _loadavg()
    sampler = LoadSampler()
    sampler.start()
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(["bash", ".ci/run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - started
    during = sampler.stop()
    run = _parse_log(kind, log, seconds, proc.returncode)
    run.update(load_before=before, load_during=during, ccache=_hit_rate(_ccache(cache, "-s")))
    return run


def _load(run: dict) -> str:
    if run.get("load_before") is None:
        return "not sampled"
    return f"{run['load_before']:.2f} / {run['load_during']:.2f}"


def _report(runs: list[dict], cache: Path) -> str:
    lines = [
        "# The whole test suite, cold and warm",
        "",
        f"Measured by `python3 bench/suite.py` with {os.cpu_count()} CPUs on {platform.node()}. Cold: `LABKIT_CACHE` "
        "empty (Debian packages installed). Warm: the same cache right after. Each run is `bash .ci/run`, as CI "
        "runs it.",
        "",
        "| run | wall time | goal | result | commit, date | load avg before / during | ccache hits (kernel builds) |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        goal = GOALS[run["kind"]]
        lines.append(
            f"| {run['kind']} | **{run['seconds'] / 60:.1f} min** ({run['seconds']:.0f} s) | ≤ {goal // 60} min "
            f"{'(met)' if run['seconds'] <= goal else '(missed)'} | {run['summary']} (exit {run['rc']}) | "
            f"{run['commit']}, {run['date']} | {_load(run)} | {run['ccache']} |"
        )
    for run in runs:
        lines += ["", f"## The 25 slowest tests, {run['kind']} run", "", "```", *run["durations"], "```"]
    lines += ["", f"Cache directory: `{cache}`; logs: " + ", ".join(f"`{r['log']}`" for r in runs), ""]
    return "\n".join(lines)


def _save(run: dict) -> list[dict]:
    """Record one run (replacing the earlier run of its kind); every recorded run, cold first."""
    recorded = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    recorded[run["kind"]] = run
    RECORD.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    return [recorded[kind] for kind in GOALS if kind in recorded]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--only", choices=["cold", "warm"])
    parser.add_argument("--output", type=Path, default=RESULT)
    parser.add_argument("--record", choices=["cold", "warm"])
    parser.add_argument("--log", type=Path)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--commit", help="with --record: the commit the recorded run measured (default: HEAD)")
    args = parser.parse_args()
    if args.record:
        if not (args.log and args.seconds and args.cache):
            parser.error("--record needs --log, --seconds and --cache")
        run = _parse_log(args.record, args.log, args.seconds, None)
        run.update(load_before=None, load_during=None, ccache=_hit_rate(_ccache(args.cache, "-s")))
        run["commit"] = args.commit or run["commit"]
        args.output.write_text(_report(_save(run), args.cache))
        print(f"recorded the {args.record} run; wrote {args.output}", file=sys.stderr)
        return 0
    cache = args.cache or Path(tempfile.mkdtemp(prefix="labkit-suite-", dir="/var/tmp"))
    kinds = [args.only] if args.only else ["cold", "warm"]
    if "cold" in kinds and cache.exists() and any(cache.iterdir()):
        print(f"{cache} is not empty: a cold run needs an empty cache", file=sys.stderr)
        return 2
    runs = []
    for kind in kinds:
        log = Path(tempfile.gettempdir()) / f"labkit-suite-{kind}.log"
        print(f"{kind} run: bash .ci/run with LABKIT_CACHE={cache}, log {log}", file=sys.stderr, flush=True)
        runs.append(run_suite(kind, cache, log))
        print(f"{kind} run: {runs[-1]['seconds']:.0f} s, {runs[-1]['summary']}", file=sys.stderr, flush=True)
        recorded = _save(runs[-1])
    args.output.write_text(_report(recorded, cache))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0 if all(r["rc"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
