"""`ansible-galaxy collection build` of the checkout, then an offline install of the tarball."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GALAXY = str(BIN / "ansible-galaxy") if (BIN / "ansible-galaxy").exists() else "ansible-galaxy"

pytestmark = pytest.mark.lint


def _run(*cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    # No Galaxy server is reachable: point the client at a dead local address so that any attempt
    # to resolve a dependency fails at once instead of waiting on the network.
    env = dict(os.environ, ANSIBLE_GALAXY_SERVER="http://127.0.0.1:9/", ANSIBLE_NOCOLOR="1")
    # The checkout is linked into the usual collections path: without this the install would find
    # it there and report "already installed" instead of installing the tarball.
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    env.pop("ANSIBLE_CONFIG", None)
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    out = tmp_path_factory.mktemp("build")
    _run(GALAXY, "collection", "build", str(ROOT), "--output-path", str(out), cwd=out)
    path = out / f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    assert path.is_file(), sorted(p.name for p in out.iterdir())
    return path


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory) -> Path:
    """The collection directory that an offline install of the tarball creates."""
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    dest = tmp_path_factory.mktemp("install")
    _run(GALAXY, "collection", "install", "--offline", "--no-deps", "--force", str(tarball), "-p", str(dest), cwd=dest)
    return dest / "ansible_collections" / galaxy["namespace"] / galaxy["name"]


def test_installed_collection_has_galaxy_metadata(installed):
    coll = installed
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    info = json.loads((coll / "MANIFEST.json").read_text())["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (
        galaxy["namespace"],
        galaxy["name"],
        galaxy["version"],
    )
    assert info["dependencies"] == {}
    assert (coll / "FILES.json").is_file()
    assert (coll / "meta" / "runtime.yml").is_file()


def test_installed_collection_has_every_role(installed):
    coll = installed
    roles = sorted(p.parents[1].name for p in (ROOT / "roles").glob("*/tasks/main.yml"))
    assert roles, "the checkout has no role"
    for role in roles:
        for part in ("tasks/main.yml", "meta/main.yml", "meta/argument_specs.yml", "README.md"):
            assert (coll / "roles" / role / part).is_file(), f"{role}/{part} missing from the built collection"


def test_installed_collection_has_every_module(installed):
    coll = installed
    modules = sorted(p.name for p in (ROOT / "plugins" / "modules").glob("*.py") if p.name != "__init__.py")
    utils = sorted(p.name for p in (ROOT / "plugins" / "module_utils").glob("*.py"))
    for name in modules:
        assert (coll / "plugins" / "modules" / name).is_file(), f"plugins/modules/{name} missing"
    for name in utils:
        assert (coll / "plugins" / "module_utils" / name).is_file(), f"plugins/module_utils/{name} missing"


def test_build_leaves_out_development_files(tarball, installed):
    coll = installed
    for path in (".git", ".ci", "tests", "bench", "tools", "labkit", ".pytest_cache"):
        assert not (coll / path).exists(), f"{path} should not be in {tarball.name}"
    assert (coll / "LICENSE").is_file() and "GNU GENERAL PUBLIC LICENSE" in (coll / "LICENSE").read_text()
    assert "Version 3" in (coll / "LICENSE").read_text()


def test_installed_role_is_usable(installed):
    """ansible-doc reads the role's argument spec from the installed copy, not from the checkout."""
    coll = installed
    env_path = f"{coll.parents[2]}"
    result = subprocess.run(
        [str(BIN / "ansible-doc"), "-t", "role", "-j", "labkit.cluster.lab_base"],
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=env_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)["labkit.cluster.lab_base"]
    assert doc["collection"] == "labkit.cluster"
    assert doc["path"].startswith(env_path), doc["path"]
    assert "lab_base_hosts_groups" in doc["entry_points"]["main"]["options"]


def test_installed_role_runs_from_the_tarball(installed, tmp_path):
    """The installed copy of lab_base runs (check mode, on this machine) and reads its version from MANIFEST.json."""
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    play = [
        {
            "name": "lab_base from the installed collection",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Apply the role",
                    "ansible.builtin.include_role": {"name": "labkit.cluster.lab_base"},
                    "vars": {"lab_base_set_hostname": False},
                },
                {
                    "name": "Check the version it recorded",
                    "ansible.builtin.assert": {
                        "that": [f"lab_base_local_fact.collection_version == '{galaxy['version']}'"]
                    },
                },
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(installed.parents[2]), ANSIBLE_NOCOLOR="1", ANSIBLE_ROLES_PATH=str(tmp_path)
    )
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "--check", "play.yml"]
    result = subprocess.run(
        [*cmd, "-e", f"ansible_python_interpreter={sys.executable}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed=0" in result.stdout, result.stdout
