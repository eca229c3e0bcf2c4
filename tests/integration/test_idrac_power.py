"""labkit.cluster.idrac_power against sushy-tools' Redfish emulator over TLS with basic auth.

Two BMCs: the emulator as it is ("direct": 204 when already in state, no PowerCycle, override kept
as Continuous) and the emulator behind the project's iDRAC layer ("idrac": 409, iDRAC reset types
without PowerCycle/GracefulRestart, Once override cleared after the boot). The emulator applies each
power change 1-11 s late, so every state asserted here is the one the module waited for.

Everything runs in one ansible-playbook with the free strategy: each inventory host plays its own
scenario in parallel, which keeps the module under test to one run of ~1 minute.
"""

from __future__ import annotations

import itertools
import json
import sys
import textwrap
from pathlib import Path

import pytest
from ansible_collections.labkit.cluster.plugins.module_utils.redfish import BmcError, RedfishClient
from playbook_runner import run_playbook

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "idrac_layer"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from idrac_layer import IdracLayer
from redfish_emulator import PASSWORD, Pki, RedfishEmulator, free_port, system

TRANSITIONS = """
- name: check power on
  labkit.cluster.idrac_power: {state: "on"}
  check_mode: true
  register: r
- name: power on
  labkit.cluster.idrac_power: {state: "on"}
- name: power on again
  labkit.cluster.idrac_power: {state: "on"}
- name: restarted
  labkit.cluster.idrac_power: {state: restarted}
- name: pxe cycle
  labkit.cluster.idrac_power: {state: power_cycled, boot_override: pxe, boot_mode: uefi}
- name: clear override
  labkit.cluster.idrac_power: {boot_override: none}
- name: shutdown
  labkit.cluster.idrac_power: {state: shutdown}
- name: shutdown again
  labkit.cluster.idrac_power: {state: shutdown}
- name: cycle from off
  labkit.cluster.idrac_power: {state: power_cycled}
- name: power off
  labkit.cluster.idrac_power: {state: "off"}
  diff: true
- name: power off again
  labkit.cluster.idrac_power: {state: "off"}
"""

ERRORS = """
- name: wrong password
  labkit.cluster.idrac_power: {state: "on", password: not-the-password}
  ignore_errors: true
- name: wrong ca
  labkit.cluster.idrac_power: {state: "on", ca_path: "{{ bmc_other_ca }}"}
  ignore_errors: true
- name: no ca
  labkit.cluster.idrac_power: {state: "on", ca_path: null}
  ignore_errors: true
- name: insecure on request
  labkit.cluster.idrac_power: {state: "off", ca_path: "{{ bmc_other_ca }}", validate_certs: false}
- name: unreachable
  labkit.cluster.idrac_power: {state: "on", host: "127.0.0.1:{{ bmc_dead_port }}", timeout: 5}
  ignore_errors: true
- name: unknown system
  labkit.cluster.idrac_power: {state: "on", system_id: System.Embedded.9}
  ignore_errors: true
- name: bios setup not allowed
  labkit.cluster.idrac_power: {boot_override: bios_setup}
  ignore_errors: true
"""

TIMING = """
- name: wait timeout
  labkit.cluster.idrac_power: {state: "off", wait_timeout: 0.1}
  ignore_errors: true
- name: let it land
  labkit.cluster.idrac_power: {state: "off"}
- name: power on for shutdown
  labkit.cluster.idrac_power: {state: "on"}
- name: shutdown forced
  labkit.cluster.idrac_power: {state: shutdown, shutdown_timeout: 0.1, force_fallback: true}
- name: bios setup once
  labkit.cluster.idrac_power: {boot_override: bios_setup, boot_mode: legacy}
  when: inventory_hostname.startswith("idrac")
- name: bios setup again
  labkit.cluster.idrac_power: {boot_override: bios_setup, boot_mode: legacy}
  when: inventory_hostname.startswith("idrac")
"""


# 1: transitions, 2: timing, 3: error cases (each scenario owns a system so they can run at once)
SYSTEMS = [system("System.Embedded.1"), system("System.Embedded.2", "On"), system("System.Embedded.3")]


@pytest.fixture(scope="module")
def bmcs(tmp_path_factory):
    base = tmp_path_factory.mktemp("redfish")
    pki = Pki(base / "pki")
    direct = RedfishEmulator(base / "direct", pki, systems=SYSTEMS)
    behind = RedfishEmulator(base / "behind", pki, systems=SYSTEMS)
    direct.start()
    behind.start()
    layer = IdracLayer(behind.url, str(pki.cert), str(pki.key), str(pki.ca), 0).start()
    yield {"pki": pki, "direct": direct, "behind": behind, "layer": layer, "base": base}
    layer.stop()
    direct.stop()
    behind.stop()


