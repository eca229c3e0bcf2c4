"""kmod against a real .ko: the project's labkit_fixture built on this host against Debian's headers.

The host kernel cannot load modules, but it can build them: this checks real `modinfo` output parsing,
that a rebuild with another REV changes srcversion, and that the module refuses a .ko whose vermagic is
not the running kernel's (with both strings in the message) while accepting one whose vermagic is.
Needs linux-headers-amd64 (Debian) and gcc/make; .ci/run installs them.
"""

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.labkit.cluster.plugins.module_utils import kernel_module as km
from playbook_runner import run_playbook

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "kmod_fixture"
HOST_RELEASE = os.uname().release


def debian_headers():
    trees = sorted(p for p in glob.glob("/usr/src/linux-headers-*-amd64") if os.path.isfile(os.path.join(p, ".config")))
    if not trees or not shutil.which("modinfo") or not shutil.which("make"):
        pytest.fail(
            "building labkit_fixture needs linux-headers-amd64, kmod, make and gcc: apt-get install "
            "linux-headers-amd64 kmod build-essential"
        )
    return trees[-1]


def build(workdir: Path, kdir: str, rev: int = 1) -> Path:
    if not workdir.exists():
        shutil.copytree(FIXTURE, workdir)
    proc = subprocess.run(
        ["make", f"KDIR={kdir}", f"REV={rev}"], cwd=workdir, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return workdir / "labkit_fixture.ko"


def fake_headers(tmp: Path, kdir: str, release: str) -> str:
    """A copy of the headers tree that claims another kernel release (vermagic follows UTS_RELEASE)."""
    tree = tmp / "headers"
    shutil.copytree(kdir, tree, symlinks=True)
    uts = tree / "include" / "generated" / "utsrelease.h"
    uts.write_text(f'#define UTS_RELEASE "{release}"\n')
    # relative symlinks (scripts, tools) must still resolve from the copy
    for link in ("scripts", "tools"):
        target = os.path.realpath(os.path.join(kdir, link))
        (tree / link).unlink()
        (tree / link).symlink_to(target)
    return str(tree)


def modinfo(path: Path) -> dict:
    out = subprocess.run(["modinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return km.parse_modinfo(out)


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch):
    """ansible-playbook is found next to this interpreter, whatever PATH the test run has."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    kdir = debian_headers()
    work = tmp_path_factory.mktemp("fixture")
    ko = build(work / "src", kdir, rev=1)
    rev1 = modinfo(ko)
    shutil.copy(ko, work / "rev1.ko")
    build(work / "src", kdir, rev=2)
    shutil.copy(work / "src" / "labkit_fixture.ko", work / "rev2.ko")
    return {"kdir": kdir, "work": work, "rev1": work / "rev1.ko", "rev2": work / "rev2.ko", "info1": rev1}


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("inv") / "hosts"
    path.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    return path


def test_real_modinfo_parses(built):
    info = built["info1"]
    release = Path(built["kdir"]).name.removeprefix("linux-headers-")
    assert info["name"] == "labkit_fixture"
    assert km.vermagic_release(info["vermagic"]) == release
    assert "modversions" in info["vermagic"]
    assert set(info["parameters"]) == {"level", "tag", "ports", "rev"}
    assert "(array of int)" in info["parameters"]["ports"]
    assert info["version"] == "1"
    assert len(info["srcversion"]) >= 20


def test_rebuild_with_other_rev_changes_srcversion(built):
    info2 = modinfo(built["rev2"])
    assert info2["version"] == "2"
    assert info2["srcversion"] != built["info1"]["srcversion"]


def test_vermagic_refused_with_both_strings(built, inventory):
    play = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: load wrong kernel
      labkit.cluster.kmod:
        path: {built["rev1"]}
        params: {{level: 3}}
"""
    for check in (False, True):
        res = run_playbook(play, inventory=inventory, check=check)
        assert res.failed("localhost") == 1
        result = res.result("localhost", "load wrong kernel")
        assert result["vermagic"] == built["info1"]["vermagic"]
        assert built["info1"]["vermagic"] in result["msg"]
        assert f'kernel release: "{HOST_RELEASE}"' in result["msg"]
        assert "Rebuild it against" in result["msg"]


def test_matching_vermagic_passes_check_mode(built, inventory, tmp_path):
    kdir = fake_headers(tmp_path, built["kdir"], HOST_RELEASE)
    ko = build(tmp_path / "src", kdir, rev=7)
    play = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: load matching
      labkit.cluster.kmod:
        path: {ko}
        params: {{level: 3, tag: "two words", ports: [1, 2]}}
"""
    res = run_playbook(play, inventory=inventory, check=True, diff=True)
    result = res.result("localhost", "load matching")
    assert res.rc == 0, res.stdout[-3000:]
    assert result["changed"] is True
    assert result["name"] == "labkit_fixture"
    assert result["vermagic"].split()[0] == HOST_RELEASE
    assert result["srcversion"] == modinfo(ko)["srcversion"]
    assert result["params"] == {"level": "3", "tag": "two words", "ports": "1,2"}
    assert result["commands"] == []
    assert "loaded: true" in res.stdout


def test_unknown_parameter_refused_from_real_modinfo(built, inventory, tmp_path):
    play = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: bad param
      labkit.cluster.kmod:
        path: {built["rev1"]}
        params: {{lvl: 3}}
        check_vermagic: false
"""
    res = run_playbook(play, inventory=inventory, check=True)
    result = res.result("localhost", "bad param")
    assert res.failed("localhost") == 1
    assert "no parameter lvl" in result["msg"] and "level" in result["msg"]
