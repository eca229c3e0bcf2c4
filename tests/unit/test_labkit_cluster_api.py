"""labkit_cluster, the Python API over ansible-runner: real runs of small plays on the controller
(local connection), so the events, stats and the command line's progress come from Ansible itself."""

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from labkit_cluster import Lab
from labkit_cluster.progress import Progress
from labkit_cluster.table import Table

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
    assert result.changed_tasks("h1") == ["Change something"] and result.changed_tasks("h2") == []
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


ROLE_PLAY = """\
- name: Two local hosts through two roles
  hosts: all
  gather_facts: false
  roles:
    - role: quiet
    - role: demo
"""


CHANGE = """\
- name: Change something
  ansible.builtin.command: "true"
  changed_when: inventory_hostname == 'h1'
"""
FAIL = """\
- name: Fail on h2
  ansible.builtin.fail:
    msg: h2 refuses on purpose
  when: inventory_hostname == 'h2'
"""
ROLE_TASKS = {"quiet": CHANGE, "demo": CHANGE + FAIL}


@pytest.fixture
def role_lab(local_lab, tmp_path):
    inventory, playbook = local_lab
    for role, tasks in ROLE_TASKS.items():
        (tmp_path / "roles" / role / "tasks").mkdir(parents=True)
        (tmp_path / "roles" / role / "tasks" / "main.yml").write_text("---\n" + tasks)
    playbook.write_text(ROLE_PLAY)
    return inventory, playbook


class Terminal:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_table_has_a_row_per_host_and_a_column_per_role(role_lab):
    inventory, playbook = role_lab
    events = []
    Lab(inventory, playbook).provision(limit="h1,h2", on_event=events.append)
    terminal = Terminal()
    table = Table(terminal, interval=0, height=20)
    for event in events:
        table(event)
    header, h1, h2 = table.lines()[:3]
    assert header.split() == ["host", "quiet", "demo"], table.lines()
    assert h1.split() == ["h1", "changed", "changed"] and h2.split() == ["h2", "ok", "FAILED"], table.lines()
    assert "h2: FAILED Fail on h2: h2 refuses on purpose" in table.lines()
    # every draw but the first goes back over the previous one; the final one stays on screen
    draws = len(re.findall(r"\] \d+ hosts\n", terminal.text))
    assert draws > 1 and terminal.text.count("\x1b[J") == draws - 1, terminal.text
    assert table.drawn == 0


def test_table_shows_the_hosts_that_failed_or_run_when_the_lab_does_not_fit():
    table = Table(Terminal(), interval=3600, height=6)
    for n in range(30):
        table({"event": "runner_on_ok", "event_data": {"host": f"pi{n:02}", "role": "lab_base", "res": {}}})
    table(
        {
            "event": "runner_on_failed",
            "event_data": {"host": "pi17", "role": "rpi_kernel", "task": "Trial", "res": {"msg": "fell back"}},
        }
    )
    table({"event": "runner_on_start", "event_data": {"host": "pi23", "role": "rpi_kernel"}})
    rows = table.lines()
    assert rows[1].split() == ["pi17", "ok", "FAILED"] and rows[2].split() == ["pi23", "ok", "…"], rows
    assert "… and 28 more hosts" in rows and "pi17: FAILED Trial: fell back" in rows


def test_command_line_draws_the_table_on_a_terminal(role_lab):
    inventory, playbook = role_lab
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkit_cluster", "-i", str(inventory), "--playbook", str(playbook), "--limit", "h1,h2"],
        stdout=subprocess.PIPE, stderr=secondary, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tools"), "TERM": "xterm"},
    )  # fmt: skip
    os.close(secondary)
    drawn = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the pty's other end closed
            break
        if not chunk:
            break
        drawn += chunk
    stdout, _ = proc.communicate(timeout=300)
    os.close(primary)
    screen = drawn.decode(errors="replace")
    assert proc.returncode == 2 and "PLAY RECAP" in stdout
    assert "host" in screen and "quiet" in screen and "FAILED" in screen, screen
    assert "h2 refuses on purpose" in screen


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
