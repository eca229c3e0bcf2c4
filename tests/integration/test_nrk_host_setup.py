"""nrk_baremetal's host_setup entry point in a podman container with systemd (its own network
namespace, so the tap interface and dhcpd never touch this machine's network): packages from the
Debian mirror, tap0 172.31.0.20/24 from a systemd unit, isc-dhcp-server bound to it, the user in
kvm; a second run changes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from playbook_runner import run_playbook

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("LABKIT_MOLECULE_IMAGE", "localhost/labkit-debian:bookworm")
ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "tests" / "podman" / "containers.conf")}

PLAY = """
- hosts: nrkdev
  gather_facts: false
  tasks:
    - name: Set up the NRK development host
      ansible.builtin.include_role:
        name: labkit.cluster.nrk_baremetal
        tasks_from: host_setup
      vars:
        nrk_baremetal_dhcp_hosts:
          - {name: nrk1, mac: "56:b4:44:e9:62:d0", ip: 172.31.0.10}
"""


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=ENV, capture_output=True, text=True, check=check, timeout=300)


@pytest.fixture(scope="module")
def container(tmp_path_factory):
    if not shutil.which("podman"):
        pytest.fail("podman is missing (./labkit setup installs it)")
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        subprocess.run([str(ROOT / "tests" / "podman" / "build_image.sh")], env=ENV, check=True, timeout=900)
    name = f"labkit-nrk-host-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "-d", "--name", name, "--systemd=always", "--cap-add", "NET_ADMIN",
        "--device", "/dev/net/tun", IMAGE, "/sbin/init",
    )  # fmt: skip
    try:
        inv = tmp_path_factory.mktemp("nrkhost") / "hosts.ini"
        inv.write_text(
            f"nrkdev ansible_connection=containers.podman.podman ansible_host={name} "
            "ansible_python_interpreter=/usr/bin/python3\n"
        )
        yield name, inv
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)
        assert podman("container", "exists", name, check=False).returncode != 0


@pytest.fixture(scope="module")
def runs(container):
    _, inv = container
    first = run_playbook(PLAY, inventory=inv, timeout=900)
    second = run_playbook(PLAY, inventory=inv, timeout=600)
    return first, second


def test_host_is_set_up(container, runs):
    name, _ = container
    first, _ = runs
    assert first.rc == 0, first.stdout[-4000:]
    addr = podman("exec", name, "ip", "-br", "address", "show", "tap0").stdout
    assert "172.31.0.20/24" in addr
    assert podman("exec", name, "systemctl", "is-active", "isc-dhcp-server").stdout.strip() == "active"
    assert podman("exec", name, "systemctl", "is-enabled", "nrk-tap0.service").stdout.strip() == "enabled"
    conf = podman("exec", name, "cat", "/etc/dhcp/dhcpd.conf").stdout
    assert "subnet 172.31.0.0 netmask 255.255.255.0" in conf and "fixed-address 172.31.0.10;" in conf
    assert 'INTERFACESv4="tap0"' in podman("exec", name, "cat", "/etc/default/isc-dhcp-server").stdout
    assert "kvm" in podman("exec", name, "id", "-nG", "root").stdout.split()
    pkgs = podman("exec", name, "dpkg-query", "-W", "-f", "${Package} ${Status}\n", "qemu-system-x86", "sshpass",
                  "python3-plumbum", "uml-utilities").stdout  # fmt: skip
    assert pkgs.count("install ok installed") == 4, pkgs
    # no AppArmor inside a container: the role says so instead of failing
    assert "AppArmor is not enabled" in first.stdout


def test_second_run_changes_nothing(runs):
    _, second = runs
    assert second.rc == 0, second.stdout[-4000:]
    assert second.changed("nrkdev") == 0, second.stdout[-4000:]
