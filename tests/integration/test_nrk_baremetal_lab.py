"""playbooks/nrk_baremetal.yml end to end on the sim lab.

The iDRAC is simlab's Redfish BMC (sushy-tools over TLS with the lab CA and the inventory's password),
the PXE and iPXE server is the sim-build guest (reached over SSH), and the serial console is the
project's iDRAC SSH stand-in streaming a boot log (the Redfish emulator has no console).
"""

from __future__ import annotations

import base64
import json
import ssl
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest
from simlab import bmc as simlab_bmc

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE.parent / "fixtures" / "idrac_ssh")]

from idrac_ssh import IdracSsh  # noqa: E402

pytestmark = [pytest.mark.lab]

MACHINE = "sim-idrac1"
SERVER = "sim-build"
PLAY = f"- ansible.builtin.import_playbook: {ROOT / 'playbooks' / 'nrk_baremetal.yml'}\n"


def _system(spec) -> dict:
    ca, _, _ = simlab_bmc.ensure_tls()
    token = base64.b64encode(f"{spec.username}:{spec.password}".encode()).decode()
    request = urllib.request.Request(
        f"{spec.url}/redfish/v1/Systems/{spec.system_id}", headers={"Authorization": f"Basic {token}"}
    )
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=str(ca)), timeout=10) as answer:
        return json.load(answer)


@pytest.fixture(scope="module")
def booted(lab, run_playbook, tmp_path_factory):
    base = tmp_path_factory.mktemp("nrk-lab")
    esp = base / "esp"
    (esp / "modules").mkdir(parents=True)
    for name, text in {
        "BootX64.efi": "efi",
        "kernel": "elf",
        "cmdline.in": "./kernel\n",
        "boot.php": "#!ipxe\n",
    }.items():
        (esp / name).write_text(text)
    (esp / "modules" / "init").write_text("init")
    (base / "kernel").mkdir()
    spec = lab.bmcs[MACHINE]
    console = IdracSsh(username=spec.username, password=spec.password).start()
    lab.ssh(SERVER, "rm -rf /srv/tftp /srv/ipxe && mkdir -p /srv/tftp /srv/ipxe")
    extra = {
        "nrk_baremetal_esp_dir": str(esp),
        "nrk_baremetal_toml_dir": str(base / "kernel"),
        "nrk_baremetal_deploy_host": SERVER,
        "nrk_baremetal_deploy_hostname": lab.guests[SERVER].lab_address,
        "nrk_baremetal_ipxe_deploy": f"/srv/ipxe/{MACHINE}",
        "nrk_baremetal_pxe_dir": "/srv/tftp",
        "nrk_baremetal_console_host": "127.0.0.1",
        "nrk_baremetal_console_port": console.port,
        "nrk_baremetal_boot_timeout": 60,
        "nrk_baremetal_idle_timeout": 15,
        "nrk_baremetal_poll_interval": 1,
        "nrk_baremetal_log_dir": str(base / "logs"),
    }
    try:
        first = run_playbook(PLAY, limit=MACHINE, extra_vars=extra)
        second = run_playbook(PLAY, limit=MACHINE, extra_vars={**extra, "nrk_baremetal_boot": False})
    finally:
        console.stop()
    return {"base": base, "first": first, "second": second, "spec": spec, "console": console}


def _result(played) -> dict:
    return played.result(MACHINE, "Set nrk_baremetal_result")["ansible_facts"]["nrk_baremetal_result"]


def test_machine_is_power_cycled_into_a_pxe_boot(booted):
    first = booted["first"]
    assert first.rc == 0 and first.failed(MACHINE) == 0, first.stdout[-4000:]
    result = _result(first)
    assert result["power_state"] == "On"
    assert result["booted_line"].startswith("NRK booted")
    system = _system(booted["spec"])
    assert system["PowerState"] == "On"  # what the BMC itself reports, read independently
    assert system["Boot"]["BootSourceOverrideTarget"] == "Pxe"
    assert "console com2" in booted["console"].commands


def test_pxe_entry_and_esp_are_on_the_server_guest(booted, lab):
    mac = booted["spec"].pxe_mac.lower().replace(":", "-")
    entry = lab.ssh(SERVER, f"cat /srv/tftp/01-{mac}").stdout
    assert entry == f"#!ipxe\nchain http://{lab.guests[SERVER].lab_address}/{MACHINE}/boot.php\n"
    files = lab.ssh(SERVER, f"cd /srv/ipxe/{MACHINE} && find . -type f | sort").stdout.split()
    assert files == ["./BootX64.efi", "./boot.php", "./cmdline.in", "./kernel", "./modules/init"]


def test_machine_toml_parses_back_from_the_inventory(booted, lab):
    data = tomllib.loads((booted["base"] / "kernel" / f"{MACHINE}.toml").read_text())
    spec = lab.bmcs[MACHINE]
    assert data["server"]["name"] == MACHINE
    assert data["idrac"]["hostname"] == "127.0.0.1"
    assert data["idrac"]["username"] == spec.username
    assert data["idrac"]["password"] == spec.password
    assert data["deploy"]["ipxe-deploy"] == f"/srv/ipxe/{MACHINE}"


def test_second_run_changes_nothing(booted):
    second = booted["second"]
    assert second.rc == 0, second.stdout[-4000:]
    assert second.changed(MACHINE) == 0, second.stdout[-4000:]
    assert _result(second)["esp_changed"] is False