def _inventory(bmcs) -> Path:
    pki = bmcs["pki"]
    direct = bmcs["direct"].url.removeprefix("https://")
    layer = bmcs["layer"].url.removeprefix("https://")
    common = "\n".join(
        [
            "ansible_connection=local",
            f"ansible_python_interpreter={sys.executable}",
            f"bmc_ca={pki.ca}",
            f"bmc_other_ca={pki.other_ca}",
            f"bmc_dead_port={free_port()}",
        ]
    )
    inv = bmcs["base"] / "inventory.ini"
    inv.write_text(
        textwrap.dedent(f"""\
        [bmcs]
        direct bmc_host={direct} bmc_system=System.Embedded.1 scenario=transitions
        idrac bmc_host={layer} bmc_system=System.Embedded.1 scenario=transitions
        direct_errors bmc_host={direct} bmc_system=System.Embedded.3 scenario=errors
        idrac_errors bmc_host={layer} bmc_system=System.Embedded.3 scenario=errors
        direct_timing bmc_host={direct} bmc_system=System.Embedded.2 scenario=timing
        idrac_timing bmc_host={layer} bmc_system=System.Embedded.2 scenario=timing
        [bmcs:vars]
        """)
        + common
        + "\n"
    )
    return inv


@pytest.fixture(scope="module")
def played(bmcs):
    """Run all scenarios once; every test below reads its part of the result."""
    tasks_dir = bmcs["base"] / "tasks"
    tasks_dir.mkdir()
    for name, text in (("transitions", TRANSITIONS), ("errors", ERRORS), ("timing", TIMING)):
        (tasks_dir / f"{name}.yml").write_text(text)
    play = f"""
- hosts: bmcs
  gather_facts: false
  strategy: free
  module_defaults:
    labkit.cluster.idrac_power:
      host: "{{{{ bmc_host }}}}"
      username: root
      password: "{{{{ bmc_password }}}}"
      ca_path: "{{{{ bmc_ca }}}}"
      system_id: "{{{{ bmc_system }}}}"
      poll_interval: 0.5
      wait_timeout: 60
  tasks:
    - name: scenario
      ansible.builtin.include_tasks: "{tasks_dir}/{{{{ scenario }}}}.yml"
"""
    result = run_playbook(play, inventory=_inventory(bmcs), extra_vars={"bmc_password": PASSWORD}, timeout=600)
    return result


def _failed(played, host, res) -> bool:
    """True when the task that returned `res` on `host` failed (ignored failures keep no 'failed' key)."""
    return any(
        e.get("event") == "runner_on_failed"
        and e["event_data"].get("host") == host
        and e["event_data"].get("res") is res
        for e in played.events
    )


@pytest.mark.parametrize("host", ["direct", "idrac"])
def test_transitions_reach_and_report_true_state(played, bmcs, host):
    assert played.failed(host) == 0, played.stdout[-3000:]
    check = played.result(host, "check power on")
    assert check["changed"] and check["power_state"] == "On" and check["previous_state"] == "Off"
    assert check["actions"] == [{"reset_type": "On", "answer": "planned"}]

    on = played.result(host, "power on")
    assert on["changed"] and on["previous_state"] == "Off" and on["power_state"] == "On"  # check mode did nothing
    again = played.result(host, "power on again")
    assert not again["changed"] and again["power_state"] == "On" and again["actions"] == []

    restarted = played.result(host, "restarted")
    assert restarted["changed"] and restarted["power_state"] == "On"
    if host == "direct":
        assert [a["reset_type"] for a in restarted["actions"]] == ["GracefulRestart"]
    else:
        assert [a["reset_type"] for a in restarted["actions"]] == ["GracefulShutdown", "On"]
        assert "GracefulRestart not allowed" in restarted["fallback"]

    cycle = played.result(host, "pxe cycle")
    assert cycle["changed"] and cycle["power_state"] == "On"
    assert [a["reset_type"] for a in cycle["actions"]] == ["ForceOff", "On"]
    assert "PowerCycle not allowed" in cycle["fallback"]

    shutdown = played.result(host, "shutdown")
    assert shutdown["changed"] and shutdown["previous_state"] == "On" and shutdown["power_state"] == "Off"
    assert [a["reset_type"] for a in shutdown["actions"]] == ["GracefulShutdown"]
    assert not played.result(host, "shutdown again")["changed"]

    from_off = played.result(host, "cycle from off")
    assert from_off["changed"] and from_off["power_state"] == "On"
    assert [a["reset_type"] for a in from_off["actions"]] == ["On"]

    off = played.result(host, "power off")
    assert off["changed"] and off["power_state"] == "Off" and off["elapsed"] > 0
    assert off["diff"]["before"]["power_state"] == "On" and off["diff"]["after"]["power_state"] == "Off"
    assert not played.result(host, "power off again")["changed"]

    # Each reported final state was the true one: the next task read it back before acting.
    order = ["power on", "power on again", "restarted", "pxe cycle", "clear override", "shutdown", "shutdown again"]
    order += ["cycle from off", "power off", "power off again"]
    for before, after in itertools.pairwise(order):
        assert played.result(host, after)["previous_state"] == played.result(host, before)["power_state"]
    emulator = bmcs["direct"] if host == "direct" else bmcs["behind"]
    assert emulator.power_state("System.Embedded.1") == "Off"


