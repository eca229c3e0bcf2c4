"""labkit.cluster.bmc_console and idrac_power's racadm_ssh transport against the project's iDRAC SSH
stand-in (tests/fixtures/idrac_ssh) and a TCP serial port, both on 127.0.0.1, via ansible-playbook."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible_collections.labkit.cluster.plugins.module_utils.racadm import IdracSsh as Session
from ansible_collections.labkit.cluster.plugins.module_utils.racadm import RacadmClient
from ansible_collections.labkit.cluster.plugins.module_utils.redfish import BmcError
from playbook_runner import run_playbook

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "idrac_ssh"))

from idrac_ssh import IdracSsh, SerialPort

PLAY = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    labkit.cluster.idrac_power: &idrac
      host: 127.0.0.1
      port: "{{ ssh_port }}"
      transport: racadm_ssh
      username: root
      password: calvin
      poll_interval: 0.3
      wait_timeout: 20
    labkit.cluster.bmc_console:
      host: 127.0.0.1
      port: "{{ ssh_port }}"
      username: root
      password: calvin
      idle_timeout: 5
      timeout: 30
  tasks:
    - name: racadm pxe cycle
      labkit.cluster.idrac_power: {state: power_cycled, boot_override: pxe}
    - name: racadm on again
      labkit.cluster.idrac_power: {state: "on", boot_override: pxe}
    - name: racadm off
      labkit.cluster.idrac_power: {state: "off"}
    - name: racadm boot mode refused
      labkit.cluster.idrac_power: {boot_override: pxe, boot_mode: uefi}
      ignore_errors: true
    - name: racadm wrong password
      labkit.cluster.idrac_power: {state: "on", password: wrong}
      ignore_errors: true
    - name: ssh console until booted
      labkit.cluster.bmc_console:
        log_path: "{{ log_dir }}/ssh.log"
        match: 'NRK booted: (\\w+)'
    - name: tcp console until booted
      labkit.cluster.bmc_console:
        source: tcp
        port: "{{ serial_port }}"
        log_path: "{{ log_dir }}/tcp.log"
        match: NRK booted
    - name: tcp console until idle
      labkit.cluster.bmc_console:
        source: tcp
        port: "{{ serial_port }}"
        log_path: "{{ log_dir }}/idle.log"
        idle_timeout: 1
    - name: tcp console pattern never seen
      labkit.cluster.bmc_console:
        source: tcp
        port: "{{ serial_port }}"
        log_path: "{{ log_dir }}/never.log"
        match: kernel panic
        idle_timeout: 1
      ignore_errors: true
    - name: endless console hits the overall timeout
      labkit.cluster.bmc_console:
        source: tcp
        port: "{{ endless_port }}"
        log_path: "{{ log_dir }}/endless.log"
        match: kernel panic
        timeout: 2
      ignore_errors: true
    - name: console wrong password
      labkit.cluster.bmc_console:
        log_path: "{{ log_dir }}/denied.log"
        password: wrong
      ignore_errors: true
    - name: console unreachable
      labkit.cluster.bmc_console:
        source: tcp
        port: "{{ dead_port }}"
        log_path: "{{ log_dir }}/dead.log"
      ignore_errors: true
"""


@pytest.fixture(scope="module")
def consoles(tmp_path_factory):
    base = tmp_path_factory.mktemp("console")
    idrac = IdracSsh(power="Off", power_delay=1.0).start()
    serial = SerialPort().start()
    endless = SerialPort(endless=True, line_delay=0.1).start()
    dead = SerialPort()
    dead_port = dead.port
    dead.stop()
    inv = base / "inventory.ini"
    inv.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    extra = {
        "ssh_port": idrac.port,
        "serial_port": serial.port,
        "endless_port": endless.port,
        "dead_port": dead_port,
        "log_dir": str(base / "logs"),
    }
    result = run_playbook(PLAY, inventory=inv, extra_vars=extra, timeout=300)
    yield {"idrac": idrac, "result": result, "logs": base / "logs"}
    idrac.stop()
    serial.stop()
    endless.stop()


