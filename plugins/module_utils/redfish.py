# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small Redfish client for power and one-time boot on a BMC (iDRAC first).

Built on ansible.module_utils.urls only. Every failure is raised as a BmcError whose `kind` says
what went wrong (unreachable, tls, auth, not_found, not_allowed, http, protocol), so a module can
report it plainly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import ssl

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import Request, SSLValidationError

from ansible_collections.labkit.cluster.plugins.module_utils.bmc_inputs import DEFAULT_SYSTEM_ID

BOOT_TARGETS = {"pxe": "Pxe", "hdd": "Hdd", "bios_setup": "BiosSetup", "none": "None"}
BOOT_MODES = {"uefi": "UEFI", "legacy": "Legacy"}
RESET_TYPES = (
    "On",
    "ForceOff",
    "GracefulShutdown",
    "GracefulRestart",
    "ForceRestart",
    "PowerCycle",
    "ForceOn",
    "PushPowerButton",
    "Nmi",
)


class BmcError(Exception):
    """A BMC failure with a kind: unreachable, tls, auth, not_found, not_allowed, conflict, http, protocol,
    timeout, invalid (an option refused before anything was sent)."""

    def __init__(self, kind, msg, **details):
        super().__init__(msg)
        self.kind = kind
        self.msg = msg
        self.details = details


def _tls_reason(exc):
    """The TLS problem inside a urllib/ansible exception, or None when it is not about TLS."""
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError, SSLValidationError)):
        return str(exc)
    reason = getattr(exc, "reason", None)
    if isinstance(reason, (ssl.SSLError, ssl.CertificateError)):
        return str(reason)
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text.split(":", maxsplit=1)[0]:
        return text
    return None


def _message_ids(body):
    """The MessageId values of a Redfish error body's @Message.ExtendedInfo (iDRAC: IDRAC.2.8.PSU501)."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return []
    err = data.get("error", data) if isinstance(data, dict) else {}
    infos = err.get("@Message.ExtendedInfo", []) if isinstance(err, dict) else []
    return [str(i["MessageId"]) for i in infos or [] if isinstance(i, dict) and i.get("MessageId")]


def _error_message(body):
    """The human part of a Redfish error body (error.message + ExtendedInfo messages)."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return (body or "").strip()[:500]
    err = data.get("error", data) if isinstance(data, dict) else {}
    parts = []
    if isinstance(err, dict):
        extended = [
            str(info["Message"])
            for info in err.get("@Message.ExtendedInfo", []) or []
            if isinstance(info, dict) and info.get("Message")
        ]
        # "A general error has occurred. See ExtendedInfo ..." says nothing the extended messages do not.
        if err.get("message") and not (extended and "ExtendedInfo" in str(err["message"])):
            parts.append(str(err["message"]))
        parts.extend(m for m in dict.fromkeys(extended) if m not in parts)
    return "; ".join(parts) or (body or "").strip()[:500]


class RedfishResponse:
    def __init__(self, status, body, headers=None):
        self.status = status
        self.body = body
        self.headers = headers or {}

    def json(self):
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            raise BmcError("protocol", f"the BMC answered {self.status} with a body that is not JSON") from None


