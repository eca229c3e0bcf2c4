"""idrac_power refuses hostile or out-of-range input with a clear message before any request is made.

Every outgoing request is observed at its only two exits: ansible's Request.open (Redfish) and the
SSH session class (racadm_ssh); both record instead of connecting.
"""

import json
from urllib.error import URLError

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.module_utils import racadm, redfish
from ansible_collections.labkit.cluster.plugins.modules import idrac_power

BASE = {"host": "idrac.lab.example", "username": "root", "password": "calvin", "state": "on"}


@pytest.fixture
def sent(monkeypatch):
    """Records every request the module tries; each attempt fails as if the BMC were unreachable."""
    calls = []

    def fake_open(self, method, url, **kwargs):
        calls.append((method, url))
        raise URLError(ConnectionRefusedError(111, "Connection refused"))

    def fake_ssh(self, host, port, username, password, *, timeout=30):
        calls.append(("SSH", f"{host}:{port}"))
        raise redfish.BmcError("unreachable", "no SSH in unit tests")

    monkeypatch.setattr(redfish.Request, "open", fake_open)
    monkeypatch.setattr(racadm.IdracSsh, "__init__", fake_ssh)
    return calls


def run_main(capsys, **overrides):
    args = {**BASE, **overrides}
    args = {k: v for k, v in args.items() if v is not None}
    with patch_module_args(args), pytest.raises(SystemExit):
        idrac_power.main()
    return json.loads(capsys.readouterr().out)


HOSTILE = [
    # ports: no wrap-around at 65536
    ({"port": 70000}, "port must be between 1 and 65535"),
    ({"port": 65536}, "port must be between 1 and 65535"),
    ({"port": 0}, "port must be between 1 and 65535"),
    ({"port": -443}, "port must be between 1 and 65535"),
    ({"host": "10.0.0.1:70000"}, "the port in host must be between 1 and 65535"),
    ({"host": "10.0.0.1:https"}, "port that is not a number"),
    ({"host": "10.0.0.1:8443", "port": 443}, "give the port once"),
    ({"transport": "racadm_ssh", "port": 70000}, "port must be between 1 and 65535"),
    # a URL where an address belongs
    ({"host": "http://10.0.0.1"}, "drop 'http://'"),
    ({"host": "https://idrac.lab.example:443"}, "drop 'https://'"),
    ({"host": "ftp://idrac"}, "not a URL"),
    # host names and literals
    ({"host": "idrac lab"}, "not a valid host name"),
    ({"host": " idrac"}, "not a valid host name"),
    ({"host": "idrac\nHost: evil"}, "control characters"),
    ({"host": "idrac/redfish"}, "host name or an IP address"),
    ({"host": "root@idrac"}, "host name or an IP address"),
    ({"host": "-idrac"}, "not a valid host name"),
    ({"host": "999.1.1.1"}, "not a valid host name or IPv4"),
    ({"host": "10.0.0"}, "not a valid host name or IPv4"),
    ({"host": "[fe80::1"}, "malformed IPv6"),
    ({"host": "[not:v6]:443"}, "invalid IPv6"),
    ({"host": "fe80::1::2"}, "not a valid IPv6"),
    ({"host": ""}, "host must not be empty"),
    # timers
    ({"poll_interval": 0}, "poll_interval must be between 0.1 and 60"),
    ({"poll_interval": -1}, "poll_interval must be between 0.1 and 60"),
    ({"poll_interval": 0.01}, "poll_interval must be between 0.1 and 60"),
    ({"poll_interval": 3600}, "poll_interval must be between 0.1 and 60"),
    ({"poll_interval": "nan"}, "poll_interval must be between 0.1 and 60"),
    ({"timeout": 0}, "timeout must be greater than 0 and at most 300"),
    ({"timeout": -5}, "timeout must be greater than 0 and at most 300"),
    ({"timeout": 10**6}, "timeout must be greater than 0 and at most 300"),
    ({"wait_timeout": 0}, "wait_timeout must be greater than 0 and at most 3600"),
    ({"wait_timeout": -1}, "wait_timeout must be greater than 0 and at most 3600"),
    ({"wait_timeout": 10**9}, "wait_timeout must be greater than 0 and at most 3600"),
    ({"shutdown_timeout": -1, "state": "shutdown"}, "shutdown_timeout must be greater than 0"),
    # system_id goes into a URL
    ({"system_id": "../../Managers/iDRAC.Embedded.1"}, "system_id must be a Redfish id"),
    ({"system_id": "System.Embedded.1/Actions"}, "system_id must be a Redfish id"),
    ({"system_id": ".."}, "system_id must be a Redfish id"),
    ({"system_id": "System..1"}, "system_id must be a Redfish id"),
    ({"system_id": "System Embedded 1"}, "system_id must be a Redfish id"),
    ({"system_id": "System.Embedded.1\r\n"}, "system_id must be a Redfish id"),
    ({"system_id": "System%2F1"}, "system_id must be a Redfish id"),
    # credentials and files
    ({"username": "root:admin"}, "username must not contain ':'"),
    ({"username": "root\n"}, "username must not contain control characters"),
    ({"ca_path": "/nonexistent/ca.pem"}, "ca_path '/nonexistent/ca.pem' is not a readable file"),
    ({"ca_path": "/tmp"}, "is not a readable file"),
    # conflicting choices
    ({"state": "query", "boot_override": "pxe"}, "cannot be combined with boot_override"),
    ({"transport": "racadm_ssh", "boot_override": "pxe", "boot_mode": "uefi"}, "boot_mode needs the redfish"),
]


@pytest.mark.parametrize(("overrides", "text"), HOSTILE, ids=[repr(o) for o, _ in HOSTILE])
def test_hostile_input_is_refused_before_any_request(capsys, sent, overrides, text):
    out = run_main(capsys, **overrides)
    assert out["failed"] and out["error_kind"] == "invalid", out
    assert text in out["msg"], out["msg"]
    assert out["changed"] is False and out["actions"] == []
    assert sent == [], "a request was made for refused input"
    assert "calvin" not in json.dumps(out)


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("idrac.lab.example", None, "https://idrac.lab.example:443/redfish/v1/"),
        ("10.0.0.1", 8443, "https://10.0.0.1:8443/redfish/v1/"),
        ("10.0.0.1:8443", 8443, "https://10.0.0.1:8443/redfish/v1/"),
        ("idrac-r640.", None, "https://idrac-r640.:443/redfish/v1/"),
        ("fe80::1", None, "https://[fe80::1]:443/redfish/v1/"),
        ("[2001:db8::5]:8443", None, "https://[2001:db8::5]:8443/redfish/v1/"),
    ],
)
def test_valid_addresses_reach_the_url_they_name(capsys, sent, host, port, url):
    out = run_main(capsys, host=host, port=port)
    assert out["error_kind"] == "unreachable"
    assert sent == [("GET", url)]


def test_racadm_uses_the_ssh_default_port(capsys, sent):
    out = run_main(capsys, transport="racadm_ssh", host="10.0.0.7")
    assert out["error_kind"] == "unreachable" and sent == [("SSH", "10.0.0.7:22")]
