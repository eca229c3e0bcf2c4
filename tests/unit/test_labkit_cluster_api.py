"""labkit_cluster, the Python API over ansible-runner: real runs of small plays on the controller
(local connection), so the events, stats and the command line's progress come from Ansible itself."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from labkit_cluster import Lab
from labkit_cluster.progress import Progress

ROOT = Path(__file__).resolve().parents[2]

PLAY = """\
- name: Two local hosts, one changes and one fails
  hosts: all
  gather_facts: false
  tasks:
    - name: Change something
      ansible.builtin.command: "true"
      changed_when: inventory_hostname == 'h1'
    - name: Fail on h2
      ansible.builtin.fail:
        msg: h2 refuses on purpose
      when: inventory_hostname == 'h2'
"""


@pytest.fixture
def local_lab(tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[all:vars]\nansible_connection=local\nansible_python_interpreter=" + sys.executable + "\n[all]\nh1\nh2\n"
    )
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY)
    return inventory, playbook


def test_provision_returns_per_host_results_and_streams_events(local_lab):
    inventory, playbook = local_lab
    events = []
    result = Lab(inventory, playbook).provision(limit="h1,h2", on_event=events.append)
    assert result.rc == 2
    assert result.hosts()["h1"]["changed"] == 1 and result.failed("h1") == 0
    assert result.failed("h2") == 1 and result.result("h2", "Fail on h2")["msg"] == "h2 refuses on purpose"
    assert [e["event"] for e in events].count("playbook_on_stats") == 1
    only_h1 = Lab(inventory, playbook).provision(limit="h1", extra_vars={"unused": [1, 2]})
    assert only_h1.rc == 0 and set(only_h1.hosts()) == {"h1"}


def test_missing_inventory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no inventory at .*nowhere"):
        Lab(tmp_path / "nowhere")


def test_command_line_prints_progress_and_the_recap(local_lab):
    inventory, playbook = local_lab
    proc = subprocess.run(
        [sys.executable, "-m", "labkit_cluster", "-i", str(inventory), "--playbook", str(playbook), "--limit", "h1,h2"],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tools")},
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "PLAY RECAP" in proc.stdout and "h2" in proc.stdout
    progress = proc.stderr.splitlines()
    assert any("h1" in line and "changed" in line and "Change something" in line for line in progress), proc.stderr
    assert any("h2" in line and "failed" in line and "h2 refuses on purpose" in line for line in progress), proc.stderr
    assert not any("h1" in line and "Fail on h2" in line for line in progress)  # skipped results stay quiet


def test_progress_lines_name_host_status_and_task():
    lines = []

    class Sink:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    show = Progress(Sink())
    show({"event": "runner_on_ok", "event_data": {"host": "pi1", "task": "Quiet", "res": {"changed": False}}})
    show({"event": "runner_on_unreachable", "event_data": {"host": "pi2", "task": "Gather", "res": {"msg": "ssh"}}})
    assert len(lines) == 1 and "pi2" in lines[0] and "unreachable" in lines[0] and "Gather: ssh" in lines[0]


def test_the_venv_imports_the_api_without_a_path_setting():
    """./labkit setup writes a .pth into the venv, so scripts need no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", "from labkit_cluster import Lab; print(Lab.__name__)"],
        check=False, capture_output=True, text=True, env=env, cwd="/", timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "Lab", proc.stderr


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"tags": "lab_base"}, "tags"),
        ({"tags": ["lab_base,rpi_kernel"]}, "tags"),
        ({"skip_tags": ["x\n--check"]}, "skip_tags"),
        ({"limit": "h1\nh2"}, "limit"),
        ({"extra_vars": ["a=1"]}, "extra_vars"),
    ],
)
def test_hostile_options_are_refused_before_anything_runs(local_lab, options, field):
    inventory, playbook = local_lab
    events = []
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        Lab(inventory, playbook).provision(on_event=events.append, **options)
    assert events == []
