"""What labkit.cluster.lab_base leaves on a host, read over podman exec (testinfra's podman backend)."""

import json
import re
from pathlib import Path

import yaml

testinfra_hosts = ["podman://lab-base-bookworm"]
REPO = Path(__file__).resolve().parents[3]

BEGIN = "# BEGIN labkit.cluster lab_base: lab hosts"
END = "# END labkit.cluster lab_base: lab hosts"


def _lab_block(host) -> list[list[str]]:
    text = host.file("/etc/hosts").content_string
    assert text.count(BEGIN) == 1, text
    assert text.count(END) == 1, text
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    return [line.split() for line in block.strip().splitlines()]


def test_hosts_block_lists_lab_hosts_with_an_address(host):
    assert _lab_block(host) == [
        ["10.77.0.21", "dcpim-1.lab.example", "dcpim-1"],
        ["10.77.0.2", "lab-base-bookworm"],
        ["10.77.0.11", "rpi-1"],
        ["10.77.0.12", "rpi-2"],
    ]


def test_hosts_block_keeps_other_entries(host):
    hosts = host.file("/etc/hosts").content_string
    assert "192.0.2.99 user-entry" in hosts
    assert re.search(r"^127\.0\.0\.1\s+localhost", hosts, re.M)


def test_lab_names_resolve(host):
    assert host.addr("rpi-2").ipv4_addresses == ["10.77.0.12"]
    assert host.addr("dcpim-1").ipv4_addresses == ["10.77.0.21"]


def test_hostname_left_to_the_container_runtime(host):
    assert host.check_output("hostname") == "runtime-owned"


def test_local_fact(host):
    fact = host.file("/etc/ansible/facts.d/labkit.fact")
    assert fact.is_file
    assert fact.user == "root"
    assert fact.mode == 0o644
    data = json.loads(fact.content_string)
    assert set(data) == {"collection", "collection_version", "first_provisioned", "kernel_release"}
    assert data["collection"] == "labkit.cluster"
    assert data["kernel_release"] == host.check_output("uname -r")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["first_provisioned"])


def test_local_fact_version_is_the_collection_version(host):
    # The scenario runs from the checkout, so the role reads galaxy.yml two levels above it.
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    data = json.loads(host.file("/etc/ansible/facts.d/labkit.fact").content_string)
    assert data["collection_version"] == galaxy["version"]


def test_base_packages_present(host):
    assert host.package("procps").is_installed
    assert host.package("iproute2").is_installed


def test_systemd_is_pid_1(host):
    assert host.check_output("cat /proc/1/comm") == "systemd"
