"""Start sushy-tools' Redfish emulator on 127.0.0.1 over TLS with basic auth, for tests and benchmarks.

`Pki(dir)` makes a CA and a server certificate for IP:127.0.0.1 with the openssl CLI (plus a second,
unrelated CA for wrong-CA tests). `RedfishEmulator(dir, pki, systems=...)` writes the htpasswd
(bcrypt) and the config, starts `sushy-emulator`, waits until `/redfish/v1/` answers and stops it
again, checking that the process is gone. The fake driver applies power changes 1-11 s late.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt

USERNAME = "root"
PASSWORD = "calvin-lab"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Pki:
    """A CA, a server certificate signed by it for 127.0.0.1, and an unrelated CA."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = self.dir / "ca.pem"
        self.cert = self.dir / "server.pem"
        self.key = self.dir / "server.key"
        self.other_ca = self.dir / "other-ca.pem"
        if not self.cert.exists():
            self._make()

    def _make(self) -> None:
        d = self.dir
        for name in ("ca", "other-ca"):
            _openssl(
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN=labkit test {name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
                cwd=d,
            )  # fmt: skip
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr", cwd=d,
        )  # fmt: skip
        (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
        _openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d,
        )  # fmt: skip

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def system(uuid: str, power_state: str = "Off", mac: str = "52:54:00:12:34:56") -> dict:
    return {"uuid": uuid, "name": uuid, "power_state": power_state, "nics": [{"mac": mac, "ip": "10.0.0.2"}]}


# sushy-emulator (its console script's main) with the fake driver's power transitions taking at least
# 2 s: it applies a reset at int(now) + randint(1, 11) s, so about one reset in a hundred landed within
# 0.1 s, and the tests that give idrac_power a 0.1 s deadline (the timeout path) then saw it succeed.
# Real BMCs take seconds; the emulator's own code is otherwise unchanged.
_LAUNCH = """
import random, sys
from sushy_tools.emulator import main
from sushy_tools.emulator.resources.systems import fakedriver

class _AtLeastTwoSeconds(random.Random):
    def randint(self, a, b):
        return super().randint(max(a, 2), max(b, 2))

fakedriver.random = _AtLeastTwoSeconds()
sys.argv[0] = "sushy-emulator"
sys.exit(main.main())
"""


class RedfishEmulator:
    def __init__(
        self,
        directory: Path,
        pki: Pki,
        systems: list[dict] | None = None,
        username: str = USERNAME,
        password: str = PASSWORD,
    ):
        self.dir = Path(directory)
        self.pki = pki
        self.systems = systems or [system("System.Embedded.1")]
        self.username = username
        self.password = password
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        state = self.dir / "state"
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir()
        htpasswd = self.dir / "htpasswd"
        digest = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()
        htpasswd.write_text(f"{self.username}:{digest}\n")
        config = self.dir / "emulator.conf"
        config.write_text(
            "\n".join(
                [
                    "SUSHY_EMULATOR_FAKE_DRIVER = True",
                    f"SUSHY_EMULATOR_FAKE_SYSTEMS = {self.systems!r}",
                    "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'",
                    f"SUSHY_EMULATOR_LISTEN_PORT = {self.port}",
                    f"SUSHY_EMULATOR_SSL_CERT = {str(self.pki.cert)!r}",
                    f"SUSHY_EMULATOR_SSL_KEY = {str(self.pki.key)!r}",
                    f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}",
                    f"SUSHY_EMULATOR_STATE_DIR = {str(state)!r}",
                    "",
                ]
            )
        )
        return config

    def start(self, ready_timeout: float = 30) -> RedfishEmulator:
        config = self._write_config()
        self.log = open(self.dir / "emulator.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, "--config", str(config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sushy-emulator exited: {(self.dir / 'emulator.log').read_text()[-2000:]}")
            try:
                self.get("/redfish/v1/")
                return self
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("sushy-emulator did not answer /redfish/v1/ in time") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()
        assert self.proc.poll() is not None, "sushy-emulator still running"
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", self.port)) != 0, f"port {self.port} still answers"
        self.proc = None

    # -- a tiny client for assertions (not the code under test) ---------------------------------
    def request(self, method: str, path: str, payload: dict | None = None, base: str | None = None) -> tuple:
        req = urllib.request.Request((base or self.url) + path, method=method)
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, data=data, context=self.pki.client_context(), timeout=10) as resp:
                body = resp.read()
                return resp.status, json.loads(body) if body else {}
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body)
            except ValueError:
                return exc.code, {"raw": body.decode(errors="replace")}

    def get(self, path: str, base: str | None = None) -> dict:
        status, body = self.request("GET", path, base=base)
        if status >= 400:
            raise urllib.error.URLError(f"GET {path}: {status}")
        return body

    def system_state(self, system_id: str, base: str | None = None) -> dict:
        return self.get(f"/redfish/v1/Systems/{system_id}", base=base)

    def power_state(self, system_id: str, base: str | None = None) -> str:
        return self.system_state(system_id, base)["PowerState"]

    def wait_power(self, system_id: str, state: str, timeout: float = 30, base: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while self.power_state(system_id, base) != state:
            assert time.monotonic() < deadline, f"{system_id} did not reach {state}"
            time.sleep(0.3)

    def __enter__(self) -> RedfishEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
