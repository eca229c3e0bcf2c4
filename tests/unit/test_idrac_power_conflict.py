"""idrac_power against a tiny HTTPS server on 127.0.0.1 that answers the reset with 409 and an
iDRAC-style error body (the sushy-tools emulator never answers 409, so this behaviour lives here)."""

import json
import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.modules import idrac_power

SYSTEM = "/redfish/v1/Systems/System.Embedded.1"
RESET = SYSTEM + "/Actions/ComputerSystem.Reset"
ALREADY_ON = {
    "error": {
        "code": "Base.1.12.GeneralError",
        "message": "A general error has occurred. See ExtendedInfo for more information",
        "@Message.ExtendedInfo": [
            {
                "Message": "Server is already powered ON.",
                "MessageId": "IDRAC.2.8.PSU501",
                "Resolution": "No response action is required.",
                "Severity": "Informational",
            }
        ],
    }
}
LC_BUSY = {
    "error": {
        "code": "Base.1.12.GeneralError",
        "message": "A general error has occurred. See ExtendedInfo for more information",
        "@Message.ExtendedInfo": [
            {
                "Message": "Unable to perform the operation because the Lifecycle Controller is busy.",
                "MessageId": "IDRAC.2.8.LC068",
                "Resolution": "Wait until the current operation is finished and retry.",
                "Severity": "Warning",
            }
        ],
    }
}


class FakeIdrac(ThreadingHTTPServer):
    """Power state Off; every reset POST gets `answer`; `on_post` may change the state."""

    daemon_threads = True

    def __init__(self, answer, on_post=None):
        super().__init__(("127.0.0.1", 0), Handler)
        self.power = "Off"
        self.answer = answer
        self.on_post = on_post
        self.posts = []

    @property
    def port(self):
        return self.server_address[1]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, status, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        bodies = {
            "/redfish/v1/": {"Systems": {"@odata.id": "/redfish/v1/Systems"}},
            "/redfish/v1/Systems": {"Members": [{"@odata.id": SYSTEM}]},
            SYSTEM: {
                "Id": "System.Embedded.1",
                "PowerState": self.server.power,
                "Boot": {"BootSourceOverrideTarget": "None", "BootSourceOverrideEnabled": "Disabled"},
                "Actions": {
                    "#ComputerSystem.Reset": {
                        "target": RESET,
                        "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "GracefulShutdown", "ForceRestart"],
                    }
                },
            },
        }
        if self.path in bodies:
            self._send(200, bodies[self.path])
        else:
            self._send(404, {"error": {"message": f"no {self.path}"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.server.posts.append((time.monotonic(), json.loads(self.rfile.read(length))))
        if self.server.on_post:
            self.server.on_post(self.server)
        status, body = self.server.answer
        self._send(status, body)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make the fake iDRAC's certificate")
    base = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-keyout", str(base / "key.pem"), "-out", str(base / "cert.pem")),
        ],
        check=True,
        capture_output=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(base / "cert.pem", base / "key.pem")
    return ctx


@pytest.fixture
def idrac(tls):
    servers = []

    def start(answer, on_post=None):
        server = FakeIdrac(answer, on_post)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def run_main(capsys, server, **params):
    args = {
        "host": f"127.0.0.1:{server.port}",
        "username": "root",
        "password": "calvin",
        "validate_certs": False,
        "state": "on",
        "timeout": 5,
        **params,
    }
    with patch_module_args(args), pytest.raises(SystemExit):
        idrac_power.main()
    return json.loads(capsys.readouterr().out)


def power_on_meanwhile(server):
    # Someone else powered the machine on between the module's read and its POST.
    server.power = "On"


def test_409_with_the_state_reached_is_ok_and_unchanged(capsys, idrac):
    server = idrac((409, ALREADY_ON), on_post=power_on_meanwhile)
    out = run_main(capsys, server, wait_timeout=5, poll_interval=0.2)
    assert not out.get("failed"), out
    assert out["changed"] is False and out["previous_state"] == "Off" and out["power_state"] == "On"
    assert out["actions"] == [{"reset_type": "On", "answer": "already", "message": "Server is already powered ON."}]
    assert len(server.posts) == 1


def test_409_never_cleared_fails_with_the_bmc_message_after_wait_timeout(capsys, idrac):
    server = idrac((409, LC_BUSY))
    started = time.monotonic()
    out = run_main(capsys, server, wait_timeout=2, poll_interval=0.5)
    took = time.monotonic() - started
    assert out["failed"] and out["error_kind"] == "conflict", out
    assert "Lifecycle Controller is busy" in out["msg"] and "IDRAC.2.8.LC068" in out["msg"]
    assert out["bmc_message"] == "Unable to perform the operation because the Lifecycle Controller is busy."
    assert out["message_ids"] == ["IDRAC.2.8.LC068"]
    assert out["last_state"] == "Off" and out["changed"] is False and out["actions"] == []
    assert took >= 2  # it waited out wait_timeout (no upper bound: a loaded machine answers slowly)
    # retried, at poll_interval, not in a tight loop: at most one POST per interval
    times = [t for t, _ in server.posts]
    assert 2 <= len(times) <= 5, times
    assert times == sorted(times) and times[-1] - times[0] >= 0.45 * (len(times) - 1) - 0.5, times
    assert all(body == {"ResetType": "On"} for _, body in server.posts)


def test_409_that_clears_is_retried_and_then_a_change(capsys, idrac):
    def busy_twice(server):
        if len(server.posts) >= 3:
            server.answer = (204, None)
            server.power = "On"

    server = idrac((409, LC_BUSY), on_post=busy_twice)
    out = run_main(capsys, server, wait_timeout=10, poll_interval=0.2)
    assert not out.get("failed"), out
    assert out["changed"] is True and out["power_state"] == "On" and len(server.posts) == 3
    assert out["actions"] == [{"reset_type": "On", "answer": "done"}]


def test_timeout_after_an_accepted_reset_reports_changed(capsys, idrac):
    server = idrac((204, None))  # accepted, but the power never comes
    out = run_main(capsys, server, wait_timeout=1, poll_interval=0.2)
    assert out["failed"] and out["error_kind"] == "timeout" and out["last_state"] == "Off"
    assert out["changed"] is True and out["actions"] == [{"reset_type": "On", "answer": "done"}]


def test_query_reads_without_acting(capsys, idrac):
    server = idrac((204, None))
    out = run_main(capsys, server, state="query")
    assert not out.get("failed") and out["changed"] is False and out["power_state"] == "Off"
    assert out["boot_override"]["target"] == "None" and out["actions"] == [] and server.posts == []
