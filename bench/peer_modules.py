#!/usr/bin/env python3
"""labkit.cluster.sysctl / kmod against ansible.posix.sysctl / community.general.modprobe: behaviours and time.

Each behaviour is a small scenario run once with our module and once with the peer (taken from the
`ansible` wheel, see ENVIRONMENT.md), from the same starting state, and judged by what the kernel and the
files show afterwards, not by what the module says. Time: the same task repeated, median seconds per task
(from ansible-runner's events), as the ratio ours / peer.

- sysctl: runs on this host, inside a network namespace the script creates (the whole ansible-playbook
  runs under `ip netns exec`, so neither module touches the host's own values); files in a temp dir.
- kmod: needs a kernel that loads modules, i.e. a sim-lab guest:
  `bench/peer_modules.py --inventory inventories/sim --host sim-build` (skipped without --inventory).

Writes bench/results/peer-modules.md (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

import conftest  # noqa: E402,F401  (collection paths and ANSIBLE_* environment, as in the tests)
from playbook_runner import run_playbook  # noqa: E402

REPEAT = 12
PEERS = {"sysctl": "ansible.posix.sysctl", "kmod": "community.general.modprobe"}


# ---- shared --------------------------------------------------------------------------------------
def play(hosts: str, tasks: list[str]) -> str:
    return f"- hosts: {hosts}\n  gather_facts: false\n  tasks:\n" + "".join(tasks)


def task(title: str, module: str, args: dict, extra: str = "") -> str:
    body = "".join(f"        {k}: {json.dumps(v)}\n" for k, v in args.items())
    return f"    - name: {json.dumps(title)}\n      {module}:\n{body}      ignore_errors: true\n{extra}"


def durations(result, prefix: str) -> list[float]:
    found = []
    for event in result.events:
        data = event.get("event_data", {})
        if event.get("event") in ("runner_on_ok", "runner_on_failed") and data.get("task", "").startswith(prefix):
            found.append(float(data.get("duration") or 0))
    return found


def yes(flag: bool, note: str = "") -> str:
    mark = "yes" if flag else "**no**"
    note = " ".join(str(note).split()).replace("|", "/")
    return f"{mark} ({note})" if note else mark


def collection_version(ns: str, name: str) -> str:
    for base in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(":"):
        manifest = Path(base, "ansible_collections", ns, name, "MANIFEST.json")
        if manifest.exists():
            return json.loads(manifest.read_text())["collection_info"]["version"]
    return "unknown"


# ---- sysctl (host, inside a netns) ---------------------------------------------------------------
def proc_read(key: str) -> str:
    return " ".join(Path("/proc/sys", key.replace(".", "/")).read_text().split())


def proc_write(key: str, value: str) -> None:
    Path("/proc/sys", key.replace(".", "/")).write_text(value)


class SysctlBench:
    """Runs inside the network namespace: every /proc/sys/net value read or written here is the namespace's."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.inventory = tmp / "hosts"
        self.inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
        self.fin = proc_read("net.ipv4.tcp_fin_timeout")
        self.canary = "33" if self.fin != "33" else "34"

    def module(self, who: str) -> str:
        return "labkit.cluster.sysctl" if who == "ours" else PEERS["sysctl"]

    def args(self, who: str, conf: Path, **args) -> dict:
        args["sysctl_file"] = str(conf)
        if who == "ours" and "netns" not in args:
            args.setdefault("persistent", True)
        return args

    def fresh(self, who: str) -> Path:
        conf = self.tmp / f"{who}-{uuid.uuid4().hex[:6]}.conf"
        conf.write_text(f"# hand-written comment\nnet.ipv4.tcp_fin_timeout = {self.canary}\n")
        proc_write("net.ipv4.tcp_fin_timeout", self.fin)
        proc_write("net.ipv4.tcp_rmem", "4096 131072 6291456")
        proc_write("net.ipv4.ip_forward", "0")
        return conf

    def run(self, tasks: list[str], **kw):
        return run_playbook(play("localhost", tasks), inventory=self.inventory, **kw)

    def behaviours(self, who: str) -> dict:
        m, rows = self.module(who), {}
        rmem = "4096\t87380   6291456"

        conf = self.fresh(who)
        res = self.run(
            [
                task("set", m, self.args(who, conf, name="net.ipv4.tcp_rmem", value=rmem)),
                task("again", m, self.args(who, conf, name="net.ipv4.tcp_rmem", value=rmem)),
            ]
        )
        first, again = res.result("localhost", "set"), res.result("localhost", "again")
        rows["set value with tabs/spaces, live value right"] = yes(
            not first.get("failed") and proc_read("net.ipv4.tcp_rmem") == "4096 87380 6291456"
        )
        rows["second run with tabs reports changed=false"] = yes(
            again.get("changed") is False, f"changed={again.get('changed')}"
        )
        fin_now = proc_read("net.ipv4.tcp_fin_timeout")
        rows["applies only the changed key (no reload of the whole file)"] = yes(
            fin_now == self.fin, "other key of the file " + ("left alone" if fin_now == self.fin else "applied too")
        )
        kept = f"# hand-written comment\nnet.ipv4.tcp_fin_timeout = {self.canary}\n"
        text = conf.read_text()
        rows["keeps other lines and comments of the file as written"] = yes(
            text.startswith(kept), "" if text.startswith(kept) else "other lines rewritten: " + text.splitlines()[1]
        )
        rows["reports the previous value"] = yes("4096 131072 6291456" in json.dumps(first).replace("\\t", " "))

        conf = self.fresh(who)
        res = self.run([task("bool", m, self.args(who, conf, name="net.ipv4.ip_forward", value="yes"))])
        rows["boolean `yes` becomes 1"] = yes(
            proc_read("net.ipv4.ip_forward") == "1", f"live value {proc_read('net.ipv4.ip_forward')}"
        )

        conf = self.fresh(who)
        before = conf.read_text()
        res = self.run(
            [task("check", m, self.args(who, conf, name="net.ipv4.ip_forward", value="1"))], check=True, diff=True
        )
        check = res.result("localhost", "check")
        rows["check mode: reports the change, changes nothing"] = yes(
            check.get("changed") is True and proc_read("net.ipv4.ip_forward") == "0" and conf.read_text() == before
        )
        rows["diff mode shows before/after"] = yes(bool(check.get("diff")))

        conf = self.fresh(who)
        conf.write_text(conf.read_text() + "net.ipv4.ip_forward = 1\n")
        res = self.run([task("absent", m, self.args(who, conf, name="net.ipv4.ip_forward", state="absent"))])
        rows["state absent removes the key, keeps the rest"] = yes(
            "ip_forward" not in conf.read_text() and "# hand-written comment" in conf.read_text()
        )

        # A key that appears while the task runs (a per-interface key, as a module's key appears when it loads).
        conf = self.fresh(who)
        iface = f"lkb{uuid.uuid4().hex[:5]}"
        later = subprocess.Popen(["sh", "-c", f"sleep 4; ip link add {iface} type veth peer name {iface}p"])
        args = self.args(who, conf, name=f"net.ipv4.conf.{iface}.forwarding", value="1")
        if who == "ours":
            args["wait_timeout"] = 60
        res = self.run([task("wait", m, args)])
        later.wait()
        waited = Path(f"/proc/sys/net/ipv4/conf/{iface}/forwarding")
        rows["waits for a key that appears later (wait_timeout)"] = yes(
            waited.exists() and waited.read_text().strip() == "1" and not res.result("localhost", "wait").get("failed")
        )
        subprocess.run(["ip", "link", "del", iface], check=False)

        conf = self.fresh(who)
        res = self.run([task("estats", m, self.args(who, conf, name="net.ipv4.tcp_estats", value="127"))])
        msg = res.result("localhost", "estats").get("msg", "")
        rows["missing lab key: error names the module (tcp_estats_nl)"] = yes("tcp_estats_nl" in msg, msg[:90])

        inner = f"lkb-inner-{uuid.uuid4().hex[:5]}"
        subprocess.run(["ip", "netns", "add", inner], check=True)
        try:
            inner_read = ["ip", "netns", "exec", inner, "sysctl", "-n", "net.ipv4.ip_forward"]
            before = subprocess.run(inner_read, capture_output=True, text=True, check=True).stdout.strip()
            wanted = "0" if before == "1" else "1"
            mine = proc_read("net.ipv4.ip_forward")
            res = self.run(
                [
                    task(
                        "netns",
                        m,
                        {
                            "name": "net.ipv4.ip_forward",
                            "value": wanted,
                            "netns": inner,
                            "sysctl_file": str(self.fresh(who)),
                        },
                    )
                ]
            )
            inner_value = subprocess.run(inner_read, capture_output=True, text=True, check=False).stdout.strip()
            rows["applies inside a named netns (netns:)"] = yes(
                inner_value == wanted and proc_read("net.ipv4.ip_forward") == mine
            )
        finally:
            subprocess.run(["ip", "netns", "delete", inner], check=False)
        return rows

    def timing(self, who: str) -> dict:
        m, conf = self.module(who), self.fresh(who)
        values = ["4096 87380 6291456", "4096 65536 4194304"]
        tasks = [
            task(f"change {i}", m, self.args(who, conf, name="net.ipv4.tcp_rmem", value=values[i % 2]))
            for i in range(REPEAT)
        ]
        tasks += [
            task(f"same {i}", m, self.args(who, conf, name="net.ipv4.tcp_rmem", value=values[1])) for i in range(REPEAT)
        ]
        res = self.run(tasks)
        return {
            "change": statistics.median(durations(res, "change")),
            "no change": statistics.median(durations(res, "same")),
        }


