"""bmc_console refuses hostile or out-of-range input with a clear message before it connects or writes.

Connections are observed where they start (socket.create_connection for tcp, the SSH session class
for ssh); files by listing the test's directory before and after.
"""

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.module_utils.redfish import BmcError
from ansible_collections.labkit.cluster.plugins.modules import bmc_console


@pytest.fixture
def connections(monkeypatch):
    calls = []

    def fake_connect(address, timeout=None):
        calls.append(("TCP", address))
        raise ConnectionRefusedError(111, "Connection refused")

    def fake_ssh(self, host, port, username, password, *, timeout=30):
        calls.append(("SSH", (host, port)))
        raise BmcError("unreachable", "no SSH in unit tests")

    monkeypatch.setattr(bmc_console.socket, "create_connection", fake_connect)
    monkeypatch.setattr(bmc_console.IdracSsh, "__init__", fake_ssh)
    return calls


def tree(root):
    return sorted(os.path.join(d, f) for d, dirs, files in os.walk(root) for f in [*dirs, *files])


def run_main(capsys, tmp_path, **overrides):
    args = {
        "source": "tcp",
        "host": "127.0.0.1",
        "port": 4555,
        "log_path": str(tmp_path / "logs" / "console.log"),
        "password": "calvin",
        **overrides,
    }
    args = {k: v for k, v in args.items() if v is not None}
    with patch_module_args(args), pytest.raises(SystemExit):
        bmc_console.main()
    return json.loads(capsys.readouterr().out)


HOSTILE = [
    ({"port": 70000}, "port must be between 1 and 65535"),
    ({"port": 0}, "port must be between 1 and 65535"),
    ({"port": -1}, "port must be between 1 and 65535"),
    ({"source": "ssh", "username": "root", "port": 65536}, "port must be between 1 and 65535"),
    ({"host": "127.0.0.1:99999", "port": None}, "the port in host must be between 1 and 65535"),
    ({"host": "console.lab", "port": None}, "source=tcp needs a port"),
    ({"host": "http://127.0.0.1"}, "drop 'http://'"),
    ({"host": "telnet://console.lab"}, "not a URL"),
    ({"host": "console lab"}, "not a valid host name"),
    ({"host": "console\r\nlab"}, "control characters"),
    ({"host": "[::1"}, "malformed IPv6"),
    ({"log_path": "/proc/self/console.log"}, "under /proc, a pseudo file system"),
    ({"log_path": "/proc/sys/kernel/hostname"}, "under /proc"),
    ({"log_path": "/sys/kernel/console.log"}, "under /sys"),
    ({"log_path": "/dev/console-log"}, "under /dev"),
    ({"log_path": "TMP"}, "is a directory"),
    ({"log_path": "TMP/logs/"}, "is a directory"),
    ({"log_path": "FILE/console.log"}, "is not a directory"),
    ({"log_path": "TMP/con\nsole.log"}, "control characters"),
    ({"idle_timeout": 0}, "idle_timeout must be greater than 0 and at most 86400"),
    ({"idle_timeout": -1}, "idle_timeout must be greater than 0"),
    ({"timeout": -600}, "timeout must be greater than 0 and at most 86400"),
    ({"timeout": 1e12}, "timeout must be greater than 0 and at most 86400"),
    ({"timeout": "inf"}, "timeout must be greater than 0 and at most 86400"),
    ({"connect_timeout": 0}, "connect_timeout must be greater than 0 and at most 300"),
    (
        {"source": "ssh", "username": "root", "console_command": "console com2\nracadm serveraction powerdown"},
        "console_command must not contain control characters",
    ),
    ({"source": "ssh", "username": "ro\x00ot"}, "username must not contain control characters"),
    ({"match": "NRK (booted"}, "match is not a valid regular expression"),
]


@pytest.mark.parametrize(("overrides", "text"), HOSTILE, ids=[repr(o) for o, _ in HOSTILE])
def test_hostile_input_is_refused_before_connecting_or_writing(capsys, tmp_path, connections, overrides, text):
    (tmp_path / "logs").mkdir()
    (tmp_path / "file").write_text("not a directory")
    if "log_path" in overrides:
        overrides = {
            **overrides,
            "log_path": overrides["log_path"].replace("TMP", str(tmp_path)).replace("FILE", str(tmp_path / "file")),
        }
    before = tree(tmp_path)
    out = run_main(capsys, tmp_path, **overrides)
    assert out["failed"] and out["error_kind"] == "invalid", out
    assert text in out["msg"], out["msg"]
    assert connections == [], "a connection was opened for refused input"
    assert tree(tmp_path) == before, "a file was written for refused input"
    assert "calvin" not in json.dumps(out)


def test_valid_input_connects_and_writes_nothing_when_unreachable(capsys, tmp_path, connections):
    out = run_main(capsys, tmp_path, host="[::1]:4555", port=None)
    assert out["failed"] and out["error_kind"] == "unreachable"
    assert connections == [("TCP", ("::1", 4555))]
    assert not (tmp_path / "logs").exists()


def test_ssh_defaults_to_port_22(capsys, tmp_path, connections):
    out = run_main(capsys, tmp_path, source="ssh", username="root", port=None, host="idrac.lab")
    assert out["error_kind"] == "unreachable" and connections == [("SSH", ("idrac.lab", 22))]


def test_unwritable_log_after_connecting_is_a_clear_failure(capsys, tmp_path, monkeypatch):
    """A log that becomes unwritable between the checks and the open fails with error_kind=io."""

    class Sock:
        def close(self):
            pass

    monkeypatch.setattr(bmc_console.socket, "create_connection", lambda address, timeout=None: Sock())

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(bmc_console, "open", refuse, raising=False)
    out = run_main(capsys, tmp_path)
    assert out["failed"] and out["error_kind"] == "io" and "Permission denied" in out["msg"]
