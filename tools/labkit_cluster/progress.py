"""Live progress of a run from ansible-runner's events: one line per task result that matters.

Changed, failed and unreachable results are printed as they come, each with the seconds since the
run started and the host, and a line when each play starts; ok and skipped results are not printed,
so a 200-host run stays readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_SHOWN = {"runner_on_failed": "failed", "runner_on_unreachable": "unreachable"}


class Progress:
    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.started = time.monotonic()

    def _line(self, text: str) -> None:
        self.stream.write(f"[{time.monotonic() - self.started:7.1f}s] {text}\n")
        self.stream.flush()

    def __call__(self, event: dict) -> None:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind == "playbook_on_play_start":
            self._line(f"play: {data.get('play', '')}")
        elif kind == "runner_on_ok" and data.get("res", {}).get("changed"):
            self._line(f"{data.get('host', '?'):14} changed      {data.get('task', '')}")
        elif kind in _SHOWN:
            message = data.get("res", {}).get("msg", "")
            self._line(f"{data.get('host', '?'):14} {_SHOWN[kind]:12} {data.get('task', '')}: {message}".rstrip(": "))
        elif kind == "playbook_on_stats":
            self._line("done")
