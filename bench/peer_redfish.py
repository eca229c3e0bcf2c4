#!/usr/bin/env python3
"""The same power sequence with labkit.cluster.idrac_power and community.general.redfish_command.

One sushy-tools emulator (TLS, basic auth, power changes land 1-11 s late) with one system per
contender, each starting Off. The sequence is what a playbook asks: on, on again, off, off again,
on, power cycle, graceful shutdown, shutdown again. For each step it records `changed` against
the correct answer and the power state the playbook sees right after the task (ours: the module's
`power_state`; the peer reports none, so it is read with community.general.redfish_info at once),
against the true target. Three contenders:

- ours: idrac_power (waits until the BMC really reports the target).
- peer: redfish_command back to back, as usually written.
- peer+poll: redfish_command followed by a redfish_info `until` loop on PowerState (what a user must
  add to get a correct state), so its time is comparable with ours.

Usage: bench/peer_redfish.py [--out bench/results/peer-redfish.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

import conftest  # noqa: E402,F401  (collection paths and ANSIBLE_* environment, as in the tests)
from playbook_runner import run_playbook  # noqa: E402
from redfish_emulator import PASSWORD, Pki, RedfishEmulator, system  # noqa: E402

# (step name, our state, peer command, expected changed, target power state)
SEQUENCE = [
    ("on", "on", "PowerOn", True, "On"),
    ("on again", "on", "PowerOn", False, "On"),
    ("off", "off", "PowerForceOff", True, "Off"),
    ("off again", "off", "PowerForceOff", False, "Off"),
    ("on (2)", "on", "PowerOn", True, "On"),
    ("power cycle", "power_cycled", "PowerCycle", True, "On"),
    ("shutdown", "shutdown", "PowerGracefulShutdown", True, "Off"),
    ("shutdown again", "shutdown", "PowerGracefulShutdown", False, "Off"),
]
SYSTEMS = {"ours": "Bench.Ours", "peer": "Bench.Peer", "peer+poll": "Bench.PeerPoll"}

CONN = """
      baseuri: "{{ bmc }}"
      username: root
      password: "{{ pw }}"
      ca_path: "{{ ca }}"
"""


def ours_tasks(system_id: str) -> str:
    out = []
    for name, state, _, _, _ in SEQUENCE:
        out.append(f"""
    - name: "{name}"
      labkit.cluster.idrac_power:
        host: "{{{{ bmc }}}}"
        username: root
        password: "{{{{ pw }}}}"
        ca_path: "{{{{ ca }}}}"
        system_id: {system_id}
        state: {state}
        poll_interval: 0.5
        wait_timeout: 60
""")
    return "".join(out)


def peer_tasks(system_id: str, poll: bool) -> str:
    out = []
    for name, _, command, _, target in SEQUENCE:
        out.append(f"""
    - name: "{name}"
      community.general.redfish_command:
        category: Systems
        command: {command}
        resource_id: {system_id}
{CONN.replace("      ", "        ", -1)}
      ignore_errors: true
    - name: "{name} / read"
      community.general.redfish_info:
        category: Systems
        command: GetSystemInventory
{CONN.replace("      ", "        ", -1)}
      register: info
""")
        if poll:
            out.append(f"""
    - name: "{name} / poll"
      community.general.redfish_info:
        category: Systems
        command: GetSystemInventory
{CONN.replace("      ", "        ", -1)}
      register: polled
      until: >-
        (polled.redfish_facts.system.entries
         | selectattr('0.system_uri', 'search', '{system_id}') | first)[1].PowerState == '{target}'
      retries: 60
      delay: 1
""")
    return "".join(out)


def play(tasks: str) -> str:
    return f"""
