#!/usr/bin/env python3
"""Benchmark: a no-op run of playbooks/cluster.yml against 1 and 20 lightweight lab hosts.

The hosts are podman containers (the Molecule image plus openssh-server, systemd as PID 1) reached over SSH
on 127.0.0.1 like the sim guests, in the `qemu_hosts` group: cluster.yml runs lab_base (its facts, one probe
per host, nothing else when nothing drifted) and the lab report's probe on them, the real roles and the real
round trips. For each size: start the containers, converge once, then time a second run, which must report
changed=0 on every host. The goal is T(20) / T(1) <= 2. What dominates is read from ansible-runner's events:
task results per host and the seconds they take, summed and per host.

Usage (root, podman): ~/.cache/labkit/venv/bin/python bench/lab_scale.py   (ports 2400-2419)
Writes bench/results/lab-scale.md.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from labkit_cluster.runner import RESULT_EVENTS, run  # noqa: E402

IMAGE = "localhost/labkit-debian-ssh:bookworm"
SIZES = (1, 20)
PORT = 2400
RESULT = ROOT / "bench" / "results" / "lab-scale.md"
CACHE = Path(os.environ.get("LABKIT_CACHE", Path.home() / ".cache" / "labkit"))
KEY = CACHE / "ssh" / "id_ed25519"
ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "tests" / "podman" / "containers.conf")}


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=ENV, check=check, capture_output=True, text=True)


def build_image() -> None:
    env = {**ENV, "LABKIT_MOLECULE_IMAGE": IMAGE, "LABKIT_IMAGE_EXTRA_PACKAGES": "openssh-server"}
    subprocess.run(["bash", str(ROOT / "tests" / "podman" / "build_image.sh")], env=env, check=True)


def name(n: int) -> str:
    return f"scale-{n:02d}"


def start(count: int, keys: Path) -> None:
    for n in range(count):
        sh(
            "podman", "run", "-d", "--rm", "--name", f"labkit-{name(n)}", "--hostname", name(n),
            "-p", f"127.0.0.1:{PORT + n}:22", "-v", f"{keys}:/root/.ssh:ro", IMAGE, "/sbin/init",
        )  # fmt: skip
    deadline = time.monotonic() + 180
    for n in range(count):
        while True:
            probe = sh(
                "ssh", "-i", str(KEY), "-p", str(PORT + n), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
                "root@127.0.0.1", "true", check=False,
            )  # fmt: skip
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{name(n)}: no SSH after 180 s: {probe.stderr}")
            time.sleep(1)


def stop(count: int) -> None:
    for n in range(count):
        sh("podman", "rm", "-f", "-t", "0", f"labkit-{name(n)}", check=False)


def inventory(directory: Path, count: int) -> Path:
    inv = directory / f"scale-{count}"
    (inv / "group_vars").mkdir(parents=True)
    shutil.copy2(ROOT / "inventories" / "sim" / "group_vars" / "all.yml", inv / "group_vars" / "all.yml")
    hosts = {name(n): {"ansible_port": PORT + n, "lab_address": f"10.250.0.{n + 10}"} for n in range(count)}
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"qemu_hosts": {"hosts": hosts}}}}))
    return inv


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine: containers and the controller share its CPUs."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def measure(count: int, directory: Path) -> dict:
    inv = inventory(directory, count)
    report = directory / f"report-{count}"
    first = run(ROOT / "playbooks" / "cluster.yml", inv, report_dir=report)
    if first.rc != 0:
        raise SystemExit(f"{count} hosts: the converging run failed:\n{first.stdout[-3000:]}")
    started, (busy0, total0) = time.monotonic(), cpu_ticks()
    second = run(ROOT / "playbooks" / "cluster.yml", inv, report_dir=report)
    wall = time.monotonic() - started
    busy1, total1 = cpu_ticks()
    changed = {host: second.changed(host) for host in second.hosts() if second.changed(host)}
    if second.rc != 0 or changed:
        raise SystemExit(f"{count} hosts: the second run was not a no-op (rc {second.rc}, changed {changed})")
    per_host: Counter = Counter()
    seconds: Counter = Counter()
    tasks: Counter = Counter()
    for event in second.events:
        data = event.get("event_data", {})
        host = data.get("host", "")
        if event.get("event") in RESULT_EVENTS and host.startswith("scale-") and "duration" in data:
            per_host[host] += 1
            seconds[host] += float(data["duration"])
            tasks[data.get("task", "?")] += float(data["duration"])
    return {
        "count": count,
        "wall": wall,
        "tasks_per_host": max(per_host.values(), default=0),
        "task_seconds_per_host": sum(seconds.values()) / max(len(seconds), 1),
        "cpu_busy": (busy1 - busy0) / max(total1 - total0, 1),
        "top_tasks": tasks.most_common(5),
    }


def write(rows: list[dict]) -> None:
    base = rows[0]["wall"]
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, check=True, cwd=ROOT, capture_output=True, text=True)
    lines = [
        "# A no-op run of cluster.yml against 1 and 20 hosts",
        "",
        f"Measured by `bench/lab_scale.py` on {platform.node()} ({os.cpu_count()} CPUs), commit "
        f"{commit.stdout.strip()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average before "
        f"{os.getloadavg()[0]:.2f}. Hosts: podman containers with sshd (systemd as PID 1) in `qemu_hosts`, forks 20.",
        "",
        "| hosts | wall time of the no-op run | T(n) / T(1) | task results per host | task seconds per host (summed) "
        "| machine CPU busy |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['count']} | {row['wall']:.1f} s | {row['wall'] / base:.2f} | {row['tasks_per_host']} | "
            f"{row['task_seconds_per_host']:.1f} s | {row['cpu_busy']:.0%} |"
        )
    ratio = rows[-1]["wall"] / base
    lines += ["", f"Goal T(20) / T(1) <= 2: **{'met' if ratio <= 2 else 'missed'}** ({ratio:.2f}).", ""]
    lines += [f"Tasks that took the most seconds summed over the {rows[-1]['count']} hosts:", ""]
    lines += [f"- {seconds:.1f} s  {task}" for task, seconds in rows[-1]["top_tasks"]]
    lines += [""]
    RESULT.write_text("\n".join(lines))


def main() -> None:
    build_image()
    rows = []
    with tempfile.TemporaryDirectory(prefix="labkit-scale-") as tmp:
        keys = Path(tmp) / "ssh"
        keys.mkdir(mode=0o700)
        (keys / "authorized_keys").write_text(Path(f"{KEY}.pub").read_text())
        (keys / "authorized_keys").chmod(0o600)
        for count in SIZES:
            stop(max(SIZES))
            try:
                start(count, keys)
                rows.append(measure(count, Path(tmp)))
                print(rows[-1], flush=True)
            finally:
                stop(count)
    write(rows)
    print(RESULT.read_text())


if __name__ == "__main__":
    main()
