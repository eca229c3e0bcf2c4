"""lab_base's preflight on the controller itself (connection local, no guest). The role reads the
system with one raw probe (files/probe.sh) instead of gathering facts; here it reads the real
/etc/os-release, over which a test binds another file in a mount namespace of its own (`unshare`), so
a hostile or unsupported os-release is met where the role really reads it. Ansible's own facts on the
same machine are the reference for what the probe reports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "roles" / "lab_base" / "files" / "probe.sh"
PLAYBOOK = ROOT / "playbooks" / "cluster.yml"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))

PLAY = """
- name: lab_base's preflight on the controller
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the preflight
      ansible.builtin.include_role:
        name: labkit.cluster.lab_base
        tasks_from: preflight
    - name: Keep what the probe read
      ansible.builtin.copy:
        content: "{{ lab_base_os | to_json }}"
        dest: "{{ out }}/lab_base_os.json"
        mode: "0644"
    - name: Gather Ansible's facts for comparison
      ansible.builtin.setup:
        gather_subset: ["!all", "!min", distribution, platform, python, virtual]
    - name: Keep Ansible's facts
      ansible.builtin.copy:
        content: "{{ ansible_facts | to_json }}"
        dest: "{{ out }}/ansible_facts.json"
        mode: "0644"
"""


def _in_namespace(os_release: Path | None, argv: list[str]) -> subprocess.CompletedProcess:
    """Run argv with os_release bound over /etc/os-release in a private mount namespace."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is needed to show the probe another os-release")
    bind = f"mount --bind {os_release} /etc/os-release && " if os_release else ""
    script = bind + 'exec "$@"'
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", *argv], capture_output=True, text=True, check=False
    )
    if "unshare failed" in done.stderr or "Operation not permitted" in done.stderr:
        pytest.skip(f"no mount namespace here: {done.stderr.strip()}")
    return done


def _play(tmp_path: Path, os_release: Path | None = None, python: str | None = None) -> subprocess.CompletedProcess:
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(PLAY)
    interpreter = python or sys.executable
    inventory = f"localhost ansible_connection=local ansible_python_interpreter={interpreter}\n"
    (tmp_path / "hosts").write_text(inventory)
    argv = [ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "hosts"), str(playbook), "-e", f"out={tmp_path}"]
    return _in_namespace(os_release, argv)


def test_probe_reads_a_hostile_os_release_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    os_release = tmp_path / "os-release"
    os_release.write_text(f'ID=debian\nNAME="Evil $(touch {marker}) \\" \\\\ `id` Linux"\nVERSION_ID="12\n')
    done = _in_namespace(os_release, ["sh", str(PROBE), "/nonexistent/labkit.fact", "python3"])
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)  # still one valid JSON object
    assert not marker.exists()
    assert probe["os_id"] == "debian" and probe["os_version_id"] == "12"
    assert "$" not in probe["os_name"] and '"' not in probe["os_name"] and "`" not in probe["os_name"]
    assert probe["fact_b64"] == "" and probe["fact_attrs"] == ""


def test_probe_without_os_release_or_python_reports_empty_fields(tmp_path):
    empty = tmp_path / "os-release"
    empty.write_text("")
    done = _in_namespace(empty, ["sh", str(PROBE), "/nonexistent/labkit.fact", "/nonexistent/python3"])
    probe = json.loads(done.stdout)
    assert probe["os_id"] == probe["os_name"] == probe["os_version_id"] == ""
    assert probe["python_path"] == probe["python_version"] == ""


def test_probe_matches_ansibles_own_facts(tmp_path):
    done = _play(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    ours = json.loads((tmp_path / "lab_base_os.json").read_text())
    facts = json.loads((tmp_path / "ansible_facts.json").read_text())
    assert ours["distribution"] == facts["distribution"]
    assert ours["distribution_version"] == facts["distribution_version"]
    assert ours["kernel"] == facts["kernel"]
    assert ours["python"]["version"] == ".".join(str(part) for part in facts["python"]["version_info"][:3])
    assert ours["container"] == facts["virtualization_type"]


def test_unsupported_distribution_is_refused_naming_it(tmp_path):
    os_release = tmp_path / "os-release"
    os_release.write_text('NAME="Arch Linux"\nID=arch\nVERSION_ID=rolling\n')
    done = _play(tmp_path, os_release)
    assert done.returncode != 0
    log = " ".join(done.stdout.split())
    assert "supports Debian, Raspbian, Ubuntu with Python >= 3.9; localhost runs Arch Linux rolling" in log, log[-2000:]


def test_old_python_is_refused_naming_its_version_and_path(tmp_path):
    # An interpreter that reports an old version: the probe asks `-V`, anything else goes to the real one.
    fake = tmp_path / "python3.6"
    fake.write_text(f'#!/bin/sh\nif [ "$1" = -V ]; then echo "Python 3.6.9"; exit 0; fi\nexec {sys.executable} "$@"\n')
    fake.chmod(0o755)
    done = _play(tmp_path, python=str(fake))
    assert done.returncode != 0
    log = " ".join(done.stdout.split())
    assert f"with Python 3.6.9 ({fake}). Use a supported host" in log, log[-2000:]
