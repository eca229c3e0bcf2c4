"""Live progress of a run on a terminal: a host-by-subsystem table redrawn in place from ansible-runner's events.

A column per role as the run reaches it (lab_base, kernel_build, rpi_kernel, …; tasks outside a role go to
`other`), a row per host. A cell shows the worst result so far (FAILED, unreach, changed, ok, skip) and `…`
while a task of that role runs on the host. The last failures are listed under the table with their
messages. A lab larger than the terminal shows the hosts that failed or are running first and counts the
rest. Not for pipes and log files: those get labkit_cluster.progress's plain lines.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

OTHER = "other"
# the worse result wins a cell; a running task adds "…" to what the cell shows
_RANK = {"skip": 0, "ok": 1, "changed": 2, "unreach": 3, "FAILED": 4}
_RESULT = {
    "runner_on_ok": "ok",
    "runner_on_skipped": "skip",
    "runner_on_failed": "FAILED",
    "runner_on_unreachable": "unreach",
}
_LAST_FAILURES = 5


class Table:
    def __init__(self, stream: TextIO = sys.stderr, interval: float = 0.5, height: int | None = None):
        self.stream = stream
        self.interval = interval  # seconds between redraws: hundreds of hosts send thousands of events
        self.height = height  # lines the table may use; None: the terminal's height
        self.columns: list[str] = []
        self.cells: dict[str, dict[str, str]] = {}
        self.running: dict[str, set[str]] = {}
        self.failures: list[str] = []
        self.started = time.monotonic()
        self.drawn = 0
        self.last_draw = 0.0

    def __call__(self, event: dict) -> None:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        host = data.get("host")
        if host and (kind == "runner_on_start" or kind in _RESULT):
            self._update(kind, host, data.get("role") or OTHER, data)
        if not self.cells:
            return  # nothing to show before the first host
        if kind == "playbook_on_stats":
            self.draw(final=True)
        elif time.monotonic() - self.last_draw >= self.interval:
            self.draw()

    def _update(self, kind: str, host: str, column: str, data: dict) -> None:
        if column not in self.columns:
            self.columns.append(column)
        cells = self.cells.setdefault(host, {})
        running = self.running.setdefault(host, set())
        if kind == "runner_on_start":
            running.add(column)
            return
        running.discard(column)
        result = _RESULT[kind]
        res = data.get("res", {})
        if result == "ok" and res.get("changed"):
            result = "changed"
        if result == "FAILED" and data.get("ignore_errors"):
            result = "ok"
        if result in ("FAILED", "unreach"):
            message = str(res.get("msg", "")).splitlines()[0] if res.get("msg") else ""
            self.failures.append(f"{host}: {result} {data.get('task', '')}: {message}".rstrip(": "))
        if _RANK[result] >= _RANK[cells.get(column, "skip")]:
            cells[column] = result

    def _interest(self, host: str) -> tuple:
        cells = self.cells[host].values()
        worst = max((_RANK[c] for c in cells), default=0)
        return (-(worst >= _RANK["unreach"]), -bool(self.running[host]), host)

    def lines(self) -> list[str]:
        """The table as text: a header, a row per host (as many as fit), the last failures."""
        height = self.height or shutil.get_terminal_size((100, 40)).lines - 1
        failures = self.failures[-_LAST_FAILURES:]
        hosts = sorted(self.cells)
        room = max(height - 2 - len(failures) - 1, 1)
        shown = sorted(hosts, key=self._interest)[:room] if len(hosts) > room else hosts
        width = max([len(h) for h in hosts] + [4])
        widths = [max(len(c), 8) for c in self.columns]
        out = [
            f"{'host':{width}}  " + "  ".join(f"{c:{w}}" for c, w in zip(self.columns, widths, strict=True)),
        ]
        for host in shown:
            row = []
            for column, w in zip(self.columns, widths, strict=True):
                text = self.cells[host].get(column, "")
                if column in self.running[host]:
                    text = (text + "…") if text else "…"
                row.append(f"{text:{w}}")
            out.append(f"{host:{width}}  " + "  ".join(row).rstrip())
        if len(shown) < len(hosts):
            out.append(f"… and {len(hosts) - len(shown)} more hosts")
        out.append(f"[{time.monotonic() - self.started:7.1f}s] {len(hosts)} hosts")
        out += failures
        return out

    def draw(self, final: bool = False) -> None:
        text = self.lines()
        # back to the table's first line, clear to the end of the screen, draw again
        prefix = f"\x1b[{self.drawn}F\x1b[J" if self.drawn else ""
        self.stream.write(prefix + "\n".join(text) + "\n")
        self.stream.flush()
        self.drawn = 0 if final else len(text)
        self.last_draw = time.monotonic()
