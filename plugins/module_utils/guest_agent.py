# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A client of the QEMU guest agent (qemu-ga) over the unix socket of a guest's virtio-serial port.

The protocol is QEMU's: JSON commands, one JSON reply per line. A freshly opened channel may hold replies
to requests of an earlier client (or requests queued while the guest was still booting), so every session
starts with guest-sync-delimited: the agent answers with 0xFF and the request's id, and everything before
the reply to our latest id is discarded.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import random
import socket
import time

SYNC_MARK = b"\xff"
# a reply asked for at the deadline still gets this long to come back
REPLY_GRACE = 5.0


class AgentError(Exception):
    """The agent did not answer, or answered with an error."""


class GuestAgent:
    def __init__(self, path, deadline, clock=time.monotonic):
        self.path = path
        self.deadline = deadline
        self.clock = clock
        self.sock = None
        self.buffer = b""

    def left(self):
        return self.deadline - self.clock()

    def connect(self):
        """The socket exists once QEMU runs; wait for it until the deadline."""
        error = None
        while self.left() > 0:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
            except OSError as exc:
                sock.close()
                error = exc
                time.sleep(min(0.5, max(self.left(), 0)))
                continue
            self.sock = sock
            return
        raise AgentError(f"cannot connect to {self.path}: {getattr(error, 'strerror', None) or error}")

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, command, arguments=None, sync_mark=False):
        message = {"execute": command}
        if arguments is not None:
            message["arguments"] = arguments
        self.sock.sendall((SYNC_MARK if sync_mark else b"") + json.dumps(message).encode() + b"\n")

    def read_reply(self, timeout):
        """The next JSON reply, or None when none came within timeout seconds."""
        end = self.clock() + timeout
        while b"\n" not in self.buffer:
            wait = end - self.clock()
            if wait <= 0:
                return None
            self.sock.settimeout(wait)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise AgentError(f"{self.path} closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        # the 0xFF of a delimited sync reply, and the bytes of a reply cut by an earlier client, go first
        line = line[line.rfind(SYNC_MARK) + 1 :].strip()
        if not line:
            return self.read_reply(timeout)
        try:
            return json.loads(line.decode("utf-8", "replace"))
        except ValueError:
            return self.read_reply(timeout)

    def sync(self, interval=2.0):
        """Until the agent answers our latest id: it runs once the guest has booted."""
        sent = []
        while self.left() > 0:
            sent.append(random.randint(1, 2**31 - 1))
            self.send("guest-sync-delimited", {"id": sent[-1]}, sync_mark=True)
            reply = self.read_reply(min(interval, max(self.left(), 0)))
            # an earlier sync answered: the later ones are queued behind it, in order
            while reply is not None and reply.get("return") != sent[-1]:
                reply = self.read_reply(interval * 4 if reply.get("return") in sent else interval)
            if reply is not None:
                return
        raise AgentError("the guest agent did not answer (is the guest up and qemu-ga running in it?)")

    def call(self, command, arguments=None):
        self.send(command, arguments)
        while True:
            reply = self.read_reply(max(self.left(), REPLY_GRACE))
            if reply is None:
                raise AgentError(f"no reply to {command} in time")
            if "error" in reply:
                error = reply["error"]
                raise AgentError(f"{command}: {error.get('class', 'error')}: {error.get('desc', error)}")
            if "return" in reply:
                return reply["return"]

    def execute(self, argv, stdin=None, poll=0.2):
        """Run argv in the guest; returns (rc, signal, stdout, stderr, truncated)."""
        arguments = {"path": argv[0], "arg": list(argv[1:]), "capture-output": True}
        if stdin is not None:
            arguments["input-data"] = base64.b64encode(stdin.encode()).decode()
        pid = self.call("guest-exec", arguments)["pid"]
        while True:
            status = self.call("guest-exec-status", {"pid": pid})
            if status.get("exited"):
                break
            if self.left() <= 0:
                raise AgentError(f"{argv[0]} (pid {pid} in the guest) did not exit in time; it is still running there")
            time.sleep(min(poll, max(self.left(), 0)))

        def text(key):
            return base64.b64decode(status.get(key, "")).decode("utf-8", "replace")

        truncated = bool(status.get("out-truncated") or status.get("err-truncated"))
        return status.get("exitcode"), status.get("signal"), text("out-data"), text("err-data"), truncated
