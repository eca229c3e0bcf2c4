"""idrac_power's decisions with a scripted BMC (mocks only, in addition to the emulator tests)."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.module_utils.redfish import BmcError
from ansible_collections.labkit.cluster.plugins.modules import idrac_power
from ansible_collections.labkit.cluster.plugins.modules.idrac_power import IdracPower, Step, plan

ALL = ["On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "Nmi"]
IDRAC = ["On", "ForceOff", "ForceRestart", "GracefulShutdown", "PushPowerButton", "Nmi"]


@pytest.mark.parametrize(
    ("state", "current", "allowed", "steps"),
    [
        ("on", "On", ALL, []),
        ("on", "PoweringOn", ALL, []),
        ("on", "Off", ALL, [Step("On", "On")]),
        ("off", "Off", ALL, []),
        ("off", "On", ALL, [Step("ForceOff", "Off")]),
        ("shutdown", "On", ALL, [Step("GracefulShutdown", "Off")]),
        ("shutdown", "Off", ALL, []),
        ("restarted", "On", ALL, [Step("GracefulRestart", "On")]),
        ("restarted", "On", IDRAC, [Step("GracefulShutdown", "Off"), Step("On", "On")]),
        ("restarted", "Off", IDRAC, [Step("On", "On")]),
        ("power_cycled", "On", [*ALL, "PowerCycle"], [Step("PowerCycle", "On")]),
        ("power_cycled", "On", ALL, [Step("ForceOff", "Off"), Step("On", "On")]),
        ("power_cycled", "On", ["On", "ForceRestart"], [Step("ForceRestart", "On")]),
        ("power_cycled", "On", None, [Step("PowerCycle", "On")]),
        ("power_cycled", "Off", IDRAC, [Step("On", "On")]),
        (None, "On", ALL, []),
    ],
)
def test_plan(state, current, allowed, steps):
    assert plan(state, current, allowed)[0] == steps


def test_plan_names_the_fallback_and_the_refusal():
    _, why = plan("power_cycled", "On", IDRAC)
    assert why.startswith("PowerCycle not allowed (allowed On, ForceOff") and why.endswith("used ForceOff + On")
    with pytest.raises(BmcError) as err:
        plan("off", "On", ["On"])
    assert err.value.kind == "not_allowed" and "allowed values: On" in err.value.msg


class FakeBmc:
    """A BMC whose power state follows a script of reads; records every reset."""

    transport = "redfish"

    def __init__(self, states, allowed=ALL, answers=None, boot=None):
        self.states = list(states)
        self.allowed = allowed
        self.answers = answers or {}
        self.resets = []
        self.boot = boot or {"target": "None", "enabled": "Disabled", "mode": "UEFI", "allowed_targets": None}
        self.patches = []

    def find_system(self, system_id):
        return system_id or "System.Embedded.1"

    def power_state(self):
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def allowed_resets(self):
        return self.allowed

    def reset(self, reset_type):
        self.resets.append(reset_type)
        answer = self.answers.get(reset_type, "done")
        if isinstance(answer, Exception):
            raise answer
        return answer

    def boot_override(self):
        return dict(self.boot)

    def set_boot_override(self, target, mode=None):
        self.patches.append((target, mode))
        self.boot.update(target=target, enabled="Once", mode=mode or self.boot["mode"])


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += max(seconds, 0.5)


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.check_mode = check_mode
        self.params = dict(
            system_id=None,
            state=None,
            boot_override=None,
            boot_mode=None,
            wait=True,
            wait_timeout=30,
            shutdown_timeout=10,
            force_fallback=False,
            poll_interval=1.0,
        )
        self.params.update(params)
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)


def run(bmc, check_mode=False, **params):
    clock = Clock()
    module = FakeModule(check_mode, **params)
    return IdracPower(module, bmc, clock=clock, sleep=clock.sleep).run(), module


def test_on_waits_for_the_late_state_and_reports_it():
    bmc = FakeBmc(["Off", "Off", "Off", "Off", "On"])
    res, _ = run(bmc, state="on")
    assert res["changed"] and res["previous_state"] == "Off" and res["power_state"] == "On"
    assert bmc.resets == ["On"] and res["elapsed"] > 0


def _conflict(message="Server is already powered ON."):
    return BmcError("conflict", f"409: {message}", status=409, bmc_message=message, message_ids=["IDRAC.2.8.PSU501"])


def test_409_with_the_state_reached_is_not_a_change():
    bmc = FakeBmc(["Off", "On"], answers={"On": _conflict()})  # state read was stale
    res, _ = run(bmc, state="on")
    assert not res["changed"] and res["power_state"] == "On"
    assert res["actions"] == [{"reset_type": "On", "answer": "already", "message": "Server is already powered ON."}]


def test_409_on_a_restart_is_never_already_there():
    bmc = FakeBmc(["On"], allowed=[*ALL, "PowerCycle"], answers={"PowerCycle": _conflict("LC busy")})
    with pytest.raises(BmcError) as err:
        run(bmc, state="power_cycled", wait_timeout=3, poll_interval=1.0)
    assert err.value.kind == "conflict" and "LC busy" in err.value.msg and len(bmc.resets) > 1


def test_refused_power_cycle_falls_back_at_run_time():
    refused = BmcError("not_allowed", "the BMC refused ResetType PowerCycle (HTTP 501)")
    bmc = FakeBmc(["On", "On", "Off", "Off", "On"], allowed=None, answers={"PowerCycle": refused})
    res, _ = run(bmc, state="power_cycled")
    assert bmc.resets == ["PowerCycle", "ForceOff", "On"] and res["power_state"] == "On"
    assert "PowerCycle refused" in res["fallback"]


def test_shutdown_forced_after_timeout():
    bmc = FakeBmc(["On"] * 30 + ["Off"])
    res, _ = run(bmc, state="shutdown", shutdown_timeout=5, force_fallback=True)
    assert bmc.resets == ["GracefulShutdown", "ForceOff"] and res["power_state"] == "Off"
    assert "forced off" in res["fallback"]


def test_shutdown_timeout_without_fallback_names_last_state():
    bmc = FakeBmc(["On"])
    with pytest.raises(BmcError) as err:
        run(bmc, state="shutdown", shutdown_timeout=3)
    assert err.value.kind == "timeout" and err.value.details["last_state"] == "On"
    assert "last seen state On" in err.value.msg


def test_check_mode_sends_nothing_and_predicts():
    bmc = FakeBmc(["On"])
    res, _ = run(bmc, check_mode=True, state="power_cycled", boot_override="pxe")
    assert res["changed"] and res["power_state"] == "On" and bmc.resets == [] and bmc.patches == []
    assert res["boot_override"]["target"] == "Pxe" and res["boot_override"]["enabled"] == "Once"


def test_boot_override_is_idempotent_and_checked_against_allowed_targets():
    bmc = FakeBmc(["On"], boot={"target": "Pxe", "enabled": "Once", "mode": "UEFI", "allowed_targets": None})
    res, _ = run(bmc, boot_override="pxe", boot_mode="uefi")
    assert not res["changed"] and bmc.patches == []
    bmc = FakeBmc(["On"], boot={"target": "Hdd", "enabled": "Continuous", "mode": "UEFI", "allowed_targets": ["Pxe"]})
    with pytest.raises(BmcError) as err:
        run(bmc, boot_override="bios_setup")
    assert err.value.kind == "not_allowed" and "allowed values: Pxe" in err.value.msg


def test_no_wait_returns_the_state_right_after_the_request():
    bmc = FakeBmc(["Off", "Off"])
    res, _ = run(bmc, state="on", wait=False)
    assert res["changed"] and res["power_state"] == "Off" and bmc.resets == ["On"]


def test_module_arguments(capsys):
    with patch_module_args({"host": "x", "username": "u", "password": "p"}), pytest.raises(SystemExit):
        idrac_power.build_module()
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] and "one of the following is required: state, boot_override" in out["msg"]


def test_unreachable_bmc_fails_with_kind(capsys):
    args = {"host": "127.0.0.1:1", "username": "u", "password": "secret", "state": "on", "timeout": 2}
    with patch_module_args(args), pytest.raises(SystemExit):
        idrac_power.main()
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] and out["error_kind"] == "unreachable" and "secret" not in out["msg"]