def _failed(played, task, res) -> bool:
    return any(
        e.get("event") == "runner_on_failed"
        and e["event_data"].get("task") == task
        and e["event_data"].get("res") is res
        for e in played.events
    )


def test_racadm_transport(consoles):
    played, idrac = consoles["result"], consoles["idrac"]
    cycle = played.result("localhost", "racadm pxe cycle")
    assert cycle["changed"] and cycle["previous_state"] == "Off" and cycle["power_state"] == "On", cycle
    assert cycle["transport"] == "racadm_ssh" and cycle["actions"] == [{"reset_type": "On", "answer": "done"}]
    assert cycle["boot_override"] == {"target": "Pxe", "enabled": "Once", "mode": None}
    assert "racadm set iDRAC.ServerBoot.BootOnce Enabled" in idrac.commands

    again = played.result("localhost", "racadm on again")
    assert not again["changed"] and again["power_state"] == "On"

    off = played.result("localhost", "racadm off")
    assert off["changed"] and off["power_state"] == "Off" and off["actions"][0]["reset_type"] == "ForceOff"
    assert idrac.power == "Off"

    refused = played.result("localhost", "racadm boot mode refused")
    assert _failed(played, "racadm boot mode refused", refused) and "boot_mode" in refused["msg"]
    denied = played.result("localhost", "racadm wrong password")
    assert _failed(played, "racadm wrong password", denied) and denied["error_kind"] == "auth"


def test_racadm_409_style_answer_and_racadm_prompt(consoles):
    """`serveraction powerup` on a running server says 'already powered ON': raised as a conflict, which
    idrac_power resolves by reading the power state back."""
    idrac = consoles["idrac"]
    client = RacadmClient("127.0.0.1", idrac.port, "root", "calvin")
    with pytest.raises(BmcError) as err:
        client.reset("ForceOff" if client.power_state() == "Off" else "On")
    assert err.value.kind == "conflict" and "already powered" in err.value.details["bmc_message"]
    client.close()

    session = Session("127.0.0.1", idrac.port, "root", "calvin")
    assert session.command("racadm") == ""  # now at racadm>>
    assert "Server power status" in session.command("serveraction powerstatus")
    session.close()


def test_console_over_ssh_matches_and_logs(consoles):
    played = consoles["result"]
    res = played.result("localhost", "ssh console until booted")
    assert res["matched"] and res["reason"] == "matched"
    assert res["matched_line"] == "NRK booted: init process started" and res["match_groups"] == ["init"]
    log = Path(res["log_path"]).read_text()
    assert "iPXE" in log and "NRK booted" in log
    assert "console com2" in consoles["idrac"].commands


def test_console_over_tcp(consoles):
    played = consoles["result"]
    res = played.result("localhost", "tcp console until booted")
    assert res["matched"] and res["matched_line"].startswith("NRK booted")

    idle = played.result("localhost", "tcp console until idle")
    assert idle["reason"] == "idle" and not idle["matched"] and idle["lines"] == 10
    assert 1 <= idle["elapsed"] < 5

    never = played.result("localhost", "tcp console pattern never seen")
    assert _failed(played, "tcp console pattern never seen", never)
    assert never["error_kind"] == "idle" and "silent for 1.0 s" in never["msg"]
    assert never["tail"][-1].startswith("[ INFO]: init")

    endless = played.result("localhost", "endless console hits the overall timeout")
    assert _failed(played, "endless console hits the overall timeout", endless)
    assert endless["reason"] == "timeout" and 2 <= endless["elapsed"] < 4 and endless["lines"] > 10

    denied = played.result("localhost", "console wrong password")
    assert _failed(played, "console wrong password", denied) and denied["error_kind"] == "auth"
    dead = played.result("localhost", "console unreachable")
    assert _failed(played, "console unreachable", dead) and dead["error_kind"] == "unreachable"
