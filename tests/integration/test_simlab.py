"""The sim lab is real: Debian kernels that load modules, a network between guests, real BMCs."""

import base64
import itertools
import json
import ssl
import urllib.error
import urllib.request

import pytest

pytestmark = [pytest.mark.lab]


def test_guests_run_the_image_kernel(lab):
    for name in lab.guests:
        assert lab.ssh(name, "uname -r").stdout.strip() == lab.kernel_release


def test_guest_loads_a_kernel_module(lab):
    host = "sim-build"
    lab.ssh(host, "modprobe -r dummy || true")
    try:
        lab.ssh(host, "modprobe dummy")
        modules = lab.ssh(host, "cat /proc/modules").stdout
        assert any(line.split()[0] == "dummy" for line in modules.splitlines())
    finally:
        lab.ssh(host, "modprobe -r dummy", check=False)


def test_guest_builds_against_its_own_headers(lab):
    release = lab.ssh("sim-build", "test -f /lib/modules/$(uname -r)/build/Makefile && uname -r").stdout.strip()
    assert release == lab.kernel_release
    assert lab.ssh("sim-build", "gcc --version && make --version", check=False).returncode == 0


def test_guests_reach_each_other_on_the_lab_network(lab):
    for a, b in itertools.permutations(sorted(lab.guests), 2):
        target = lab.guests[b].lab_address
        proc = lab.ssh(a, f"ping -c 2 -W 3 {target}", check=False)
        assert proc.returncode == 0, f"{a} cannot ping {b} ({target}):\n{proc.stdout}{proc.stderr}"


def test_guests_have_their_inventory_identity(lab):
    for name, spec in lab.guests.items():
        out = lab.ssh(name, "hostname; ip -o -4 addr show dev eth1; cat /sys/class/net/eth1/address").stdout
        hostname, addr_line, mac = out.strip().splitlines()
        assert hostname == name
        assert f" {spec.lab_address}/{spec.lab_prefix} " in addr_line
        assert mac == spec.mac


def _get(bmc, path, password=None, cafile=None):
    context = ssl.create_default_context(cafile=cafile)
    token = base64.b64encode(f"{bmc.username}:{password or bmc.password}".encode()).decode()
    request = urllib.request.Request(bmc.url + path, headers={"Authorization": f"Basic {token}"})
    return urllib.request.urlopen(request, context=context, timeout=10)


def test_redfish_answers_authenticated_get_over_verified_tls(lab):
    from simlab import bmc as simlab_bmc

    ca, _, _ = simlab_bmc.ensure_tls()
    for spec in lab.bmcs.values():
        with _get(spec, f"/redfish/v1/Systems/{spec.system_id}", cafile=str(ca)) as answer:
            system = json.load(answer)
        assert answer.status == 200
        assert system["Id"] == spec.system_id
        assert system["PowerState"] in ("On", "Off")


def test_redfish_refuses_a_wrong_password(lab):
    from simlab import bmc as simlab_bmc

    ca, _, _ = simlab_bmc.ensure_tls()
    spec = next(iter(lab.bmcs.values()))
    with pytest.raises(urllib.error.HTTPError) as error:
        _get(spec, "/redfish/v1/Systems", password="not-the-password", cafile=str(ca))
    assert error.value.code == 401


def test_redfish_certificate_is_not_trusted_without_the_lab_ca(lab):
    spec = next(iter(lab.bmcs.values()))
    with pytest.raises(urllib.error.URLError) as error:
        _get(spec, "/redfish/v1/")
    assert isinstance(error.value.reason, ssl.SSLCertVerificationError)


def test_status_lists_every_host_running(lab):
    rows = {row["host"]: row for row in lab.status()}
    assert set(rows) == set(lab.guests) | set(lab.bmcs)
    assert all(row["state"] == "running" for row in rows.values())


def test_up_again_starts_nothing(lab):
    assert lab.up() == {}


def test_copy_to_puts_a_file_on_a_guest(lab, tmp_path):
    local = tmp_path / "payload.txt"
    local.write_text("labkit copy_to\n")
    lab.copy_to("sim-build", local, "/tmp/labkit-payload.txt")
    try:
        assert lab.ssh("sim-build", "cat /tmp/labkit-payload.txt").stdout == "labkit copy_to\n"
    finally:
        lab.ssh("sim-build", "rm -f /tmp/labkit-payload.txt", check=False)
