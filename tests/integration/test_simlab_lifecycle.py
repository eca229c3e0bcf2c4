"""simlab up/down on small labs of their own: clean teardown and clear errors on bad input.

Each test writes its own inventory with its own ports, so it never touches the session lab.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from simlab import paths
from simlab.errors import SimlabError
from simlab.guest import process_alive
from simlab.lab import Lab, template_dir
from simlab.tools import port_in_use

pytestmark = [pytest.mark.lab]

ROOT = Path(__file__).resolve().parents[2]
SIM_GROUP_VARS = ROOT / "inventories" / "sim" / "group_vars"


def _inventory(tmp_path: Path, guests: dict, bmcs: dict | None = None, extra: dict | None = None) -> Path:
    directory = tmp_path / "inventory"
    shutil.copytree(SIM_GROUP_VARS, directory / "group_vars")
    children = {"build_hosts": {"hosts": guests}}
    if bmcs:
        children["idrac_machines"] = {"hosts": bmcs}
    (directory / "hosts.yml").write_text(yaml.safe_dump({"all": {"vars": extra or {}, "children": children}}))
    return directory


def _pids(lab: Lab) -> list[int]:
    return [p["pid"] for p in lab._read_state()["processes"].values()]


def _running(marker: str) -> list[int]:
    """PIDs of processes whose command line mentions marker (simlab's own names for them)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline and process_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def _nothing_left(pids: list[int], ports: list[int]) -> None:
    assert pids, "the lab recorded no process"
    assert not [p for p in pids if process_alive(p)], "processes still running after down"
    assert not [p for p in ports if port_in_use(p)], "ports still taken after down"


def test_down_stops_every_process_and_frees_every_port(tmp_path):
    inv = _inventory(
        tmp_path, {"life-g1": {"ansible_port": 2291, "lab_address": "10.213.9.1"}}, {"life-b1": {"idrac_port": 18491}}
    )
    lab = Lab(inv)
    try:
        lab.up()
        pids = _pids(lab)
        assert len(pids) == 3  # guest, switch, BMC
        assert lab.ssh("life-g1", "hostname").stdout.strip() == "life-g1"
    finally:
        lab.down()
    _nothing_left(pids, [2291, 18491])
    assert lab.down() == []  # a second down has nothing to stop


def test_guest_that_never_answers_ssh_is_reported_and_stopped(tmp_path):
    inv = _inventory(
        tmp_path, {"life-g2": {"ansible_port": 2292, "lab_address": "10.213.9.2", "simlab_boot_timeout": 1}}
    )
    lab = Lab(inv)
    with pytest.raises(SimlabError, match=r"life-g2: no SSH answer on 127.0.0.1:2292 within 1 s"):
        lab.up(cold=True)  # a cold boot takes far longer than 1 s
    assert _running("labkit-life-g2") == []
    assert _running(str(lab.directory)) == []
    assert not port_in_use(2292)


def test_port_already_taken_is_refused_before_anything_starts(tmp_path):
    inv = _inventory(
        tmp_path, {"life-g3": {"ansible_port": 2293, "lab_address": "10.213.9.3"}}, {"life-b3": {"idrac_port": 18493}}
    )
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 2293))
        squatter.listen()
        lab = Lab(inv)
        with pytest.raises(SimlabError, match=r"host life-g3: port 2293 on 127.0.0.1 is already in use"):
            lab.up()
    assert _pids(lab) == []
    assert not port_in_use(18493)


@pytest.mark.parametrize(
    ("guests", "message"),
    [
        ({"bad": {"lab_address": "10.213.9.4"}}, r"host bad: no ansible_port in the inventory"),
        (
            {
                "a": {"ansible_port": 2294, "lab_address": "10.213.9.5"},
                "b": {"ansible_port": 2294, "lab_address": "10.213.9.6"},
            },
            r"hosts a and b both use port 2294",
        ),
        ({"bad": {"ansible_port": 22, "lab_address": "10.213.9.7"}}, r"host bad: ansible_port=22 is outside"),
        ({"bad": {"ansible_port": 2295, "lab_address": "not-an-ip"}}, r"host bad: lab_address=not-an-ip/24 is not"),
        ({"bad": {"ansible_port": 2296}}, r"host bad: no lab_address"),
    ],
)
def test_bad_inventory_names_the_host_and_field(tmp_path, guests, message):
    with pytest.raises(SimlabError, match=message):
        Lab(_inventory(tmp_path, guests))


def test_missing_system_dependency_says_which_package(tmp_path, monkeypatch):
    inv = _inventory(tmp_path, {"life-g5": {"ansible_port": 2297, "lab_address": "10.213.9.8"}})
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # A PATH with everything simlab needs except QEMU.
    for tool in ("ssh", "ssh-keygen", "qemu-img", "mmdebstrap", "mkfs.ext4", "openssl", "cp"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, bindir / tool)
    monkeypatch.setenv("PATH", str(bindir))
    lab = Lab(inv)
    missing = r"missing system commands \['qemu-system-x86_64'\].*apt-get install qemu-system-x86"
    with pytest.raises(SimlabError, match=missing):
        lab.up()
    assert _pids(lab) == []


def test_stale_saved_state_gives_an_error_and_leaves_nothing_running(tmp_path, monkeypatch):
    """A saved guest state that no longer restores (e.g. truncated) is named, with what to do."""
    real = paths.cache_dir()
    # Short: QEMU's unix socket paths under this cache must stay below 108 characters.
    cache = Path(tempfile.mkdtemp(prefix="lk-"))
    # Share the real image and key, but give this test its own (broken) saved state.
    (cache / "images").mkdir(parents=True)
    os.symlink(real / "ssh", cache / "ssh")
    os.symlink(real / "tls", cache / "tls")
    lab_real = Lab(_inventory(tmp_path, {"life-g6": {"ansible_port": 2298, "lab_address": "10.213.9.9"}}))
    img = lab_real.image
    mine = cache / "images" / img.directory.name
    mine.mkdir()
    for name in ("disk.qcow2", "vmlinuz", "initrd.img", "manifest.json"):
        os.symlink(img.directory / name, mine / name)
    # The template this guest's shape restores from (the cache may hold others, e.g. of another CPU count).
    guest = lab_real.spec.guests["life-g6"]
    lab_real.up()  # makes sure the real template exists
    lab_real.down()
    real_template = template_dir(img, guest.memory_mb, guest.cpus, guest.firmware)
    template = mine / "templates" / real_template.name
    template.mkdir(parents=True)
    shutil.copy(real_template / "disk.qcow2", template / "disk.qcow2")
    (template / "memory.state").write_bytes(b"QEVM\0\0\0\3 not a saved state")
    monkeypatch.setenv("LABKIT_CACHE", str(cache))
    lab = Lab(lab_real.spec.inventory)
    stale = r"(?s)life-g6: restoring the saved guest state \S+memory.state failed.*simlab clean"
    with pytest.raises(SimlabError, match=stale):
        lab.up()
    assert _running("labkit-life-g6") == []
    assert not port_in_use(2298)


def test_cli_status_prints_a_table(tmp_path):
    inv = _inventory(tmp_path, {"life-g7": {"ansible_port": 2299, "lab_address": "10.213.9.10"}})
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "simlab"), "--inventory", str(inv), "status"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header, row = out.strip().splitlines()
    assert header.split() == ["HOST", "ROLE", "ADDRESS", "STATE", "UPTIME"]
    assert row.split()[0] == "life-g7" and "stopped" in row
