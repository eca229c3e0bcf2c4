#!/usr/bin/env python3
"""Benchmark: a cold boot of the sim lab vs a second `up` (restored from the saved state).

For 1 and 3 guests, in one run: time `up --cold` (every guest boots its kernel and systemd), then
`down` and `up` again (guests restored from the template's saved state), both until every guest
answers SSH with its identity set. Writes bench/results/simlab-boot.md. Ratios, not absolute
times, are the result: absolute times depend on the machine's load.

Usage: python bench/simlab_boot.py  (uses ports 2281-2283; the image is built first if needed)
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from simlab.lab import Lab  # noqa: E402

SIZES = (1, 3)


def _inventory(directory: Path, count: int) -> Path:
    hosts = {f"bench-g{n}": {"ansible_port": 2280 + n, "lab_address": f"10.213.8.{n}"} for n in range(1, count + 1)}
    inv = directory / f"bench-{count}"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "group_vars" / "all.yml").write_text((ROOT / "inventories" / "sim" / "group_vars" / "all.yml").read_text())
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"build_hosts": {"hosts": hosts}}}}))
    return inv


def _timed_up(lab: Lab, cold: bool) -> float:
    started = time.monotonic()
    lab.up(cold=cold)
    return time.monotonic() - started


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in SIZES:
            lab = Lab(_inventory(Path(tmp), count), log=lambda m: print(m, file=sys.stderr))
            lab.image  # build outside the timings  # noqa: B018
            lab._templates(lab.image, list(lab.guests.values()))  # the saved state exists before timing
            try:
                cold = _timed_up(lab, cold=True)
                lab.down()
                warm = _timed_up(lab, cold=False)
            finally:
                lab.down()
            rows.append((count, cold, warm))
            print(
                f"{count} guest(s): cold {cold:.1f}s, second up {warm:.1f}s, ratio {cold / warm:.1f}x", file=sys.stderr
            )
    report = ROOT / "bench" / "results" / "simlab-boot.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# simlab: cold boot vs second `up`",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"({platform.machine()}, QEMU TCG), one run of `python bench/simlab_boot.py`.",
        "Time from `up` until every guest answers SSH with its name, lab address and MAC set.",
        "",
        "| guests | cold boot (s) | second up, restored (s) | cold / second |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {count} | {cold:.1f} | {warm:.1f} | {cold / warm:.1f}x |" for count, cold, warm in rows]
    lines += [
        "",
        "The second `up` starts each guest from a copy of the template guest's saved memory state and",
        "disk overlay (QEMU `-incoming`), so no kernel or systemd boot happens; the first `up` on a",
        "machine pays one template boot (plus the image build, once) on top of that.",
        "",
    ]
    report.write_text("\n".join(lines))
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
