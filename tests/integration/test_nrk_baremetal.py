"""The nrk_baremetal role end to end without a QEMU guest: the iDRAC is the Redfish emulator behind the
project's iDRAC layer (TLS, auth, power delay) plus the iDRAC SSH stand-in for `console com2`; the PXE
and iPXE servers are directories on the controller (delegated to localhost)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from playbook_runner import run_playbook

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "fixtures" / "idrac_layer"), str(HERE.parent / "fixtures" / "idrac_ssh")]

from idrac_layer import IdracLayer  # noqa: E402
from idrac_ssh import IdracSsh  # noqa: E402
from redfish_emulator import PASSWORD, Pki, RedfishEmulator, system  # noqa: E402

PLAY = """
- hosts: idrac_machines
  gather_facts: false
  serial: 1
  roles:
    - role: labkit.cluster.nrk_baremetal
"""
MAC = "52:54:00:AA:00:01"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("nrk")
    pki = Pki(base / "pki")
    emu = RedfishEmulator(base / "emu", pki, systems=[system("System.Embedded.1", mac=MAC.lower())]).start()
    layer = IdracLayer(emu.url, str(pki.cert), str(pki.key), str(pki.ca)).start()
    ssh = IdracSsh(password=PASSWORD).start()
    esp = base / "esp"
    (esp / "modules").mkdir(parents=True)
    files = {"BootX64.efi": "efi", "kernel": "elf", "cmdline.in": "./kernel\n", "boot.php": "#!ipxe\n"}
    for name, text in files.items():
        (esp / name).write_text(text)
    (esp / "modules" / "init").write_text("init")
    for sub in ("kernel", "tftp", "ipxe", "logs"):
        (base / sub).mkdir()
    inventory = base / "hosts.ini"
    inventory.write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        "[idrac_machines]\n"
        f"r640 ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    host_vars = {
        "nrk_baremetal_server_hostname": "r640.lab",
        "nrk_baremetal_mac": MAC,
        "nrk_baremetal_idrac_host": "127.0.0.1",
        "nrk_baremetal_idrac_port": layer.port,
        "nrk_baremetal_idrac_password": PASSWORD,
        "nrk_baremetal_idrac_ca_path": str(pki.ca),
        "nrk_baremetal_idrac_ssh_port": ssh.port,
        "nrk_baremetal_deploy_hostname": "ipxe.lab",
        "nrk_baremetal_deploy_username": "nrk",
        "nrk_baremetal_ipxe_deploy": str(base / "ipxe" / "r640"),
        "nrk_baremetal_toml_dir": str(base / "kernel"),
        "nrk_baremetal_pxe_dir": str(base / "tftp"),
        "nrk_baremetal_esp_dir": str(esp),
        "nrk_baremetal_poll_interval": 0.5,
        "nrk_baremetal_boot_timeout": 60,
        "nrk_baremetal_idle_timeout": 10,
        "nrk_baremetal_log_dir": str(base / "logs"),
    }
    first = run_playbook(PLAY, inventory=inventory, extra_vars=host_vars, timeout=300)
    second = run_playbook(PLAY, inventory=inventory, extra_vars={**host_vars, "nrk_baremetal_boot": False}, timeout=300)
    yield {"base": base, "first": first, "second": second, "emu": emu, "layer": layer, "ssh": ssh}
    ssh.stop()
    layer.stop()
    emu.stop()


def _fact(played, host="r640"):
    return played.result(host, "Set nrk_baremetal_result")["ansible_facts"]["nrk_baremetal_result"]


def test_machine_boots_over_pxe(lab):
    first = lab["first"]
    assert first.rc == 0 and first.failed("r640") == 0, first.stdout[-3000:]
    result = _fact(first)
    assert result["previous_state"] == "Off" and result["power_state"] == "On"
    assert result["booted_line"] == "NRK booted: init process started"
    assert Path(result["console_log"]).read_text().count("iPXE") == 1
    assert lab["emu"].power_state("System.Embedded.1") == "On"
    # the one-time PXE override was set and used (the iDRAC layer cleared it after the boot)
    boot = lab["emu"].system_state("System.Embedded.1", base=lab["layer"].url)["Boot"]
    assert boot["BootSourceOverrideTarget"] == "None" and boot["BootSourceOverrideEnabled"] == "Disabled"
    assert ("PATCH", "/redfish/v1/Systems/System.Embedded.1", 204) in lab["layer"].log
    assert "console com2" in lab["ssh"].commands


def test_toml_parses_back(lab):
    base = lab["base"]
    data = tomllib.loads((base / "kernel" / "r640.toml").read_text())
    assert data == {
        "server": {"name": "r640", "hostname": "r640.lab", "type": "skylake2x", "pre-boot-cmd": ""},
        "idrac": {
            "hostname": "127.0.0.1",
            "username": "root",
            "password": PASSWORD,
            "console": "com2",
            "idrac-version": "9",
            "boot-timeout": 60,
        },
        "deploy": {
            "hostname": "ipxe.lab",
            "username": "nrk",
            "ssh-pubkey": "~/.ssh/id_rsa.pub",
            "ipxe-deploy": str(base / "ipxe" / "r640"),
        },
    }
    assert oct((base / "kernel" / "r640.toml").stat().st_mode & 0o777) == "0o600"


def test_pxe_entry_and_esp(lab):
    base = lab["base"]
    entry = base / "tftp" / "01-52-54-00-aa-00-01"
    assert entry.read_text() == "#!ipxe\nchain http://ipxe.lab/r640/boot.php\n"
    deployed = base / "ipxe" / "r640"
    assert sorted(p.relative_to(deployed).as_posix() for p in deployed.rglob("*") if p.is_file()) == [
        "BootX64.efi",
        "boot.php",
        "cmdline.in",
        "kernel",
        "modules/init",
    ]
    assert _fact(lab["first"])["esp_changed"] is True


def test_second_run_changes_nothing(lab):
    second = lab["second"]
    assert second.rc == 0, second.stdout[-3000:]
    assert _fact(second)["esp_changed"] is False
    for task in ("Render the NRK machine TOML for r640", "Write the PXE entry 01-52-54-00-aa-00-01"):
        assert second.result("r640", task)["changed"] is False
