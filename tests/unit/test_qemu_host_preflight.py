"""qemu_host's preflight refuses an agent timeout that labkit.cluster.qemu_guest_exec would refuse only after
the guests run (a real ansible-playbook run of the role's preflight on the controller, with no guests: nothing
is touched)."""

import sys

import pytest
from playbook_runner import run_playbook

PLAY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Preflight
      ansible.builtin.include_role:
        name: labkit.cluster.qemu_host
        tasks_from: preflight
"""


@pytest.mark.parametrize(("timeout", "refused"), [(0, True), (3601, True), (1, False), (3600, False)])
def test_agent_timeout_out_of_range_is_refused(tmp_path, timeout, refused):
    inventory = tmp_path / "hosts"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    result = run_playbook(PLAY, inventory=inventory, extra_vars={"qemu_host_agent_timeout": timeout})
    assert result.failed("localhost") == int(refused), result.stdout[-3000:]
    if refused:
        message = result.result("localhost", "Refuse an agent timeout out of range")["msg"]
        assert f"qemu_host_agent_timeout is {timeout}" in message and "from 1 to 3600" in message, message
