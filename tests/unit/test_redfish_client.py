"""The Redfish client's error classification and parsing, with Request.open mocked (the behaviour
against a real BMC is covered by tests/integration/test_idrac_power.py)."""

import io
import json
import ssl
from urllib.error import HTTPError, URLError

import pytest
from ansible_collections.labkit.cluster.plugins.module_utils import redfish
from ansible_collections.labkit.cluster.plugins.module_utils.redfish import BmcError, RedfishClient

SYSTEM = {
    "PowerState": "On",
    "Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"},
    "Actions": {"#ComputerSystem.Reset": {"target": "/redfish/v1/Systems/S1/Actions/ComputerSystem.Reset"}},
}


class Resp:
    def __init__(self, status, body):
        self.status, self.body, self.headers = status, body, {}

    def getcode(self):
        return self.status

    def read(self):
        return json.dumps(self.body).encode() if self.body is not None else b""


def _http_error(code, body):
    return HTTPError("https://bmc/x", code, "err", {}, io.BytesIO(json.dumps(body).encode()))


@pytest.fixture
def bmc(monkeypatch):
    """Routes (method, path) to a response or an exception."""
    routes = {
        ("GET", "/redfish/v1/"): Resp(200, {"Systems": {"@odata.id": "/redfish/v1/Systems"}}),
        ("GET", "/redfish/v1/Systems"): Resp(200, {"Members": [{"@odata.id": "/redfish/v1/Systems/S1"}]}),
        ("GET", "/redfish/v1/Systems/S1"): Resp(200, SYSTEM),
    }
    calls = []

    def fake_open(self, method, url, data=None, headers=None):
        path = url.split("https://bmc", 1)[1]
        calls.append((method, path, data))
        answer = routes[(method, path)]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(redfish.Request, "open", fake_open)
    return routes, calls


def client():
    return RedfishClient("https://bmc", "root", "pw")


@pytest.mark.parametrize(
    ("exc", "kind", "text"),
    [
        (URLError(ConnectionRefusedError(111, "Connection refused")), "unreachable", "cannot reach the BMC"),
        (URLError(ssl.SSLCertVerificationError("CERTIFICATE_VERIFY_FAILED")), "tls", "TLS failure"),
        (ssl.SSLError("WRONG_VERSION_NUMBER"), "tls", "TLS failure"),
        (redfish.SSLValidationError("Failed to validate the SSL certificate"), "tls", "ca_path"),
        (_http_error(401, {"error": {"message": "Unauthorized"}}), "auth", "401 Unauthorized"),
        (_http_error(500, {"error": {"message": "boom"}}), "http", "HTTP 500: boom"),
    ],
)
def test_errors_are_classified(bmc, exc, kind, text):
    routes, _ = bmc
    routes[("GET", "/redfish/v1/")] = exc
    with pytest.raises(BmcError) as err:
        client().find_system()
    assert err.value.kind == kind and text in err.value.msg


def test_unknown_system_lists_the_present_ones(bmc):
    with pytest.raises(BmcError) as err:
        client().find_system("System.Embedded.9")
    assert err.value.kind == "not_found" and err.value.details["systems"] == ["S1"] and "S1" in err.value.msg


def test_allowed_values_from_action_info(bmc):
    routes, _ = bmc
    system = json.loads(json.dumps(SYSTEM))
    system["Actions"]["#ComputerSystem.Reset"]["@Redfish.ActionInfo"] = "/redfish/v1/Systems/S1/ResetActionInfo"
    routes[("GET", "/redfish/v1/Systems/S1")] = Resp(200, system)
    routes[("GET", "/redfish/v1/Systems/S1/ResetActionInfo")] = Resp(
        200, {"Parameters": [{"Name": "ResetType", "AllowableValues": ["On", "ForceOff"]}]}
    )
    c = client()
    c.find_system()
    assert c.allowed_resets() == ["On", "ForceOff"]


def test_allowed_values_unknown_is_none(bmc):
    c = client()
    c.find_system()
    assert c.allowed_resets() is None


def test_reset_accepted(bmc):
    routes, calls = bmc
    routes[("POST", "/redfish/v1/Systems/S1/Actions/ComputerSystem.Reset")] = Resp(204, None)
    c = client()
    c.find_system()
    assert c.reset("On") == "done"
    assert json.loads(calls[-1][2]) == {"ResetType": "On"}


def test_reset_409_is_a_conflict_with_the_bmc_message(bmc):
    """409 is not read as "already in state" here: the caller checks the power state."""
    routes, _ = bmc
    body = {
        "error": {
            "@Message.ExtendedInfo": [
                {"Message": "Server is already powered ON.", "MessageId": "IDRAC.2.8.PSU501", "Severity": "Warning"}
            ]
        }
    }
    routes[("POST", "/redfish/v1/Systems/S1/Actions/ComputerSystem.Reset")] = _http_error(409, body)
    c = client()
    c.find_system()
    with pytest.raises(BmcError) as err:
        c.reset("On")
    assert err.value.kind == "conflict" and err.value.details["status"] == 409
    assert err.value.details["bmc_message"] == "Server is already powered ON."
    assert err.value.details["message_ids"] == ["IDRAC.2.8.PSU501"]
    assert "IDRAC.2.8.PSU501" in err.value.msg


@pytest.mark.parametrize("code", [400, 501])
def test_reset_refused_is_not_allowed(bmc, code):
    routes, _ = bmc
    body = {"error": {"message": "Power state PowerCycle is not supported", "ResetType": 1}}
    routes[("POST", "/redfish/v1/Systems/S1/Actions/ComputerSystem.Reset")] = _http_error(code, body)
    c = client()
    c.find_system()
    with pytest.raises(BmcError) as err:
        c.reset("PowerCycle")
    assert err.value.kind == "not_allowed" and "PowerCycle is not supported" in err.value.msg


def test_boot_override_patch(bmc):
    routes, calls = bmc
    routes[("PATCH", "/redfish/v1/Systems/S1")] = Resp(204, None)
    c = client()
    c.find_system()
    c.set_boot_override("Pxe", "UEFI")
    assert json.loads(calls[-2][2]) == {
        "Boot": {
            "BootSourceOverrideTarget": "Pxe",
            "BootSourceOverrideEnabled": "Once",
            "BootSourceOverrideMode": "UEFI",
        }
    }
    assert c.boot_override()["enabled"] == "Once"


def test_error_message_reads_extended_info():
    body = json.dumps({"error": {"message": "A", "@Message.ExtendedInfo": [{"Message": "B"}, {"Message": "A"}]}})
    assert redfish._error_message(body) == "A; B"
    assert redfish._error_message("plain text") == "plain text"
    generic = {"message": "A general error has occurred. See ExtendedInfo for more information"}
    body = json.dumps({"error": {**generic, "@Message.ExtendedInfo": [{"Message": "LC busy", "MessageId": "X.1"}]}})
    assert redfish._error_message(body) == "LC busy" and redfish._message_ids(body) == ["X.1"]
