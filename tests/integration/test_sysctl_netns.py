"""labkit.cluster.sysctl on the real host kernel, inside network namespaces the tests create and delete.

Runs the module through ansible-playbook against localhost. net.* keys are per namespace, so the
host's own settings are never touched; the sysctl.d file lives in a temp directory.
"""

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from playbook_runner import run_playbook


def ns_read(ns: str, key: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, "sysctl", "-n", key], capture_output=True, text=True, check=True
    ).stdout.rstrip("\n")


def host_read(key: str) -> str:
    return Path("/proc/sys", key.replace(".", "/")).read_text().rstrip("\n")


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch):
    """ansible-playbook is found next to this interpreter, whatever PATH the test run has."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")


@pytest.fixture
def netns():
    name = f"labkit-t-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield name
    subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "hosts"
    path.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    return path


def play(*tasks: str) -> str:
    body = "".join(tasks)
    return f"- hosts: localhost\n  gather_facts: false\n  tasks:\n{body}"


def task(title: str, **args) -> str:
    lines = [f"    - name: '{title}'\n      labkit.cluster.sysctl:\n"]
    for key, value in args.items():
        lines.append(f"        {key}: {value}\n")
    lines.append("      register: r\n")
    return "".join(lines)


EXISTING = """# tuned by hand: keep this comment
net.core.somaxconn=1024

  net.ipv4.tcp_rmem =  1 2 3
