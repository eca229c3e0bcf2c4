"""No role or playbook that takes the iDRAC password prints it, even with --check --diff -vvv.

Runs real ansible-playbook against localhost (ansible_connection=local) with a known password and
looks for it, and for the HTTP basic-auth header made from it, in everything ansible printed. The
BMC is a closed port on 127.0.0.1: the module fails the way it does with an unreachable iDRAC, which
is a path that prints messages too. Two ansible-playbook runs, about 30 s; needs no sim lab.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Leak-Canary-7f3e9b2d"
USER = "root"

ROLE_PLAY = """
- hosts: idrac_machines
  gather_facts: false
  roles:
    - role: labkit.cluster.nrk_baremetal
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def secrets() -> list[str]:
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return [PASSWORD, basic, json.dumps(PASSWORD)[1:-1]]


def ansible_playbook(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": str(cwd / "tmp"),
    }
    exe = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or "ansible-playbook"
    return subprocess.run(
        [exe, "--check", "--diff", "-vvv", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_no_secret(run: subprocess.CompletedProcess) -> None:
    output = run.stdout + run.stderr
    for secret in secrets():
        assert secret not in output, f"{secret!r} printed:\n" + "\n".join(
            line for line in output.splitlines() if secret in line
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("leak")
    for sub in ("kernel", "tftp", "ipxe", "logs", "tmp", "esp/modules"):
        (base / sub).mkdir(parents=True)
    for name in ("BootX64.efi", "kernel", "cmdline.in", "modules/init"):
        (base / "esp" / name).write_text(name)
    py = sys.executable
    (base / "hosts.ini").write_text(
        textwrap.dedent(f"""\
        localhost ansible_connection=local ansible_python_interpreter={py}
        [idrac_machines]
        r640 ansible_connection=local ansible_python_interpreter={py}
        """)
    )
    (base / "host_vars").mkdir()
    (base / "host_vars" / "r640.yml").write_text(
        json.dumps(
            {
                "idrac_hostname": "127.0.0.1",
                "idrac_port": closed_port(),
                "idrac_username": USER,
                "idrac_password": PASSWORD,
                "idrac_validate_certs": False,
                "idrac_pxe_mac": "52:54:00:aa:00:01",
                "nrk_baremetal_server_hostname": "r640.lab",
                "nrk_baremetal_mac": "52:54:00:aa:00:01",
                "nrk_baremetal_idrac_host": "127.0.0.1",
                "nrk_baremetal_idrac_port": closed_port(),
                "nrk_baremetal_idrac_username": USER,
                "nrk_baremetal_idrac_password": PASSWORD,
                "nrk_baremetal_idrac_validate_certs": False,
                "nrk_baremetal_console_source": "ssh",
                "nrk_baremetal_toml_dir": str(base / "kernel"),
                "nrk_baremetal_pxe_dir": str(base / "tftp"),
                "nrk_baremetal_ipxe_deploy": str(base / "ipxe" / "r640"),
                "nrk_baremetal_esp_dir": str(base / "esp"),
                "nrk_baremetal_log_dir": str(base / "logs"),
                "nrk_baremetal_power_wait_timeout": 5,
                "nrk_baremetal_poll_interval": 0.5,
            }
        )
    )
    (base / "play.yml").write_text(ROLE_PLAY)
    return base


def test_nrk_baremetal_prints_no_password(site):
    """The whole role: the TOML that holds the password is rendered (and would be diffed), then the
    boot tasks hand the password to idrac_power, which fails on a BMC that does not answer."""
    run = ansible_playbook(["-i", "hosts.ini", "play.yml"], site)
    out = run.stdout
    assert "Render the NRK machine TOML" in out and "changed: [r640" in out, out[-3000:]
    assert "--- before" in out, "no diff was printed at all: the test would prove nothing"
    assert run.returncode != 0 and "cannot reach the BMC" in out, out[-3000:]
    assert_no_secret(run)
    assert not (site / "kernel" / "r640.toml").exists(), "check mode wrote the TOML"


def test_cluster_playbook_bmc_query_prints_no_password(site):
    """playbooks/cluster.yml reads every BMC's power state with the inventory's idrac_password."""
    run = ansible_playbook(["-i", "hosts.ini", str(ROOT / "playbooks" / "cluster.yml"), "--tags", "idrac"], site)
    assert "Read the system's power state" in run.stdout, run.stdout[-3000:]
    assert_no_secret(run)
