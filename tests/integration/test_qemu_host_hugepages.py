"""qemu_host's huge pages in a sim-lab guest (1 GiB of memory): asked for more 2M pages than the guest's
memory can hold, the role refuses before it asks the kernel (which would take all free memory and starve
the host), naming what is there and what is short, and changes nothing."""

import re

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

HOST = "sim-dcpim1"
WANTED = 100000  # 195 GiB of 2M pages
PLAY = f"""\
- hosts: {HOST}
  gather_facts: false
  become: true
  tasks:
    - name: Reserve the pages
      ansible.builtin.include_role:
        name: labkit.cluster.qemu_host
        tasks_from: hugepages
      vars:
        qemu_host_hugepages: {WANTED}
"""


def hugepages(lab) -> str:
    return lab.ssh(HOST, "awk '/^HugePages_Total:/ {print $2}' /proc/meminfo").stdout.strip()


def test_more_huge_pages_than_memory_are_refused_naming_the_shortfall(lab, run_playbook):
    before = hugepages(lab)
    try:
        res = run_playbook(PLAY, limit=HOST)
        assert res.rc != 0, res.stdout[-3000:]
        message = res.result(HOST, "Refuse more huge pages than the host's memory can hold")["msg"]
        pattern = r"cannot hold the 100000 huge pages .* it has (\d+) and memory for at most (\d+) more"
        found = re.search(pattern, message)
        assert found, message
        has, room = int(found.group(1)), int(found.group(2))
        assert 0 < room < 512 and f"{WANTED - has - room} short" in message  # what a 1 GiB guest could give
        assert hugepages(lab) == before
        assert lab.ssh(HOST, "test -e /etc/sysctl.d/60-labkit-hugepages.conf", check=False).returncode != 0
    finally:
        lab.ssh(HOST, f"sysctl -qw vm.nr_hugepages={before or 0}; rm -f /etc/sysctl.d/60-labkit-hugepages.conf")