vm.swappiness = 10
"""


def test_tcp_rmem_whitespace_persist_idempotent(netns, inventory, tmp_path):
    conf = tmp_path / "sysctl.d" / "90-labkit-test.conf"
    conf.parent.mkdir()
    conf.write_text(EXISTING)
    host_before = host_read("net.ipv4.tcp_rmem")
    before = " ".join(ns_read(netns, "net.ipv4.tcp_rmem").split())
    wanted = '"4096\\t87380   6291456"'  # a tab and three spaces: the same value as the kernel's tabs
    p = play(task("set rmem", name="net.ipv4.tcp_rmem", value=wanted, netns=netns, persistent="true", sysctl_file=conf))

    res = run_playbook(p, inventory=inventory, diff=True)
    assert res.rc == 0, res.stdout[-3000:]
    first = res.result("localhost", "set rmem")
    assert first["changed"] and first["runtime_changed"] and first["file_changed"]
    assert first["previous_value"] == before
    assert first["value"] == "4096 87380 6291456"
    assert ns_read(netns, "net.ipv4.tcp_rmem") == "4096\t87380\t6291456"
    assert host_read("net.ipv4.tcp_rmem") == host_before
    assert conf.read_text() == EXISTING.replace("=  1 2 3", "=  4096 87380 6291456")
    assert "-  net.ipv4.tcp_rmem =  1 2 3" in res.stdout and "+  net.ipv4.tcp_rmem =  4096 87380 6291456" in res.stdout

    again = run_playbook(p, inventory=inventory)
    second = again.result("localhost", "set rmem")
    assert again.rc == 0 and second["changed"] is False and again.changed("localhost") == 0
    assert second["previous_value"] == "4096 87380 6291456"


def test_check_mode_changes_nothing_and_shows_diff(netns, inventory, tmp_path):
    conf = tmp_path / "90-check.conf"
    conf.write_text(EXISTING)
    before = ns_read(netns, "net.ipv4.ip_forward")
    p = play(
        task(
            "fwd",
            name="net.ipv4.ip_forward",
            value="true" if before == "0" else "false",
            netns=netns,
            persistent="true",
            sysctl_file=conf,
        )
    )
    res = run_playbook(p, inventory=inventory, check=True, diff=True)
    result = res.result("localhost", "fwd")
    assert res.rc == 0 and result["changed"] and result["runtime_changed"] and result["file_changed"]
    assert ns_read(netns, "net.ipv4.ip_forward") == before
    assert conf.read_text() == EXISTING
    assert f"-net.ipv4.ip_forward = {before}" in res.stdout
    assert "+net.ipv4.ip_forward = " in res.stdout


def test_booleans_previous_value_and_absent(netns, inventory, tmp_path):
    conf = tmp_path / "90-bool.conf"
    conf.write_text(EXISTING)
    host_fwd = host_read("net.ipv4.ip_forward")
    initial = ns_read(netns, "net.ipv4.ip_forward")
    p = play(
        task("on", name="net.ipv4.ip_forward", value="yes", netns=netns, persistent="true", sysctl_file=conf),
        task("off", name="net.ipv4.ip_forward", value="false", netns=netns, persistent="true", sysctl_file=conf),
        task("gone", name="net.ipv4.ip_forward", state="absent", netns=netns, persistent="true", sysctl_file=conf),
        task(
            "not persistent by default in a netns",
            name="net.ipv4.conf.all.rp_filter",
            value=2,
            netns=netns,
            sysctl_file=conf,
        ),
    )
    res = run_playbook(p, inventory=inventory)
    assert res.rc == 0, res.stdout[-3000:]
    on, off = res.result("localhost", "on"), res.result("localhost", "off")
    assert on["value"] == "1" and on["previous_value"] == initial and on["runtime_changed"] == (initial != "1")
    assert off["value"] == "0" and off["previous_value"] == "1" and off["changed"]
    gone = res.result("localhost", "gone")
    assert gone["changed"] and gone["file_changed"] and not gone["runtime_changed"]
    rp = res.result("localhost", "not persistent by default in a netns")
    assert rp["changed"] and rp["sysctl_file"] is None and not rp["file_changed"]
    assert conf.read_text() == EXISTING  # ip_forward added and removed again, the rest untouched
    assert ns_read(netns, "net.ipv4.ip_forward") == "0"
    assert ns_read(netns, "net.ipv4.conf.all.rp_filter") == "2"
    assert host_read("net.ipv4.ip_forward") == host_fwd


def test_waits_for_key_that_appears_later(netns, inventory):
    """A per-interface key appears only once the interface exists, as a module's key appears when it loads."""

    def add_interface_later():
        time.sleep(3)
        subprocess.run(
            ["ip", "netns", "exec", netns, "ip", "link", "add", "lkw0", "type", "veth", "peer", "name", "lkw1"],
            check=True,
        )

    # a new interface takes conf.default's value; ask for the other one so the task has to set it
    wanted = "0" if ns_read(netns, "net.ipv4.conf.default.forwarding") == "1" else "1"
    p = play(task("wait", name="net.ipv4.conf.lkw0.forwarding", value=wanted, netns=netns, wait_timeout=60))
    later = threading.Thread(target=add_interface_later)
    later.start()
    try:
        res = run_playbook(p, inventory=inventory)
    finally:
        later.join()
    result = res.result("localhost", "wait")
    assert res.rc == 0, res.stdout[-3000:]
    assert result["changed"] and result["value"] == wanted
    assert result["waited"] > 0
    assert ns_read(netns, "net.ipv4.conf.lkw0.forwarding") == wanted


def test_missing_lab_key_names_its_module(netns, inventory):
    p = play(task("estats", name="net.ipv4.tcp_estats", value=127, netns=netns, wait_timeout=1))
    started = time.monotonic()
    res = run_playbook(p, inventory=inventory)
    result = res.result("localhost", "estats")
    assert res.failed("localhost") == 1
    assert "tcp_estats_nl" in result["msg"] and netns in result["msg"] and "waited 1s" in result["msg"]
    assert time.monotonic() - started >= 1


def test_refused_value_fails_with_kernel_message(netns, inventory):
    before = ns_read(netns, "net.ipv4.ip_forward")
    p = play(task("bad", name="net.ipv4.ip_forward", value="notanumber", netns=netns))
    res = run_playbook(p, inventory=inventory)
    result = res.result("localhost", "bad")
    assert res.failed("localhost") == 1
    assert "refused" in result["msg"] and result["rc"] != 0
    assert ns_read(netns, "net.ipv4.ip_forward") == before
