#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: idrac_power
short_description: Declarative power state and one-time boot override of a server through its BMC
version_added: 0.1.0
description:
  - Brings a server managed by a Dell iDRAC (or any Redfish BMC) to a power state and waits until the BMC
    really reports that state, because BMCs apply power changes seconds after they accept the request.
  - C(on), C(off) and C(shutdown) are declarative and idempotent; C(restarted) and C(power_cycled) always act.
    C(query) only reads the power state and boot override.
  - A 409 Conflict answer is not trusted on its own, because an iDRAC sends it both for "already powered ON"
    and when its lifecycle controller is busy. The module reads the power state back. If the system is in the
    asked state, that is C(changed=false); otherwise it repeats the request every O(poll_interval) seconds
    for up to O(wait_timeout) seconds and then fails with the BMC's own message and MessageIds.
  - Every input is validated before the first request (host, ports, timeouts, system id); a refused value
    fails with C(error_kind=invalid) and nothing is sent.
  - When the BMC does not allow C(PowerCycle) the module sends C(ForceOff) then C(On); when it does not
    allow C(GracefulRestart) it sends C(GracefulShutdown) then C(On). The allowed values come from the
    BMC's C(ResetType@Redfish.AllowableValues) (or its ActionInfo), and a 501 answer triggers the same fallback.
  - Can set a one-time boot override (PXE, disk or BIOS setup, UEFI or legacy) before the power action;
    the BMC clears it after the next boot.
  - Runs on the controller (or any host that reaches the BMC); it needs nothing beyond ansible-core for
    Redfish. The C(racadm_ssh) transport logs into the iDRAC over SSH as NRK's C(run.py) does and needs
    the Python library paramiko on the host that runs the module.
author:
  - labkit developers (@labkit)
attributes:
  check_mode:
    support: full
    description: Reads the current state and reports what would change without sending any action.
  diff_mode:
    support: full
    description: Returns the power state and boot override before and after.
extends_documentation_fragment:
  - labkit.cluster.idrac
options:
  transport:
    description:
      - C(redfish) talks Redfish over HTTPS.
      - C(racadm_ssh) logs into the iDRAC over SSH and types C(racadm serveraction ...), for iDRACs without
        Redfish. It needs paramiko; it supports C(boot_override) but not C(boot_mode).
    type: str
    choices: [redfish, racadm_ssh]
    default: redfish
  username:
    description: BMC user name (no control characters; no C(:) with C(redfish), basic auth cannot carry it).
    type: str
    required: true
  password:
    description: BMC password.
    type: str
    required: true
  validate_certs:
    description:
      - Verify the BMC's TLS certificate. Set to C(false) only on a lab network where you accept the risk.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA that signed the BMC certificate (iDRACs usually have a site or self-signed CA).
      - Must be a readable file.
    type: path
  timeout:
    description: Seconds to wait for one answer from the BMC, more than 0 and at most 300.
    type: int
    default: 30
  system_id:
    description:
      - Id of the ComputerSystem. When omitted, C(System.Embedded.1) if the BMC has it, else its first system.
      - It becomes part of a URL, so it may hold only letters, digits, C(.), C(_), C(:) and C(-) (no C(/),
        no C(..)).
    type: str
  state:
    description:
      - C(on) powers the system on; C(off) forces it off at once.
      - C(shutdown) asks the OS to shut down and waits up to O(shutdown_timeout); with O(force_fallback) it
        then forces the power off.
      - C(restarted) restarts gracefully (always acts; powers on a system that is off).
      - C(power_cycled) cuts and restores power (always acts; powers on a system that is off).
      - C(query) reads the power state and the boot override and acts on nothing (O(boot_override) cannot
        be combined with it).
      - Omit it to only set O(boot_override).
    type: str
    choices: ['on', 'off', shutdown, restarted, power_cycled, query]
  boot_override:
    description:
      - One-time boot source for the next boot. C(none) removes a pending override.
      - Idempotent on its own; combine it with O(state=power_cycled) to boot from it now.
    type: str
    choices: [pxe, hdd, bios_setup, none]
  boot_mode:
    description:
      - Firmware mode of the overridden boot (Redfish C(BootSourceOverrideMode)). Left as it is when omitted.
    type: str
    choices: [uefi, legacy]
  wait:
    description: Wait until the BMC reports the target power state.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the final power state (for each step of a sequence), and how long a request
        the BMC answers with 409 Conflict is repeated. More than 0 and at most 3600.
    type: float
    default: 300
  shutdown_timeout:
    description:
      - Seconds a graceful shutdown may take before O(force_fallback) applies or the module fails.
        More than 0 and at most 3600.
    type: float
    default: 120
  force_fallback:
    description: Force the power off when a graceful shutdown did not finish within O(shutdown_timeout).
    type: bool
    default: false
  poll_interval:
    description: Seconds between two reads of the power state while waiting, from 0.1 to 60.
    type: float
    default: 2.0