def sysctl_child(out_json: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="labkit-bench-sysctl-") as tmp:
        bench = SysctlBench(Path(tmp))
        data = {"behaviours": {}, "timing": {}}
        for who in ("ours", "peer"):
            data["behaviours"][who] = bench.behaviours(who)
        for _round in range(2):  # interleave, keep the faster round of each (less noise from other load)
            for who in ("peer", "ours"):
                got = bench.timing(who)
                best = data["timing"].setdefault(who, got)
                data["timing"][who] = {k: min(best[k], got[k]) for k in got}
        out_json.write_text(json.dumps(data))


def run_sysctl() -> dict:
    ns = f"labkit-bench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(
                ["ip", "netns", "exec", ns, sys.executable, __file__, "--sysctl-child", out.name], check=True
            )
            return json.loads(Path(out.name).read_text())
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


# ---- kmod (sim-lab guest) ------------------------------------------------------------------------
# dummy declares numdummies with mode 0 (not in /sys/module/dummy/parameters): the interfaces it created tell
# which value the kernel applied.
COUNT_DUMMIES = "ip -o link show type dummy | wc -l"
CLEAN = (
    "modprobe -r dummy 2>/dev/null; rm -f /etc/modules-load.d/dummy.conf /etc/modprobe.d/dummy.conf "
    "/etc/modprobe.d/zz-dummy.conf /etc/modules-load.d/labkit-bench-other.conf; true"
)


