"""What ./labkit's set-up installs for each command (LABKIT_SETUP_PLAN=1 prints it and installs nothing):
a real lab's run gets the controller's runtime only, with kernel build tools only when a kernel builder of
the inventory is the controller; the sim lab and the tests get everything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEST_ONLY = {"qemu-system-x86", "podman", "linux-source-6.1", "gcc-aarch64-linux-gnu", "mmdebstrap", "shellcheck"}

pytestmark = pytest.mark.lint


def plan(*args: str) -> dict[str, set[str]]:
    env = dict(os.environ, LABKIT_SETUP_PLAN="1")
    result = subprocess.run(
        ["bash", str(ROOT / "labkit"), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found: dict[str, set[str]] = {"apt": set(), "pip": set()}
    for line in result.stdout.splitlines():
        kind, _, words = line.partition(": ")
        found[kind] |= set(words.split())
    return found


def test_a_real_lab_gets_the_runtime_only():
    found = plan("lab", "-i", str(ROOT / "inventories" / "lab"))
    assert found["pip"] == {"requirements.txt"}
    assert "python3-venv" in found["apt"] and "openssh-client" in found["apt"]
    assert not found["apt"] & TEST_ONLY
    assert "bison" not in found["apt"]  # its kernel builders are other machines


def test_a_kernel_builder_on_the_controller_adds_build_tools(tmp_path):
    inventory = tmp_path / "hosts.yml"
    hosts = {"localhost": {"ansible_connection": "local"}}
    inventory.write_text(yaml.safe_dump({"all": {"children": {"dcpim_kernel_builders": {"hosts": hosts}}}}))
    found = plan("lab", "-i", str(inventory))
    assert found["pip"] == {"requirements.txt"}
    assert {"bison", "flex", "libelf-dev", "ccache"} <= found["apt"]
    assert not found["apt"] & TEST_ONLY


def test_the_sim_lab_and_the_tests_get_everything():
    for args in (("lab",), ("setup",)):
        found = plan(*args)
        assert found["pip"] == {"requirements-test.txt"}, args
        assert TEST_ONLY <= found["apt"], args