notes:
  - The password is never logged. Use Ansible Vault or a lookup for it.
  - A BMC answers the power request long before the power changes; O(wait=false) returns the state read
    right after the request, which is usually still the old one.
  - A failure after the BMC accepted a power request or a boot override reports C(changed=true).
seealso:
  - module: labkit.cluster.bmc_console
"""

EXAMPLES = r"""
- name: Boot the machine once from the network, now
  labkit.cluster.idrac_power:
    host: "{{ idrac_host }}"
    username: "{{ idrac_user }}"
    password: "{{ idrac_password }}"
    ca_path: /etc/labkit/idrac-ca.pem
    boot_override: pxe
    boot_mode: uefi
    state: power_cycled
  delegate_to: localhost

- name: Shut down gracefully, force it after two minutes
  labkit.cluster.idrac_power:
    host: idrac-r640.lab.example
    username: root
    password: "{{ vault_idrac_password }}"
    state: shutdown
    shutdown_timeout: 120
    force_fallback: true
  delegate_to: localhost

- name: An old iDRAC without Redfish, as NRK's run.py does it
  labkit.cluster.idrac_power:
    host: idrac-old.lab.example
    transport: racadm_ssh
    username: root
    password: "{{ vault_idrac_password }}"
    state: power_cycled
  delegate_to: localhost

- name: Read the power state without acting (check mode works too)
  labkit.cluster.idrac_power:
    host: "{{ idrac_host }}"
    username: "{{ idrac_user }}"
    password: "{{ idrac_password }}"
    state: query
  delegate_to: localhost
  register: bmc

- name: Show it
  ansible.builtin.debug:
    msg: "{{ bmc.power_state }}, next boot from {{ bmc.boot_override.target }}"
"""

RETURN = r"""
previous_state:
  description: Power state the BMC reported before the module acted.
  returned: always
  type: str
  sample: "Off"
power_state:
  description: Power state the BMC reported at the end (predicted in check mode).
  returned: always
  type: str
  sample: "On"
elapsed:
  description: Seconds the module took, waiting included.
  returned: always
  type: float
  sample: 7.41
system_id:
  description: Id of the system that was acted on.
  returned: always
  type: str
  sample: System.Embedded.1
transport:
  description: Transport used.
  returned: always
  type: str
  sample: redfish
actions:
  description:
    - Reset requests sent, in order, with the BMC's answer (C(done), or C(already) for a 409 Conflict after
      which the system was found in the asked state; then C(message) holds the BMC's message).
  returned: always
  type: list
  elements: dict
  sample: [{"reset_type": "ForceOff", "answer": "done"}, {"reset_type": "On", "answer": "done"}]
fallback:
  description: Why a fallback sequence replaced the asked action, or null when none was needed.
  returned: always
  type: str
  sample: PowerCycle not allowed (allowed On, ForceOff, GracefulShutdown); used ForceOff + On
allowed_resets:
  description: ResetType values the BMC allows, or null when it does not say.
  returned: always
  type: list
  elements: str
  sample: ["On", "ForceOff", "GracefulShutdown", "ForceRestart"]
boot_override:
  description: One-time boot override as the BMC reports it at the end.
  returned: always
  type: dict
  contains:
    target:
      description: BootSourceOverrideTarget.
      type: str
      sample: Pxe
    enabled:
      description: BootSourceOverrideEnabled (C(Once), C(Continuous), C(Disabled)).
      type: str
      sample: Once
    mode:
      description: BootSourceOverrideMode.
      type: str
      sample: UEFI
last_state:
  description: Last power state seen when waiting timed out or a 409 Conflict never cleared.
  returned: failure
  type: str
  sample: "On"
error_kind:
  description:
    - What failed (invalid, unreachable, tls, auth, not_found, not_allowed, conflict, timeout, http, protocol,
      dependency). C(invalid) means an option was refused and nothing was sent.
  returned: failure
  type: str
  sample: auth
bmc_message:
  description: The BMC's own message for a 409 Conflict that never cleared (Redfish C(@Message.ExtendedInfo)).
  returned: failure
  type: str
  sample: "Unable to perform the operation because the Lifecycle Controller is busy."
