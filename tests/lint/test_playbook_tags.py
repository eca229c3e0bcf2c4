"""Tag selection in the playbooks, read from `ansible-playbook --list-tasks` (no host is contacted).

Every role is tagged with its name and every concern with `<role>_<concern>`. What every concern of a role
needs (its preflight; the artifact for the kernel installers; nrk_baremetal's report and host_setup's
platform facts) is listed with the role's tag and with each of its concern tags, the role's tag lists every
task of the role, and no task of a role is listed when only other roles' tags are selected. Ansible's own
argument check of a role is tagged `always` by Ansible and is left out here: it reads variables only. So is
cluster.yml's lab_report, which every run ends with (tags `always` and `report`): a read-only probe per host."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/tasks/main.yml"))
# The concerns whose tasks every other concern of the role needs.
SHARED = {
    "rpi_kernel": ("artifact", "preflight"),
    "grub_kernel": ("artifact", "preflight"),
    "nrk_baremetal": ("report",),
    # qemu_host: its packages need no guest checked, and the guests' tag carries the huge pages they need
    "qemu_host": (),
}
HOST_SETUP_SHARED = ("host_platform",)
# `--tags dcpim_module` (playbooks/dcpim.yml) and `--tags rpi_kernel` (playbooks/rpi_kernel.yml) run all of it, the
# kernel's build and install included.
COMPOSED = {"dcpim_module": {"kernel_build", "grub_kernel"}, "rpi_kernel": {"kernel_build"}}
# Tags across roles in cluster.yml, and the roles each selects.
CROSS_ROLE = {"kernels": {"kernel_build", "rpi_kernel", "grub_kernel"}, "modules": {"web10g_dlkm", "dcpim_module"}}
# Roles that run under every tag selection.
EVERY_RUN = {"lab_report"}
PLAYBOOKS = {
    # cluster.yml: its own play (lab_base), and rpi_kernel and qemu_host through their imports; its other roles come
    # from the playbooks it imports, checked below
    "cluster.yml": ["lab_base", "rpi_kernel", "qemu_host"],
    "dcpim.yml": ["kernel_build", "grub_kernel", "dcpim_module"],
    "grub_kernel.yml": ["grub_kernel"],
    "rpi_kernel.yml": ["kernel_build", "rpi_kernel"],
    "web10g.yml": ["web10g_dlkm", "web10g_userland"],
    "nrk_baremetal.yml": ["nrk_baremetal"],
    "qemu_host.yml": ["qemu_host"],
    "host_setup": ["nrk_baremetal"],  # the entry point, through a playbook of the test's own
}
HOST_SETUP_PLAY = """\
- name: An NRK development host
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Set it up
      ansible.builtin.import_role:
        name: labkit.cluster.nrk_baremetal
        tasks_from: host_setup
"""
LISTED = re.compile(r"^\s+labkit\.cluster\.(\w+) : (.*?)\tTAGS: \[(.*)\]$")

pytestmark = pytest.mark.lint


def _task_tags(tasks) -> list[list[str]]:
    """The tag lists of a task file, in order."""
    found = []
    for task in tasks or []:
        for key in ("block", "rescue", "always"):
            found += _task_tags(task.get(key))
        tags = task.get("tags")
        if tags:
            found.append([tags] if isinstance(tags, str) else list(tags))
    return found


def _tags_in(path: Path, role: str) -> list[str]:
    tags = [t for lst in _task_tags(yaml.safe_load(path.read_text())) for t in lst]
    return list(dict.fromkeys(t for t in tags if t == role or t.startswith(f"{role}_")))


def _role_tags(role: str) -> list[str]:
    return _tags_in(ROOT / "roles" / role / "tasks" / "main.yml", role)


ALL_TAGS = {
    tag for role in ROLES for path in (ROOT / "roles" / role / "tasks").glob("*.yml") for tag in _tags_in(path, role)
}


def _shared(playbook: str, role: str) -> set[str]:
    concerns = HOST_SETUP_SHARED if playbook == "host_setup" else SHARED.get(role, ("preflight",))
    return {f"{role}_{concern}" for concern in concerns}


def _concern(playbook: str, role: str) -> str:
    """The role's last concern that is not shared: it needs the shared tasks and selects nothing else."""
    tags = _tags_in(ROOT / "roles" / role / "tasks" / "host_setup.yml", role) if playbook == "host_setup" else None
    tags = tags or _role_tags(role)
    return [t for t in tags if t != role and t not in _shared(playbook, role)][-1]


