"""The example inventories' QEMU guests pass the module's checks (plugins/module_utils/qemu_guest.py), read with
Ansible's own inventory and variable managers as a run would: inventories/lab declares a CXL guest and two
guests sharing an ivshmem region; inventories/sim declares none."""

from pathlib import Path

import pytest
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.manager import VariableManager
from ansible_collections.labkit.cluster.plugins.module_utils import qemu_guest as q

ROOT = Path(__file__).resolve().parents[2]
# Debian 12's QEMU, the oldest the role runs with (no volatile CXL devices)
QEMU_VERSION = (7, 2)


def qemu_hosts(name):
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(ROOT / "inventories" / name)])
    variables = VariableManager(loader=loader, inventory=inventory)
    return {host.name: variables.get_vars(host=host) for host in inventory.get_hosts("qemu_hosts")}


def test_the_lab_example_guests_pass_the_modules_checks():
    checked = {}
    for hostvars in qemu_hosts("lab").values():
        regions = q.validate_regions(hostvars.get("qemu_host_ivshmem_regions", []))
        for guest in hostvars.get("qemu_host_guests", []):
            checked[guest["name"]] = q.validate_guest(guest, regions, QEMU_VERSION)
    cxl = [name for name, guest in checked.items() if guest["cxl"]]
    assert [device["name"] for name in cxl for device in checked[name]["cxl"]["devices"]] == ["mem0"]
    assert [name for name, guest in checked.items() if "shm0" in guest["ivshmem"]] == ["shm-a", "shm-b"]


@pytest.mark.parametrize("host", sorted(qemu_hosts("sim")))
def test_the_sim_lab_runs_no_guest(host):
    assert not qemu_hosts("sim")[host].get("qemu_host_guests")