class KmodBench:
    def __init__(self, inventory: str, host: str):
        self.inventory, self.host = inventory, host

    def module(self, who: str) -> str:
        return "labkit.cluster.kmod" if who == "ours" else PEERS["kmod"]

    def params(self, who: str, params: dict):
        return params if who == "ours" else " ".join(f"{k}={v}" for k, v in params.items())

    def run(self, tasks: list[str], **kw):
        return run_playbook(play(self.host, tasks), inventory=self.inventory, limit=self.host, **kw)

    def shell(self, title: str, command: str) -> str:
        return (
            f"    - name: {json.dumps(title)}\n      ansible.builtin.shell: {json.dumps(command)}\n"
            # read-only probes: run in check-mode plays too; a missing file is a finding, not a crash
            "      changed_when: false\n      check_mode: false\n      ignore_errors: true\n"
        )

    def out(self, res, title: str) -> str:
        return res.result(self.host, title).get("stdout", "").strip()

    def behaviours(self, who: str) -> dict:
        m, rows = self.module(who), {}
        two, four = self.params(who, {"numdummies": 2}), self.params(who, {"numdummies": 4})
        res = self.run(
            [
                self.shell("clean", CLEAN),
                task("load", m, {"name": "dummy", "params": two}),
                task("again", m, {"name": "dummy", "params": two}),
                self.shell("live 2", COUNT_DUMMIES),
                task("other params", m, {"name": "dummy", "params": four}),
                self.shell("live after other", COUNT_DUMMIES),
            ]
        )
        rows["load with parameters"] = yes(self.out(res, "live 2") == "2")
        rows["second run reports changed=false"] = yes(res.result(self.host, "again").get("changed") is False)
        other = res.result(self.host, "other params")
        rows["loaded with other parameters: reported"] = yes(
            bool(other.get("reload_reasons")) or bool(other.get("warnings")),
            f"changed={other.get('changed')}, dummy interfaces={self.out(res, 'live after other')}",
        )
        reload_args = {"name": "dummy", "params": four}
        if who == "ours":
            reload_args["reload"] = True
        res = self.run(
            [
                task("reload", m, reload_args),
                self.shell("live 4", COUNT_DUMMIES),
                task("reload again", m, reload_args),
            ]
        )
        rows["reload to apply new parameters"] = yes(
            self.out(res, "live 4") == "4", f"dummy interfaces={self.out(res, 'live 4')}"
        )
        again = res.result(self.host, "reload again")
        rows["same task again after that: changed=false, no reload"] = yes(
            again.get("changed") is False and not again.get("commands"), f"changed={again.get('changed')}"
        )

        res = self.run(
            [
                self.shell("clean", CLEAN),
                self.shell(
                    "builtin name",
                    "sed -n 's#.*/\\([^/]*\\)\\.ko$#\\1#p' /lib/modules/$(uname -r)/modules.builtin | head -1",
                ),
            ]
        )
        builtin = self.out(res, "builtin name")
        res = self.run(
            [
                task("builtin", m, {"name": builtin}),
                task("check", m, {"name": "dummy", "params": two}),
                self.shell("loaded after check", "test -d /sys/module/dummy && echo yes || echo no"),
            ],
            check=True,
            diff=True,
        )
        b = res.result(self.host, "builtin")
        rows["built-in module counts as present"] = yes(not b.get("failed") and b.get("changed") is False, builtin)
        c = res.result(self.host, "check")
        rows["check mode: reports, changes nothing"] = yes(
            c.get("changed") is True and self.out(res, "loaded after check") == "no"
        )
        rows["diff mode"] = yes(bool(c.get("diff")))

        res = self.run(
            [
                self.shell("clean", CLEAN),
                self.shell("foreign file", "echo dummy > /etc/modules-load.d/labkit-bench-other.conf"),
                task("persist", m, {"name": "dummy", "params": two, "persistent": "present"}),
                self.shell("files", "cat /etc/modules-load.d/dummy.conf /etc/modprobe.d/*dummy.conf"),
                # what the next modprobe (the boot-time load) passes: the last numdummies= wins in the kernel
                self.shell("at boot", "modprobe --show-depends dummy | grep -o 'numdummies=[0-9]*' | tail -1"),
                task("forget", m, {"name": "dummy", "state": "absent", "persistent": "absent"}),
                self.shell("foreign after", "cat /etc/modules-load.d/labkit-bench-other.conf"),
                self.shell("ko path", "modinfo -n dummy"),
            ]
        )
        files = self.out(res, "files")
        rows["persistent present: modules-load.d + modprobe.d options"] = yes(
            "dummy" in files and "numdummies=2" in files
        )
        boot = self.out(res, "at boot")
        rows["persistent options win at the next load (systemd.conf sets numdummies=0)"] = yes(
            boot == "numdummies=2", f"modprobe would pass {boot or 'nothing'}"
        )
        rows["persistent absent: files of others untouched"] = yes(
            self.out(res, "foreign after") == "dummy", self.out(res, "foreign after")[:40]
        )
        ko = self.out(res, "ko path")
        path_args = {"path": ko} if who == "ours" else {"name": ko}
        res = self.run(
            [
                task("by path", m, path_args),
                self.shell("loaded by path", "test -d /sys/module/dummy && echo yes || echo no"),
                self.shell("clean", CLEAN),
            ]
        )
        rows["load from a .ko path"] = yes(self.out(res, "loaded by path") == "yes")
        rows["vermagic checked before insmod, both strings shown"] = (
            "yes (tests/integration/test_kmod_lab.py)" if who == "ours" else "**no** (no .ko loading)"
        )
        return rows

    def timing(self) -> dict:
        """Ours and the peer task by task in one play (A B A B ...), so load from the rest of the
        machine falls on both alike; returns {who: {"change": median, "no change": median}}."""
        tasks = [self.shell("clean", CLEAN)]
        for i in range(REPEAT // 2):
            for who in ("peer", "ours"):
                m = self.module(who)
                tasks.append(task(f"{who} load {i}", m, {"name": "dummy"}))
                tasks.append(task(f"{who} unload {i}", m, {"name": "dummy", "state": "absent"}))
        tasks.append(task("final load", self.module("ours"), {"name": "dummy"}))
        for i in range(REPEAT):
            for who in ("peer", "ours"):
                tasks.append(task(f"{who} same {i}", self.module(who), {"name": "dummy"}))
        tasks.append(self.shell("clean after", CLEAN))
        res = self.run(tasks)
        return {
            who: {
                "change": statistics.median(durations(res, f"{who} load ") + durations(res, f"{who} unload ")),
                "no change": statistics.median(durations(res, f"{who} same")),
            }
            for who in ("ours", "peer")
        }


def run_kmod(inventory: str, host: str) -> dict:
    bench = KmodBench(inventory, host)
    data = {"behaviours": {who: bench.behaviours(who) for who in ("ours", "peer")}}
    data["timing"] = bench.timing()
    return data


# ---- report --------------------------------------------------------------------------------------
def section(title: str, ours: str, peer: str, data: dict) -> str:
    lines = [f"## {title}: {ours} vs {peer}", "", f"| behaviour | {ours} | {peer} |", "| --- | --- | --- |"]
    for row, value in data["behaviours"]["ours"].items():
        lines.append(f"| {row} | {value} | {data['behaviours']['peer'].get(row, 'n/a')} |")
    lines += ["", "| task (median s per task) | ours | peer | ours / peer |", "| --- | ---: | ---: | ---: |"]
    for kind, ours_s in data["timing"]["ours"].items():
        peer_s = data["timing"]["peer"][kind]
        lines.append(f"| {kind} | {ours_s:.3f} | {peer_s:.3f} | {ours_s / peer_s:.2f} |")
    return "\n".join(lines) + "\n"


def previous_section(path: Path, heading: str) -> str | None:
    """The section of an earlier report that starts with `heading` (kept when that half is not run again)."""
    if not path.exists():
        return None
    text, start = path.read_text(), None
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(heading):
            start = index
        elif start is not None and line.startswith("## "):
            return "\n".join(lines[start:index]).rstrip() + "\n"
    return "\n".join(lines[start:]).rstrip() + "\n" if start is not None else None


def report(sysctl: dict | None, kmod: dict | None, host: str | None, kept_sysctl: str | None = None) -> str:
    out = [
        "# Peer comparison: kmod and sysctl",
        "",
        f"Generated by `bench/peer_modules.py` on {time.strftime('%Y-%m-%d %H:%M')}. Peers: ansible.posix "
        f"{collection_version('ansible', 'posix')}, community.general {collection_version('community', 'general')}. "
        "Each behaviour is judged by the kernel and files afterwards; **no** marks a gap. Times: median seconds per "
        f"task over {REPEAT} tasks (ansible-runner durations), ratio below 1 means ours is faster.",
        "",
    ]
    if sysctl:
        out.append(
            section("sysctl (this host, inside a network namespace)", "labkit.cluster.sysctl", PEERS["sysctl"], sysctl)
        )
    elif kept_sysctl:
        note = "(sysctl part kept from the previous run; `--skip-sysctl` was given.)"
        out.append(kept_sysctl.replace(note, "").rstrip() + f"\n\n{note}\n")
    if kmod:
        out.append(section(f"kmod (sim-lab guest {host})", "labkit.cluster.kmod", PEERS["kmod"], kmod))
    else:
        out.append(
            "## kmod\n\nNot run: needs a kernel that loads modules. Run "
            "`bench/peer_modules.py --inventory inventories/sim --host sim-build` with the sim lab up.\n"
        )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "peer-modules.md"))
    parser.add_argument("--inventory", help="inventory with a guest that loads modules (e.g. inventories/sim)")
    parser.add_argument("--host", default="sim-build", help="guest for the kmod part")
    parser.add_argument("--skip-sysctl", action="store_true", help="kmod part only; keep the sysctl part of --out")
    parser.add_argument("--sysctl-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    if args.sysctl_child:
        sysctl_child(Path(args.sysctl_child))
        return 0
    sysctl = None if args.skip_sysctl else run_sysctl()
    kmod = run_kmod(args.inventory, args.host) if args.inventory else None
    kept = previous_section(Path(args.out), "## sysctl") if args.skip_sysctl else None
    text = report(sysctl, kmod, args.host if args.inventory else None, kept)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
