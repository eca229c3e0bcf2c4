"""Redfish BMCs for the inventory's iDRAC machines: one sushy-tools emulator each.

Each listens on 127.0.0.1:<idrac_port> with TLS (a certificate signed by simlab's own CA, so
clients keep verification on and trust ~/.cache/labkit/tls/ca.pem) and HTTP basic auth with the
inventory's idrac_username/idrac_password (bcrypt htpasswd, as sushy-tools requires).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from simlab import cachelock, paths, tools
from simlab.errors import SimlabError
from simlab.inventory import BmcSpec


@cachelock.locked("tls")
def ensure_tls() -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost, made once; returns (ca, cert, key)."""
    tools.require("openssl")
    directory = paths.tls_dir()
    ca, cert, key = directory / "ca.pem", directory / "bmc.pem", directory / "bmc.key"
    if ca.exists() and cert.exists() and key.exists():
        return ca, cert, key
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = directory / "ca.key"
    tools.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=labkit simlab CA",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca),
        ],
        what="openssl (CA)",
    )
    csr = directory / "bmc.csr"
    tools.run(
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(csr),
        ],
        what="openssl (BMC key)",
    )
    ext = directory / "bmc.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    tools.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            str(ext),
            "-out",
            str(cert),
        ],
        what="openssl (BMC certificate)",
    )
    return ca, cert, key


def _htpasswd(username: str, password: str) -> str:
    import bcrypt  # installed with sushy-tools

    return f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6)).decode()}\n"


def write_config(bmc: BmcSpec, directory: Path) -> Path:
    _ca, cert, key = ensure_tls()
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "state"
    state.mkdir(exist_ok=True)
    auth = directory / "htpasswd"
    auth.write_text(_htpasswd(bmc.username, bmc.password))
    auth.chmod(0o600)
    systems = [
        {
            "uuid": bmc.system_id,
            "name": bmc.name,
            "power_state": "Off",
            "nics": [{"mac": bmc.pxe_mac or "52:54:00:00:00:01", "ip": "127.0.0.1"}],
        }
    ]
    config = directory / "emulator.conf"
    config.write_text(
        "\n".join(
            [
                "SUSHY_EMULATOR_FAKE_DRIVER = True",
                f"SUSHY_EMULATOR_FAKE_SYSTEMS = {json.dumps(systems)}",
                "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'",
                f"SUSHY_EMULATOR_LISTEN_PORT = {bmc.port}",
                f"SUSHY_EMULATOR_SSL_CERT = {str(cert)!r}",
                f"SUSHY_EMULATOR_SSL_KEY = {str(key)!r}",
                f"SUSHY_EMULATOR_AUTH_FILE = {str(auth)!r}",
                f"SUSHY_EMULATOR_STATE_DIR = {str(state)!r}",
                "",
            ]
        )
    )
    return config


def start(bmc: BmcSpec, directory: Path) -> int:
    emulator = Path(sys.executable).with_name("sushy-emulator")
    if not emulator.exists():
        raise SimlabError(f"{emulator} not found: install sushy-tools in the venv (./labkit setup)")
    config = write_config(bmc, directory)
    log = open(directory / "emulator.log", "ab")
    proc = subprocess.Popen(
        [str(emulator), "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log.close()
    return proc.pid


def wait_ready(bmc: BmcSpec, pid: int, directory: Path, timeout: float = 30) -> None:
    ca, _, _ = ensure_tls()
    context = ssl.create_default_context(cafile=str(ca))
    token = base64.b64encode(f"{bmc.username}:{bmc.password}".encode()).decode()
    request = urllib.request.Request(f"{bmc.url}/redfish/v1/Systems", headers={"Authorization": f"Basic {token}"})
    deadline = time.monotonic() + timeout
    from simlab.guest import process_alive

    while True:
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if not process_alive(pid) or time.monotonic() > deadline:
            log = (directory / "emulator.log").read_text(errors="replace").splitlines()[-10:]
            raise SimlabError(f"{bmc.name}: the Redfish emulator did not answer on {bmc.url}:\n" + "\n".join(log))
        time.sleep(0.3)
