"""playbooks/rpi_kernel.yml refuses a Pi whose rpi_kernel_build_host is not a builder, before anything is built or
installed (a real ansible-playbook run; the check reads the inventory only, so no Pi is contacted)."""

from pathlib import Path

import yaml
from playbook_runner import run_playbook

ROOT = Path(__file__).resolve().parents[2]


def test_a_build_host_outside_rpi_kernel_builders_is_refused_with_its_name(tmp_path):
    # unreachable addresses: the refusal must come before any connection
    hosts = {
        "pi1": {"ansible_host": "192.0.2.1", "rpi_kernel_build_host": "bulder\n"},
        "pi2": {"ansible_host": "192.0.2.2", "rpi_kernel_build_host": "builder"},
    }
    builders = {"builder": {"ansible_host": "192.0.2.3"}}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump({"all": {"children": {"rpi": {"hosts": hosts}, "rpi_kernel_builders": {"hosts": builders}}}})
    )
    # the builder is left out by --limit: it builds nothing, and pi2 keeps its kernel
    result = run_playbook(ROOT / "playbooks" / "rpi_kernel.yml", inventory=inventory, limit="pi1:pi2")
    assert result.failed("pi1") == 1 and result.failed("pi2") == 0, result.stdout[-3000:]
    message = result.result("pi1", "Check the Pi's build host")["msg"]
    assert '"bulder\\n"' in message and "not a host of the rpi_kernel_builders group (builder)" in message, message
    assert "pi2 keeps its kernel" in result.stdout