def test_one_time_pxe_on_idrac_is_cleared_after_boot(played, bmcs):
    cycle = played.result("idrac", "pxe cycle")
    assert cycle["diff"]["after"]["boot_override"]["target"] in ("None", None)
    assert cycle["boot_override"]["enabled"] == "Disabled"
    # the override was set as Once, then the boot used it
    assert ("PATCH", "/redfish/v1/Systems/System.Embedded.1", 204) in bmcs["layer"].log
    assert not played.result("idrac", "clear override")["changed"]


def test_one_time_pxe_on_plain_emulator_warns_and_clears_on_request(played, bmcs):
    cycle = played.result("direct", "pxe cycle")
    assert cycle["boot_override"] == {"target": "Pxe", "enabled": "Continuous", "mode": "UEFI"}
    assert any("Continuous" in w for w in cycle.get("warnings", []))
    cleared = played.result("direct", "clear override")
    assert cleared["changed"] and cleared["boot_override"]["target"] == "None"
    assert bmcs["direct"].system_state("System.Embedded.1")["Boot"]["BootSourceOverrideTarget"] == "None"


@pytest.mark.parametrize("host", ["direct_errors", "idrac_errors"])
def test_errors_say_what_failed(played, host):
    res = played.result(host, "wrong password")
    assert _failed(played, host, res), res
    assert res["error_kind"] == "auth" and "401" in res["msg"]
    assert res["invocation"]["module_args"]["password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert "not-the-password" not in json.dumps(res)

    for task in ("wrong ca", "no ca"):
        res = played.result(host, task)
        assert _failed(played, host, res), res
        assert res["error_kind"] == "tls", res
        assert "TLS failure" in res["msg"] and "CERTIFICATE_VERIFY_FAILED" in res["msg"]

    insecure = played.result(host, "insecure on request")
    assert not insecure.get("failed") and insecure["power_state"] == "Off"

    res = played.result(host, "unreachable")
    assert _failed(played, host, res), res
    assert res["error_kind"] == "unreachable" and "cannot reach" in res["msg"]

    res = played.result(host, "unknown system")
    assert _failed(played, host, res), res
    assert res["error_kind"] == "not_found"
    assert "System.Embedded.9" in res["msg"] and "System.Embedded.1" in res["systems"]

    res = played.result(host, "bios setup not allowed")
    if host == "direct_errors":
        assert _failed(played, host, res), res
        assert res["error_kind"] == "not_allowed" and "Pxe" in res["msg"]
    else:
        assert res["changed"] and res["boot_override"]["target"] == "BiosSetup"


@pytest.mark.parametrize("host", ["direct_timing", "idrac_timing"])
def test_timeout_and_forced_shutdown(played, host):
    res = played.result(host, "wait timeout")
    assert _failed(played, host, res), res
    assert res["error_kind"] == "timeout"
    assert res["last_state"] == "On" and "last seen state On" in res["msg"]
    assert played.result(host, "let it land")["power_state"] == "Off"

    forced = played.result(host, "shutdown forced")
    assert forced["power_state"] == "Off" and "forced off" in forced["fallback"]
    assert [a["reset_type"] for a in forced["actions"]] == ["GracefulShutdown", "ForceOff"]

    if host == "idrac_timing":
        once = played.result(host, "bios setup once")
        assert once["changed"] and once["boot_override"] == {"target": "BiosSetup", "enabled": "Once", "mode": "Legacy"}
        assert not played.result(host, "bios setup again")["changed"]


def test_409_already_in_state_is_a_conflict_with_the_idrac_message(bmcs):
    """The iDRAC layer answers 409 to a reset into the current state; the client raises it as a conflict
    with the iDRAC's message and MessageId (idrac_power then reads the state back)."""
    client = RedfishClient(bmcs["layer"].url, "root", PASSWORD, ca_path=str(bmcs["pki"].ca))
    client.find_system("System.Embedded.2")
    state = client.power_state()
    with pytest.raises(BmcError) as err:
        client.reset("On" if state == "On" else "ForceOff")
    assert err.value.kind == "conflict" and err.value.details["message_ids"] == ["IDRAC.2.8.PSU501"]
    assert "already powered" in err.value.details["bmc_message"]
    # the plain emulator says 204 to the same request
    plain = RedfishClient(bmcs["direct"].url, "root", PASSWORD, ca_path=str(bmcs["pki"].ca))
    plain.find_system("System.Embedded.2")
    assert plain.reset("On" if plain.power_state() == "On" else "ForceOff") == "done"