@pytest.fixture(scope="module")
def list_tasks(tmp_path_factory):
    host_setup = tmp_path_factory.mktemp("tags") / "host_setup.yml"
    host_setup.write_text(HOST_SETUP_PLAY)
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", NO_COLOR="1")

    @functools.cache
    def run(playbook: str, tags: str | None) -> list[tuple[str, str, frozenset[str]]]:
        """(role, task name, tags) of every role task listed; Ansible's argument check left out."""
        path = host_setup if playbook == "host_setup" else ROOT / "playbooks" / playbook
        cmd = ["ansible-playbook", "-i", str(ROOT / "inventories" / "lab"), str(path), "--list-tasks"]
        cmd += ["--tags", tags] if tags else []
        result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}{result.stderr}", pytrace=False)
        listed = []
        for line in result.stdout.splitlines():
            match = LISTED.match(line)
            if match and not match[2].startswith("Validating arguments against arg spec"):
                listed.append((match[1], match[2], frozenset(t.strip() for t in match[3].split(","))))
        return listed

    return run


def _shared_tasks(list_tasks, playbook: str, role: str) -> set[str]:
    names = {name for r, name, tags in list_tasks(playbook, None) if r == role and tags & _shared(playbook, role)}
    assert names or not _shared(playbook, role), (
        f"{playbook}: no task of {role} tagged {sorted(_shared(playbook, role))}"
    )
    return names


@pytest.mark.parametrize(
    ("playbook", "role"), [(p, r) for p, roles in PLAYBOOKS.items() for r in roles if _shared(p, r)]
)
def test_shared_tasks_carry_every_tag_of_their_role(list_tasks, playbook, role):
    listed = [(name, tags) for r, name, tags in list_tasks(playbook, None) if r == role]
    role_tags = {t for _, tags in listed for t in tags if t == role or t.startswith(f"{role}_")}
    for name in _shared_tasks(list_tasks, playbook, role):
        tags = next(tags for n, tags in listed if n == name)
        assert "always" not in tags, f"{playbook}: {role} : {name} is tagged always"
        assert role_tags <= tags, f"{playbook}: {role} : {name} lacks {sorted(role_tags - tags)}"


@pytest.mark.parametrize(
    ("playbook", "role", "kind"),
    [(p, r, kind) for p, roles in PLAYBOOKS.items() for r in roles for kind in ("role", "concern")],
)
def test_a_roles_tags_run_its_preflight_and_no_other_role(list_tasks, playbook, role, kind):
    tag = role if kind == "role" else _concern(playbook, role)
    listed = list_tasks(playbook, tag)
    missing = _shared_tasks(list_tasks, playbook, role) - {name for r, name, _ in listed if r == role}
    assert not missing, f"{playbook} --tags {tag} does not list {sorted(missing)}"
    if kind == "role":
        untagged = {name for r, name, _ in list_tasks(playbook, None) if r == role}
        left_out = untagged - {name for r, name, _ in listed if r == role}
        assert not left_out, f"{playbook} --tags {tag} does not list {sorted(left_out)}"
    composed = COMPOSED.get(role, set()) if kind == "role" else set()
    others = [f"{r} : {name}" for r, name, _ in listed if r != role and r not in composed | EVERY_RUN]
    assert not others, f"{playbook} --tags {tag} lists other roles' tasks: {others}"


# cluster.yml imports every role's playbook: no role's tags are foreign to it.
@pytest.mark.parametrize("playbook", [p for p in PLAYBOOKS if p != "cluster.yml"])
def test_other_roles_tags_run_none_of_its_roles(list_tasks, playbook):
    """Every tag of every role not in the playbook at once: none of the playbook's role tasks is listed."""
    ours = set(PLAYBOOKS[playbook])
    other = sorted(t for t in ALL_TAGS if not any(t == r or t.startswith(f"{r}_") for r in ours))
    listed = [f"{r} : {name}" for r, name, _ in list_tasks(playbook, ",".join(other))]
    assert not listed, f"{playbook} --tags <other roles' tags> lists {listed}"


# In cluster.yml, the tags of every other role and the cross-role tags that do not select a role list none of its
# tasks.
@pytest.mark.parametrize("role", PLAYBOOKS["cluster.yml"])
def test_in_cluster_other_tags_run_none_of_a_role(list_tasks, role):
    other = sorted(t for t in ALL_TAGS if t != role and not t.startswith(f"{role}_"))
    other += sorted(t for t, roles in CROSS_ROLE.items() if role not in roles)
    listed = [name for r, name, _ in list_tasks("cluster.yml", ",".join(other)) if r == role]
    assert not listed, f"cluster.yml --tags <other roles' tags> lists {role} : {listed}"


@pytest.mark.parametrize("tag", sorted(CROSS_ROLE))
def test_cross_role_tags_select_exactly_their_roles(list_tasks, tag):
    listed = {r for r, _, _ in list_tasks("cluster.yml", tag)} - EVERY_RUN
    assert listed == CROSS_ROLE[tag], f"cluster.yml --tags {tag} lists the roles {sorted(listed)}"