- hosts: localhost
  gather_facts: false
  tasks:
{tasks}
"""


def _duration(result, name: str) -> float:
    """Seconds between the start of task `name` and its result (from ansible-runner's events)."""
    start = end = None
    for event in result.events:
        data = event.get("event_data", {})
        if data.get("task") != name:
            continue
        created = datetime.datetime.fromisoformat(event["created"])
        if event["event"] == "playbook_on_task_start":
            start = created
        elif event["event"] in ("runner_on_ok", "runner_on_failed"):
            end = created
    return (end - start).total_seconds() if start and end else float("nan")


def _task_failed(result, name: str) -> bool:
    return any(
        e.get("event") == "runner_on_failed" and e.get("event_data", {}).get("task") == name for e in result.events
    )


def _seen_state(res: dict, system_id: str) -> str | None:
    for uri_entry, data in res.get("redfish_facts", {}).get("system", {}).get("entries", []):
        if system_id in uri_entry.get("system_uri", ""):
            return data.get("PowerState")
    return None


def run_contender(name: str, emu: RedfishEmulator, pki: Pki, inventory: Path) -> dict:
    system_id = SYSTEMS[name]
    tasks = ours_tasks(system_id) if name == "ours" else peer_tasks(system_id, poll=name == "peer+poll")
    extra = {"bmc": emu.url.removeprefix("https://"), "pw": PASSWORD, "ca": str(pki.ca)}
    started = time.monotonic()
    result = run_playbook(play(tasks), inventory=inventory, extra_vars=extra, timeout=900)
    total = time.monotonic() - started
    steps = []
    for step, _, _, want_changed, target in SEQUENCE:
        res = result.result("localhost", step)
        if name == "ours":
            seen = res.get("power_state")
            seconds = _duration(result, step)
        else:
            seen = _seen_state(result.result("localhost", f"{step} / read"), system_id)
            seconds = _duration(result, step) + _duration(result, f"{step} / read")
            if name == "peer+poll":
                seconds += _duration(result, f"{step} / poll")
                seen = _seen_state(result.result("localhost", f"{step} / poll"), system_id)
        steps.append(
            {
                "step": step,
                "changed": bool(res.get("changed")),
                "changed_ok": bool(res.get("changed")) == want_changed,
                "seen": seen,
                "target": target,
                "state_ok": seen == target,
                "failed": _task_failed(result, step),
                "msg": res.get("msg", "") if _task_failed(result, step) else "",
                "seconds": seconds,
            }
        )
    time.sleep(12)  # let anything still pending land, then read the truth
    return {
        "name": name,
        "rc": result.rc,
        "steps": steps,
        "total": total,
        "sequence_seconds": sum(s["seconds"] for s in steps),
        "true_final": emu.power_state(system_id),
    }


def report(runs: dict, emu_version: str) -> str:
    lines = [
        "# Peer benchmark: idrac_power vs community.general.redfish_command",
        "",
        f"Generated by `bench/peer_redfish.py` on {datetime.date.today().isoformat()}, "
        f"{platform.node()} (Python {platform.python_version()}, sushy-tools {emu_version}, "
        f"community.general {_peer_version()}).",
        "",
        "One sushy-tools emulator over TLS with basic auth, its fake driver applying every power change "
        "1-11 s late (random). Each contender drives its own system through the same sequence. "
        "*seen* is the power state the playbook has right after the task: our module's `power_state`, "
        "for the peer a `redfish_info` read at once (it reports no state), for peer+poll the state its "
        "`until` loop ended on (it gives up after 60 tries, so a failed step shows the state it saw).",
        "",
    ]
    for name, run in runs.items():
        lines += [f"## {name}", "", "| step | changed | correct | state seen | target | correct | failed | s |"]
        lines += ["|---|---|---|---|---|---|---|---|"]
        for s in run["steps"]:
            lines.append(
                f"| {s['step']} | {s['changed']} | {'yes' if s['changed_ok'] else '**no**'} | {s['seen']} | "
                f"{s['target']} | {'yes' if s['state_ok'] else '**no**'} | {'**yes**' if s['failed'] else 'no'} | "
                f"{s['seconds']:.1f} |"
            )
        for s in run["steps"]:
            if s["failed"]:
                lines.append(f"\n{s['step']} failed: {s['msg'][:300]}")
        lines += [
            "",
            f"playbook rc {run['rc']}; true final state {run['true_final']} (expected Off); "
            f"sequence {run['sequence_seconds']:.1f} s, playbook wall time {run['total']:.1f} s",
            "",
        ]
    ours = runs["ours"]
    lines += [
        "## Summary",
        "",
        "| contender | changed correct | state seen correct | failed steps | sequence s | time ratio vs ours "
        "| time ratio on the steps it got right |",
    ]
    lines += ["|---|---|---|---|---|---|---|"]
    for name, run in runs.items():
        changed_ok = sum(s["changed_ok"] for s in run["steps"])
        state_ok = sum(s["state_ok"] for s in run["steps"])
        failed = sum(s["failed"] for s in run["steps"])
        ratio = run["sequence_seconds"] / ours["sequence_seconds"]
        right = [i for i, s in enumerate(run["steps"]) if s["changed_ok"] and s["state_ok"] and not s["failed"]]
        theirs = sum(run["steps"][i]["seconds"] for i in right)
        mine = sum(ours["steps"][i]["seconds"] for i in right)
        fair = f"{theirs / mine:.2f} ({len(right)} steps)" if right and mine else "n/a"
        lines.append(
            f"| {name} | {changed_ok}/{len(SEQUENCE)} | {state_ok}/{len(SEQUENCE)} | {failed} | "
            f"{run['sequence_seconds']:.1f} | {ratio:.2f} | {fair} |"
        )
    lines += [
        "",
        "Time ratio = contender's sequence time / ours (below 1: faster than ours); the last column compares "
        "only the steps the contender got right (correct `changed`, correct state, no failure) with ours "
        "on the same steps. The plain peer is fast "
        "because it does not wait: the state it leaves the playbook with is stale, and its next "
        "declarative step decides on that stale state. peer+poll is the fair comparison for time. "
        "The emulator's random delay makes single runs noisy; compare ratios across runs with care.",
        "",
    ]
    return "\n".join(lines)


def _peer_version() -> str:
    for base in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(":"):
        manifest = Path(base, "ansible_collections", "community", "general", "MANIFEST.json")
        if manifest.exists():
            return json.loads(manifest.read_text())["collection_info"]["version"]
    return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "peer-redfish.md"))
    args = parser.parse_args()
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
        pki = Pki(Path(tmp, "pki"))
        emu = RedfishEmulator(Path(tmp, "emu"), pki, systems=[system(s) for s in SYSTEMS.values()])
        inventory = Path(tmp, "inventory.ini")
        inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
        with emu:
            runs = {name: run_contender(name, emu, pki, inventory) for name in SYSTEMS}
    text = report(runs, version("sushy-tools"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
