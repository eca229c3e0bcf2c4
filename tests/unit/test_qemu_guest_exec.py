"""labkit.cluster.qemu_guest_exec's side of the QEMU guest-agent protocol, against a stand-in agent on a
unix socket that speaks qemu-ga's JSON and really runs the commands (on the controller, in a subprocess).
The real qemu-ga in a real guest is driven by the Molecule scenario qemu_host, whose role verifies its
guests through this module; here the protocol's awkward cases are reproduced on purpose: replies left in
the channel by an earlier client, an agent that only starts answering after a while (a guest still
booting), a command that fails or does not exit in time. Hostile arguments are refused before the socket
is opened."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import threading
import time

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.modules import qemu_guest_exec


class StandInAgent(threading.Thread):
    """One client at a time, like a virtio-serial port. stale: bytes the channel holds before the first
    request (an earlier client's replies); silent_for: seconds during which requests go unanswered (the
    guest has not started qemu-ga yet, and QEMU drops what it cannot deliver)."""

    def __init__(self, path, stale=b"", silent_for=0.0):
        super().__init__(daemon=True)
        self.path = path
        self.stale = stale
        self.silent_until = time.monotonic() + silent_for
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.processes = {}
        self.requests = []

    def run(self):
        conn, _ = self.server.accept()
        with conn:
            conn.sendall(self.stale)
            for line in conn.makefile("rb"):
                request = json.loads(line.lstrip(b"\xff"))
                self.requests.append(request["execute"])
                if time.monotonic() < self.silent_until:
                    continue
                reply = self.answer(request)
                conn.sendall(reply + b"\n")

    def answer(self, request):
        args = request.get("arguments", {})
        if request["execute"] == "guest-sync-delimited":
            return b"\xff" + json.dumps({"return": args["id"]}).encode()
        if request["execute"] == "guest-exec":
            process = subprocess.Popen(
                [args["path"], *args.get("arg", [])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            stdin = base64.b64decode(args["input-data"]) if "input-data" in args else b""
            holder = {}
            self.processes[process.pid] = (process, holder)
            threading.Thread(target=lambda: holder.update(out=process.communicate(stdin)), daemon=True).start()
            return json.dumps({"return": {"pid": process.pid}}).encode()
        if request["execute"] == "guest-exec-status":
            process, holder = self.processes[args["pid"]]
            if "out" not in holder:
                return json.dumps({"return": {"exited": False}}).encode()
            out, err = holder["out"]
            status = {
                "exited": True,
                "out-data": base64.b64encode(out).decode(),
                "err-data": base64.b64encode(err).decode(),
            }
            if process.returncode < 0:
                status["signal"] = -process.returncode
            else:
                status["exitcode"] = process.returncode
            return json.dumps({"return": status}).encode()
        return json.dumps({"error": {"class": "CommandNotFound", "desc": f"{request['execute']} not found"}}).encode()


@pytest.fixture
def module_env(monkeypatch):
    monkeypatch.setattr(ansible_warnings, "_global_warnings", {})
    monkeypatch.setattr(module_utils_internal, "is_controller", False)


def run(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit):
        qemu_guest_exec.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def agent_socket(tmp_path):
    # AF_UNIX paths are short: pytest's tmp_path may be too long for one
    path = f"/tmp/labkit-qga-{os.getpid()}-{time.monotonic_ns()}.sock"
    yield path
    if os.path.exists(path):
        os.unlink(path)


def test_a_command_runs_with_its_stdin_and_its_output_comes_back(module_env, capsys, agent_socket):
    StandInAgent(agent_socket).start()
    result = run(capsys, socket=agent_socket, argv=["/bin/sh", "-c", "tr a-z A-Z; echo oops >&2"], stdin="ivshmem\n")
    assert not result.get("failed"), result
    assert result["rc"] == 0 and result["changed"] is True
    assert result["stdout_lines"] == ["IVSHMEM"]
    assert result["stderr"] == "oops\n"


def test_replies_left_by_an_earlier_client_are_skipped(module_env, capsys, agent_socket):
    stale = b'{"return": {"pid": 99999}}\n\xff{"return": 12345}\n{"return": {"exited": true, "exitcode": 7}}\n'
    StandInAgent(agent_socket, stale=stale).start()
    result = run(capsys, socket=agent_socket, argv=["echo", "fresh"])
    assert result["stdout"] == "fresh\n" and result["rc"] == 0, result


def test_an_agent_that_starts_late_is_waited_for(module_env, capsys, agent_socket):
    agent = StandInAgent(agent_socket, silent_for=3)
    agent.start()
    result = run(capsys, socket=agent_socket, argv=["true"], timeout=30)
    assert result["rc"] == 0, result
    assert agent.requests.count("guest-sync-delimited") >= 2  # the first syncs went unanswered


def test_a_failing_command_fails_the_task_with_its_output(module_env, capsys, agent_socket):
    StandInAgent(agent_socket).start()
    result = run(capsys, socket=agent_socket, argv=["/bin/sh", "-c", "echo no memdev >&2; exit 3"])
    assert result["failed"] and result["rc"] == 3
    assert "exited with 3" in result["msg"] and result["stderr"] == "no memdev\n"


def test_expected_codes_other_than_0_pass(module_env, capsys, agent_socket):
    StandInAgent(agent_socket).start()
    result = run(capsys, socket=agent_socket, argv=["/bin/sh", "-c", "exit 1"], expect_rc=[0, 1])
    assert not result.get("failed") and result["rc"] == 1


def test_a_command_that_does_not_exit_in_time_is_reported(module_env, capsys, agent_socket):
    StandInAgent(agent_socket).start()
    result = run(capsys, socket=agent_socket, argv=["sleep", "30"], timeout=2)
    assert result["failed"] and "did not exit in time" in result["msg"]


def test_a_guest_without_an_agent_fails_in_time_naming_it(module_env, capsys, agent_socket):
    StandInAgent(agent_socket, silent_for=60).start()
    started = time.monotonic()
    result = run(capsys, socket=agent_socket, argv=["true"], timeout=3)
    assert result["failed"] and "guest agent did not answer" in result["msg"]
    assert time.monotonic() - started < 15


def test_no_socket_fails_naming_it(module_env, capsys, agent_socket):
    result = run(capsys, socket=agent_socket, argv=["true"], timeout=1)
    assert result["failed"] and f"cannot connect to {agent_socket}" in result["msg"]


def test_check_mode_runs_nothing(module_env, capsys, agent_socket):
    result = run(capsys, socket=agent_socket, argv=["touch", agent_socket + ".ran"], _ansible_check_mode=True)
    assert result["changed"] is False and result["skipped"]
    assert not os.path.exists(agent_socket + ".ran")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"name": "../../etc/x"}, "name: '../../etc/x' is not a name"),
        ({"name": "g1\n"}, "is not a name"),
        ({"socket": "/run/../etc/shadow"}, "must be an absolute path without '..'"),
        ({"socket": "agent.sock"}, "must be an absolute path"),
        ({"name": "g1", "argv": []}, "argv: give the command"),
        ({"name": "g1", "argv": ["ls\nreboot"]}, "contains a NUL or (in the command) a newline"),
        ({"name": "g1", "argv": ["ls", "a\0b"]}, "argv[1]"),
        ({"name": "g1", "timeout": 0}, "timeout: 0 must be from 1 to 3600"),
        ({"name": "g1", "timeout": 100000}, "must be from 1 to 3600"),
        ({"name": "g1", "stdin": "a\0"}, "stdin: contains a NUL"),
    ],
)
def test_hostile_arguments_are_refused_before_the_socket_is_opened(module_env, capsys, args, fragment, monkeypatch):
    opened = []
    monkeypatch.setattr(qemu_guest_exec.guest_agent.GuestAgent, "connect", opened.append)
    args.setdefault("argv", ["true"])
    result = run(capsys, **args)
    assert result["failed"] and fragment in result["msg"], result
    assert not opened