message_ids:
  description: MessageId values of that answer.
  returned: failure
  type: list
  elements: str
  sample: ["IDRAC.2.8.LC068"]
"""

import os
import time
from collections import namedtuple

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labkit.cluster.plugins.module_utils import bmc_inputs as inputs
from ansible_collections.labkit.cluster.plugins.module_utils.bmc_inputs import InvalidInput
from ansible_collections.labkit.cluster.plugins.module_utils.racadm import RacadmClient
from ansible_collections.labkit.cluster.plugins.module_utils.redfish import (
    BOOT_MODES,
    BOOT_TARGETS,
    BmcError,
    RedfishClient,
)

ON = "On"
OFF = "Off"
TARGET_STATE = {"on": ON, "off": OFF, "shutdown": OFF, "restarted": ON, "power_cycled": ON}
# Resets that set a state (not restarts): a conflict on them is harmless when that state holds.
STATE_OF_RESET = {"On": ON, "ForceOn": ON, "ForceOff": OFF, "GracefulShutdown": OFF}


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True, aliases=["baseuri"]),
            port=dict(type="int"),
            transport=dict(type="str", default="redfish", choices=["redfish", "racadm_ssh"]),
            username=dict(type="str", required=True),
            password=dict(type="str", required=True, no_log=True),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            timeout=dict(type="int", default=30),
            system_id=dict(type="str"),
            state=dict(type="str", choices=["on", "off", "shutdown", "restarted", "power_cycled", "query"]),
            boot_override=dict(type="str", choices=["pxe", "hdd", "bios_setup", "none"]),
            boot_mode=dict(type="str", choices=["uefi", "legacy"]),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="float", default=300),
            shutdown_timeout=dict(type="float", default=120),
            force_fallback=dict(type="bool", default=False),
            poll_interval=dict(type="float", default=2.0),
        ),
        required_one_of=[("state", "boot_override")],
        required_by={"boot_mode": "boot_override"},
        supports_check_mode=True,
    )


def validate(params):
    """Check every option before anything is sent; returns the BMC (address, port). Raises InvalidInput."""
    redfish = params["transport"] == "redfish"
    default_port = inputs.DEFAULT_REDFISH_PORT if redfish else inputs.DEFAULT_SSH_PORT
    address, port = inputs.parse_host(params["host"], params["port"])
    inputs.check_text("username", params["username"])
    if redfish and ":" in params["username"]:
        raise InvalidInput("username must not contain ':' (HTTP basic auth cannot carry it)")
    inputs.check_range("timeout", params["timeout"], 0, inputs.HTTP_TIMEOUT_MAX)
    inputs.check_range("wait_timeout", params["wait_timeout"], 0, inputs.WAIT_TIMEOUT_MAX)
    inputs.check_range("shutdown_timeout", params["shutdown_timeout"], 0, inputs.WAIT_TIMEOUT_MAX)
    inputs.check_poll_interval(params["poll_interval"])
    inputs.check_system_id(params["system_id"])
    ca_path = params["ca_path"]
    if ca_path is not None and not (os.path.isfile(ca_path) and os.access(ca_path, os.R_OK)):
        raise InvalidInput(f"ca_path {ca_path!r} is not a readable file")
    if params["state"] == "query" and params["boot_override"] is not None:
        raise InvalidInput("state=query only reads; it cannot be combined with boot_override")
    if not redfish and params["boot_mode"]:
        raise InvalidInput("boot_mode needs the redfish transport; racadm_ssh cannot set it")
    return address, port or default_port


def make_client(params, address, port):
    if params["transport"] == "racadm_ssh":
        return RacadmClient(address, port, params["username"], params["password"], timeout=params["timeout"])
    return RedfishClient(
        f"https://{inputs.netloc(address, port)}",
        params["username"],
        params["password"],
        validate_certs=params["validate_certs"],
        ca_path=params["ca_path"],
        timeout=params["timeout"],
    )


class Step(namedtuple("Step", ["reset_type", "expect"])):
    """One reset request and the power state it should lead to."""

    __slots__ = ()


def _allows(allowed, reset_type):
    return allowed is None or reset_type in allowed


def _fallback_for(reset_type, allowed):
    """Steps that replace an unsupported PowerCycle/GracefulRestart, or None."""
    if reset_type == "PowerCycle" and _allows(allowed, "ForceOff") and _allows(allowed, "On"):
        return [Step("ForceOff", OFF), Step("On", ON)]
    if reset_type == "GracefulRestart" and _allows(allowed, "GracefulShutdown") and _allows(allowed, "On"):
        return [Step("GracefulShutdown", OFF), Step("On", ON)]
    if reset_type in ("PowerCycle", "GracefulRestart") and _allows(allowed, "ForceRestart"):
        return [Step("ForceRestart", ON)]
    return None


def plan(state, current, allowed):
    """Steps that bring a system in power state `current` to `state`, and why a fallback was used.

    Pure logic (no I/O) so unit tests can cover every branch. Raises BmcError('not_allowed').
    """
    if state in (None, "query"):
        return [], None
    if state == "on":
        steps = [] if current in (ON, "PoweringOn") else [Step("On", ON)]
    elif state == "off":
        steps = [] if current in (OFF, "PoweringOff") else [Step("ForceOff", OFF)]
    elif state == "shutdown":
        steps = [] if current in (OFF, "PoweringOff") else [Step("GracefulShutdown", OFF)]
    elif current in (OFF, "PoweringOff"):
        # Restarting or cycling a machine that is off means booting it.
        steps = [Step("On", ON)]
    else:
        steps = [Step("GracefulRestart" if state == "restarted" else "PowerCycle", ON)]

    fallback = None
    if len(steps) == 1 and not _allows(allowed, steps[0].reset_type):
        wanted = steps[0].reset_type
        replacement = _fallback_for(wanted, allowed)
        if replacement is None:
            raise BmcError(
                "not_allowed",
                f"the BMC does not allow ResetType {wanted}; allowed values: {', '.join(allowed) or 'none'}",
                allowed_resets=allowed,
            )
        fallback = f"{wanted} not allowed (allowed {', '.join(allowed)}); used " + " + ".join(
            s.reset_type for s in replacement
        )
        steps = replacement
    return steps, fallback


class IdracPower:
    def __init__(self, module, client, clock=time.monotonic, sleep=time.sleep):
        self.module = module
        self.params = module.params
        self.client = client
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self.actions = []
        self.fallback = None
        self.last_state = None
        self.changed = False  # True once the BMC accepted a request that changes something

    # -- waiting ------------------------------------------------------------------------------
    def wait_for(self, target, timeout):
        """Poll until the power state is `target`; returns True, or False when `timeout` ran out."""
        deadline = self.clock() + timeout
        while True:
            self.last_state = self.client.power_state()
            if self.last_state == target:
                return True
            if self.clock() >= deadline:
                return False
            self.sleep(max(0.0, min(self.params["poll_interval"], deadline - self.clock())))

    def timeout_error(self, target, timeout, what):
        raise BmcError(
            "timeout",
            f"{what}: the system did not reach {target} within {timeout} s; last seen state {self.last_state}",
            last_state=self.last_state,
        )

    # -- acting -------------------------------------------------------------------------------
    def send(self, reset_type):
        """POST one reset; returns 'done', or 'already' for a conflict while the asked state holds.

        Any other conflict (a busy lifecycle controller, a job running) is retried every poll_interval
        for up to wait_timeout, then raised with the BMC's own message.
        """
        deadline = None
        while True:
            try:
                answer = self.client.reset(reset_type)
            except BmcError as exc:
                if exc.kind != "conflict":
                    raise
                conflict = exc
            else:
                self.actions.append({"reset_type": reset_type, "answer": answer})
                self.changed = True
                return answer
            self.last_state = self.client.power_state()
            if STATE_OF_RESET.get(reset_type) == self.last_state:
                message = conflict.details.get("bmc_message")
                self.actions.append({"reset_type": reset_type, "answer": "already", "message": message})
                return "already"
            now = self.clock()
            deadline = now + self.params["wait_timeout"] if deadline is None else deadline
            if now >= deadline:
                details = {k: v for k, v in conflict.details.items() if k != "last_state"}
                raise BmcError(
                    "conflict",
                    f"{conflict.msg}; still refused after {self.params['wait_timeout']} s "
                    f"(power state {self.last_state})",
                    last_state=self.last_state,
                    **details,
                )
            self.sleep(max(0.0, min(self.params["poll_interval"], deadline - now)))

    def run_step(self, step, allowed):
        try:
            answer = self.send(step.reset_type)
        except BmcError as exc:
            replacement = _fallback_for(step.reset_type, allowed) if exc.kind == "not_allowed" else None
            if replacement is None:
                raise
            self.fallback = f"{step.reset_type} refused ({exc.msg}); used " + " + ".join(
                s.reset_type for s in replacement
            )
            for sub in replacement:
                self.run_step(sub, allowed)
            return
        if not self.params["wait"]:
            return
        if step.reset_type == "GracefulShutdown":
            if self.wait_for(OFF, self.params["shutdown_timeout"]):
                return
            if not self.params["force_fallback"]:
                self.timeout_error(OFF, self.params["shutdown_timeout"], "graceful shutdown")
            self.fallback = f"graceful shutdown did not finish in {self.params['shutdown_timeout']} s; forced off"
            self.send("ForceOff")
        what = f"after {step.reset_type}" + (" (answered 409 already in state)" if answer == "already" else "")
        if not self.wait_for(step.expect, self.params["wait_timeout"]):
            self.timeout_error(step.expect, self.params["wait_timeout"], what)

    # -- boot override ------------------------------------------------------------------------
    def boot_change_needed(self, current):
        want = self.params["boot_override"]
        if want is None:
            return False
        target = BOOT_TARGETS[want]
        if want == "none":
            return current.get("target") not in (None, "None") and current.get("enabled") != "Disabled"
        mode = BOOT_MODES.get(self.params["boot_mode"])
        return (
            current.get("target") != target
            or current.get("enabled") not in ("Once", "Continuous")
            or (mode is not None and current.get("mode") != mode)
        )

    def check_boot_allowed(self, current):
        target = BOOT_TARGETS[self.params["boot_override"]]
        allowed = current.get("allowed_targets")
        if allowed and target != "None" and target not in allowed:
            raise BmcError(
                "not_allowed",
                f"the BMC does not allow boot override target {target}; allowed values: {', '.join(allowed)}",
                allowed_targets=allowed,
            )

    # -- main ---------------------------------------------------------------------------------
    def run(self):
        check = self.module.check_mode
        system_id = self.client.find_system(self.params["system_id"])
        previous = self.client.power_state()
        boot_before = self.client.boot_override()
        allowed = self.client.allowed_resets()
        steps, self.fallback = plan(self.params["state"], previous, allowed)

        boot_changed = self.boot_change_needed(boot_before)
        if boot_changed:
            self.check_boot_allowed(boot_before)
            if not check:
                self.client.set_boot_override(
                    BOOT_TARGETS[self.params["boot_override"]], BOOT_MODES.get(self.params["boot_mode"])
                )
                self.changed = True
                stored = self.client.boot_override()
                if self.params["boot_override"] != "none" and stored.get("enabled") == "Continuous":
                    self.module.warn(
                        "the BMC stored the boot override as Continuous, not Once: it stays until "
                        "boot_override=none clears it"
                    )

        if check:
            final = TARGET_STATE[self.params["state"]] if steps else previous
        else:
            for step in steps:
                self.run_step(step, allowed)
            if steps and not self.params["wait"]:
                self.last_state = self.client.power_state()
            final = self.last_state if steps else previous

        power_changed = any(a["answer"] == "done" for a in self.actions) or (check and bool(steps))
        boot_after = self.client.boot_override() if not check else self.predicted_boot(boot_before, boot_changed)
        boot_after = {k: boot_after.get(k) for k in ("target", "enabled", "mode")}
        result = dict(
            changed=power_changed or boot_changed,
            previous_state=previous,
            power_state=final,
            elapsed=round(self.clock() - self.started, 2),
            system_id=system_id,
            transport=self.client.transport,
            actions=self.actions if not check else [{"reset_type": s.reset_type, "answer": "planned"} for s in steps],
            fallback=self.fallback,
            allowed_resets=allowed,
            boot_override=boot_after,
            diff=dict(
                before=dict(power_state=previous, boot_override={k: boot_before.get(k) for k in boot_after}),
                after=dict(power_state=final, boot_override=boot_after),
            ),
        )
        return result

    def predicted_boot(self, before, changed):
        if not changed:
            return before
        want = self.params["boot_override"]
        return {
            "target": BOOT_TARGETS[want],
            "enabled": "Disabled" if want == "none" else "Once",
            "mode": BOOT_MODES.get(self.params["boot_mode"]) or before.get("mode"),
        }


def main():
    module = build_module()
    started = time.monotonic()
    try:
        address, port = validate(module.params)
    except InvalidInput as exc:
        module.fail_json(msg=str(exc), error_kind="invalid", changed=False, actions=[])
    power = None
    try:
        client = make_client(module.params, address, port)
        power = IdracPower(module, client, clock=time.monotonic)
        power.started = started
        result = power.run()
    except BmcError as exc:
        extra = {k: v for k, v in exc.details.items() if k not in ("msg", "changed", "failed")}
        module.fail_json(
            msg=exc.msg,
            error_kind=exc.kind,
            changed=bool(power and power.changed),
            elapsed=round(time.monotonic() - started, 2),
            actions=power.actions if power else [],
            **extra,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
