"""A minimal QMP client (QEMU's JSON control protocol over a unix socket)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from simlab.errors import SimlabError


class Qmp:
    def __init__(self, path: Path, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise SimlabError(f"QEMU's control socket {path} did not open within {timeout} s") from None
                time.sleep(0.1)
        self.file = self.sock.makefile("rwb")
        self._read()  # greeting
        self.command("qmp_capabilities")

    def _read(self) -> dict:
        while True:
            try:
                line = self.file.readline()
            except OSError as exc:
                raise SimlabError(f"QEMU's control socket failed: {exc}") from None
            if not line:
                raise SimlabError("QEMU closed its control socket")
            message = json.loads(line)
            if "event" not in message:  # events are not answers; skip them
                return message

    def command(self, name: str, **arguments) -> dict | list:
        request = {"execute": name}
        if arguments:
            request["arguments"] = arguments
        try:
            self.file.write(json.dumps(request).encode() + b"\n")
            self.file.flush()
        except OSError as exc:
            raise SimlabError(f"QEMU's control socket failed: {exc}") from None
        answer = self._read()
        if "error" in answer:
            raise SimlabError(f"QEMU refused {name}: {answer['error'].get('desc')}")
        return answer.get("return", {})

    def wait_for(self, predicate, what: str, timeout: float, interval: float = 0.2):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise SimlabError(f"QEMU: {what} did not happen within {timeout} s")
            time.sleep(interval)

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