class RedfishClient:
    """Talks to one BMC over HTTPS with basic auth."""

    transport = "redfish"

    def __init__(self, base_url, username, password, *, validate_certs=True, ca_path=None, timeout=30):
        self.base_url = base_url.rstrip("/")
        self._request = Request(
            url_username=username,
            url_password=password,
            force_basic_auth=True,
            validate_certs=validate_certs,
            ca_path=ca_path,
            timeout=timeout,
            follow_redirects="all",
            headers={"Accept": "application/json", "OData-Version": "4.0"},
        )
        self.system_uri = None
        self._system = None

    # -- HTTP ---------------------------------------------------------------------------------
    def call(self, method, path, payload=None):
        """One request; returns a RedfishResponse for 2xx/4xx/5xx, raises BmcError when none came."""
        url = path if path.startswith("http") else self.base_url + path
        data = None
        headers = {}
        if payload is not None:
            data = json.dumps(payload)
            headers["Content-Type"] = "application/json"
        try:
            resp = self._request.open(method, url, data=data, headers=headers)
            return RedfishResponse(resp.getcode(), resp.read().decode("utf-8", "replace"), dict(resp.headers))
        except HTTPError as exc:
            try:
                body = exc.read().decode("utf-8", "replace")
            except Exception:  # a closed body is no reason to lose the status
                body = ""
            return RedfishResponse(exc.code, body, dict(exc.headers or {}))
        except (URLError, UrlsConnectionError, socket.error, ssl.SSLError, ssl.CertificateError) as exc:
            tls = _tls_reason(exc)
            if tls:
                raise BmcError(
                    "tls",
                    f"TLS failure talking to {self.base_url}: {tls} "
                    "(set ca_path to the BMC's CA, or validate_certs=false only if you accept the risk)",
                ) from exc
            reason = getattr(exc, "reason", exc)
            raise BmcError("unreachable", f"cannot reach the BMC at {self.base_url}: {reason}") from exc

    def get(self, path):
        resp = self.call("GET", path)
        self._check(resp, "GET", path)
        return resp.json()

    def _check(self, resp, method, path):
        if resp.status == 401:
            raise BmcError("auth", f"401 Unauthorized from {self.base_url}: check username and password", status=401)
        if resp.status == 403:
            raise BmcError("auth", f"403 Forbidden for {method} {path}: the account lacks the privilege", status=403)
        if resp.status >= 400:
            raise BmcError(
                "http",
                f"{method} {path} failed with HTTP {resp.status}: {_error_message(resp.body)}",
                status=resp.status,
            )

    # -- system -------------------------------------------------------------------------------
    def find_system(self, system_id=None):
        """Locate the ComputerSystem: the given id, or the only/first one in the collection."""
        root = self.get("/redfish/v1/")
        systems_uri = (root.get("Systems") or {}).get("@odata.id", "/redfish/v1/Systems")
        members = [m.get("@odata.id", "") for m in self.get(systems_uri).get("Members", [])]
        ids = [m.rstrip("/").rsplit("/", 1)[-1] for m in members]
        if system_id:
            if system_id not in ids:
                present = ", ".join(ids) or "none"
                raise BmcError(
                    "not_found",
                    f"system id {system_id!r} not found on {self.base_url}; systems present: {present}",
                    systems=ids,
                )
            uri = members[ids.index(system_id)]
        else:
            if not members:
                raise BmcError("not_found", f"the BMC at {self.base_url} lists no systems", systems=[])
            uri = members[ids.index(DEFAULT_SYSTEM_ID)] if DEFAULT_SYSTEM_ID in ids else members[0]
        self.system_uri = uri
        self.refresh()
        return uri.rstrip("/").rsplit("/", 1)[-1]

    def refresh(self):
        self._system = self.get(self.system_uri)
        return self._system

    def power_state(self):
        return self.refresh().get("PowerState")

    def _reset_action(self):
        action = (self._system or self.refresh()).get("Actions", {}).get("#ComputerSystem.Reset")
        if not action:
            raise BmcError("not_allowed", f"{self.system_uri} has no ComputerSystem.Reset action")
        return action

    def allowed_resets(self):
        """ResetType values the BMC allows, or None when it does not say."""
        action = self._reset_action()
        values = action.get("ResetType@Redfish.AllowableValues")
        if values is None and action.get("@Redfish.ActionInfo"):
            info = self.get(action["@Redfish.ActionInfo"])
            for param in info.get("Parameters", []):
                if param.get("Name") == "ResetType":
                    values = param.get("AllowableValues")
        return list(values) if values is not None else None

    def reset(self, reset_type):
        """POST the reset; returns 'done' when the BMC accepted it.

        A 409 Conflict is raised as BmcError('conflict') with the BMC's message and MessageIds: an
        iDRAC answers 409 both for "already powered ON" and for a busy lifecycle controller, so only
        the caller, by reading the power state back, can tell which one it was.
        """
        if reset_type not in RESET_TYPES:
            raise BmcError("not_allowed", f"unknown ResetType {reset_type}")
        target = self._reset_action().get("target", self.system_uri + "/Actions/ComputerSystem.Reset")
        resp = self.call("POST", target, {"ResetType": reset_type})
        if resp.status == 409:
            message = _error_message(resp.body) or "no message"
            ids = _message_ids(resp.body)
            raise BmcError(
                "conflict",
                f"the BMC answered 409 Conflict to ResetType {reset_type}: {message}"
                + (f" (MessageId {', '.join(ids)})" if ids else ""),
                status=409,
                bmc_message=message,
                message_ids=ids,
            )
        if resp.status == 501 or (resp.status == 400 and ("ResetType" in resp.body or "NotSupported" in resp.body)):
            raise BmcError(
                "not_allowed",
                f"the BMC refused ResetType {reset_type} (HTTP {resp.status}): {_error_message(resp.body)}",
                status=resp.status,
            )
        self._check(resp, "POST", target)
        return "done"

    # -- boot override ------------------------------------------------------------------------
    def boot_override(self):
        boot = (self._system or self.refresh()).get("Boot", {})
        return {
            "target": boot.get("BootSourceOverrideTarget"),
            "enabled": boot.get("BootSourceOverrideEnabled"),
            "mode": boot.get("BootSourceOverrideMode"),
            "allowed_targets": boot.get("BootSourceOverrideTarget@Redfish.AllowableValues"),
        }

    def set_boot_override(self, target, mode=None):
        """PATCH a one-time override of the boot source (target 'None' disables it)."""
        boot = {"BootSourceOverrideTarget": target}
        boot["BootSourceOverrideEnabled"] = "Disabled" if target == "None" else "Once"
        if mode:
            boot["BootSourceOverrideMode"] = mode
        resp = self.call("PATCH", self.system_uri, {"Boot": boot})
        self._check(resp, "PATCH", self.system_uri)
        self.refresh()
