"""The sysctl module's decisions, run in-process against a /proc/sys tree in a temp directory.

The real kernel is exercised by tests/integration/test_sysctl_netns.py; this checks check mode,
diff, previous value, waiting and the missing-key messages quickly and without root effects.
"""

import contextlib
import json
import multiprocessing
import os
import sys
import threading
import time

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.module_utils import sysctl_file as sf
from ansible_collections.labkit.cluster.plugins.modules import sysctl


@pytest.fixture
def proc(tmp_path, monkeypatch):
    root = tmp_path / "proc_sys"
    (root / "net" / "ipv4").mkdir(parents=True)
    (root / "net" / "ipv4" / "tcp_rmem").write_text("4096\t131072\t6291456\n")
    (root / "net" / "ipv4" / "ip_forward").write_text("0\n")
    monkeypatch.setattr(sf, "PROC_SYS", str(root))
    # module.warn() collects into a process-wide dict: start each test without earlier tests' warnings
    monkeypatch.setattr(ansible_warnings, "_global_warnings", {})
    # Once controller code is imported in this process (simlab reads inventories with it), warn()
    # goes to the controller's display instead; these tests run modules as on a target.
    monkeypatch.setattr(module_utils_internal, "is_controller", False)
    return root


def run(args, capsys, check=False, diff=False):
    args = dict(args)
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = diff
    with patch_module_args(args), pytest.raises(SystemExit):
        sysctl.main()
    return json.loads(capsys.readouterr().out)


def test_sets_value_persists_and_reports_previous(proc, tmp_path, capsys):
    conf = tmp_path / "90-test.conf"
    conf.write_text("# keep me\nvm.swappiness = 10\n")
    res = run({"name": "net.ipv4.tcp_rmem", "value": "4096  87380\t6291456", "sysctl_file": str(conf)}, capsys)
    assert res["changed"] and res["runtime_changed"] and res["file_changed"]
    assert res["previous_value"] == "4096 131072 6291456"
    assert res["value"] == "4096 87380 6291456"
    assert (proc / "net/ipv4/tcp_rmem").read_text() == "4096 87380 6291456"
    assert conf.read_text() == "# keep me\nvm.swappiness = 10\nnet.ipv4.tcp_rmem = 4096 87380 6291456\n"

    again = run({"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456", "sysctl_file": str(conf)}, capsys)
    assert again["changed"] is False
    assert again["previous_value"] == again["value"] == "4096 87380 6291456"


def test_check_mode_with_diff_changes_nothing(proc, tmp_path, capsys):
    conf = tmp_path / "90-test.conf"
    res = run({"name": "net.ipv4.ip_forward", "value": True, "sysctl_file": str(conf)}, capsys, check=True, diff=True)
    assert res["changed"]
    assert res["value"] == "1"
    assert (proc / "net/ipv4/ip_forward").read_text() == "0\n"
    assert not conf.exists()
    runtime, filediff = res["diff"]
    assert runtime["before"] == "net.ipv4.ip_forward = 0\n"
    assert runtime["after"] == "net.ipv4.ip_forward = 1\n"
    assert filediff["after"] == "net.ipv4.ip_forward = 1\n"


def test_boolean_words_become_numbers(proc, tmp_path, capsys):
    res = run({"name": "net.ipv4.ip_forward", "value": "yes", "sysctl_file": str(tmp_path / "f.conf")}, capsys)
    assert res["value"] == "1"
    assert (tmp_path / "f.conf").read_text() == "net.ipv4.ip_forward = 1\n"


def test_reload_false_only_edits_file(proc, tmp_path, capsys):
    res = run(
        {"name": "net.ipv4.ip_forward", "value": 1, "reload": False, "sysctl_file": str(tmp_path / "f.conf")}, capsys
    )
    assert res["changed"] and res["file_changed"] and not res["runtime_changed"]
    assert (proc / "net/ipv4/ip_forward").read_text() == "0\n"


def test_not_persistent_leaves_file_alone(proc, tmp_path, capsys):
    res = run(
        {"name": "net.ipv4.ip_forward", "value": 1, "persistent": False, "sysctl_file": str(tmp_path / "f.conf")},
        capsys,
    )
    assert res["runtime_changed"] and not res["file_changed"] and res["sysctl_file"] is None
    assert not (tmp_path / "f.conf").exists()


def test_absent_removes_only_that_key(proc, tmp_path, capsys):
    conf = tmp_path / "f.conf"
    conf.write_text("a.b = 1\nnet.ipv4.ip_forward = 1\n# c\n")
    res = run({"name": "net.ipv4.ip_forward", "state": "absent", "sysctl_file": str(conf)}, capsys)
    assert res["changed"] and res["file_changed"]
    assert conf.read_text() == "a.b = 1\n# c\n"
    assert (proc / "net/ipv4/ip_forward").read_text() == "0\n"  # a sysctl cannot be unset
    assert run({"name": "net.ipv4.ip_forward", "state": "absent", "sysctl_file": str(conf)}, capsys)["changed"] is False


def test_missing_known_key_names_the_module(proc, tmp_path, capsys):
    res = run({"name": "net.ipv4.tcp_estats", "value": 127, "sysctl_file": str(tmp_path / "f.conf")}, capsys)
    assert res["failed"]
    assert "tcp_estats_nl" in res["msg"]
    assert not (tmp_path / "f.conf").exists()
    res = run({"name": "net.dcpim.epoch", "value": 1, "sysctl_file": str(tmp_path / "f.conf")}, capsys)
    assert "dcpim_module" in res["msg"]
    res = run({"name": "net.nothing.here", "value": 1, "sysctl_file": str(tmp_path / "f.conf")}, capsys)
    assert "check the name" in res["msg"]


def test_ignoreerrors_edits_file_for_missing_key(proc, tmp_path, capsys):
    res = run(
        {"name": "net.dcpim.epoch", "value": 3, "ignoreerrors": True, "sysctl_file": str(tmp_path / "f.conf")}, capsys
    )
    assert res["changed"] and res["file_changed"] and not res["runtime_changed"]
    assert "dcpim_module" in json.dumps(res["warnings"])


def test_waits_for_key_to_appear(proc, tmp_path, capsys):
    def register_later():
        time.sleep(0.8)
        (proc / "net" / "labkit_fixture").mkdir()
        (proc / "net" / "labkit_fixture" / "level").write_text("1\n")

    thread = threading.Thread(target=register_later)
    thread.start()
    try:
        res = run({"name": "net.labkit_fixture.level", "value": 7, "wait_timeout": 10, "persistent": False}, capsys)
    finally:
        thread.join()
    assert res["changed"], res
    assert 0.5 <= res["waited"] < 5
    assert res["previous_value"] == "1" and res["value"] == "7"


def test_wait_times_out_with_hint(proc, capsys):
    started = time.monotonic()
    res = run({"name": "net.labkit_fixture.level", "value": 7, "wait_timeout": 1, "persistent": False}, capsys)
    assert 1 <= time.monotonic() - started < 5
    assert res["failed"] and "waited 1s" in res["msg"] and "labkit_fixture" in res["msg"]


def test_verify_reports_clamped_value(proc, tmp_path, capsys, monkeypatch):
    real_write = sysctl.SysctlKey.write

    def clamping_write(self, value):
        real_write(self, "5")

    monkeypatch.setattr(sysctl.SysctlKey, "write", clamping_write)
    res = run({"name": "net.ipv4.ip_forward", "value": 9, "persistent": False}, capsys)
    assert res["failed"] and "reads back" in res["msg"] and res["value"] == "5"


def test_missing_netns_fails_with_fix(proc, capsys):
    res = run({"name": "net.ipv4.ip_forward", "value": 1, "netns": "labkit-no-such-ns"}, capsys)
    assert res["failed"] and "ip netns add labkit-no-such-ns" in res["msg"]


def test_bare_file_name_goes_to_sysctl_d():
    args = {"name": "a.b", "value": 1, "sysctl_file": "90-x.conf"}
    with patch_module_args(args):
        key = sysctl.SysctlKey(sysctl.build_module())
    assert key.file_path == "/etc/sysctl.d/90-x.conf"
    assert key.persistent is True
    with patch_module_args({"name": "a.b", "value": 1, "netns": "x"}):
        assert sysctl.SysctlKey(sysctl.build_module()).persistent is False


def test_symlinked_sysctl_file_is_written_through(proc, tmp_path, capsys):
    # Debian: /etc/sysctl.d/99-sysctl.conf -> ../sysctl.conf
    real = tmp_path / "sysctl.conf"
    real.write_text("vm.swappiness = 10\n")
    (tmp_path / "sysctl.d").mkdir()
    link = tmp_path / "sysctl.d" / "99-sysctl.conf"
    link.symlink_to("../sysctl.conf")
    res = run({"name": "net.ipv4.ip_forward", "value": 1, "reload": False, "sysctl_file": str(link)}, capsys)
    assert res["file_changed"]
    assert link.is_symlink()
    assert real.read_text() == "vm.swappiness = 10\nnet.ipv4.ip_forward = 1\n"


def _set_keys_in_file(path, worker, count):
    sys.stdout = open(os.devnull, "w")  # the forked worker's module output is not needed
    for index in range(count):
        args = {"name": "net.w%d.k%d" % (worker, index), "value": index, "reload": False, "sysctl_file": path}
        with patch_module_args(args), contextlib.suppress(SystemExit):
            sysctl.main()


def test_concurrent_tasks_on_one_file_keep_every_key(proc, tmp_path):
    path = str(tmp_path / "99-many.conf")
    workers, count = 3, 40
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_set_keys_in_file, args=(path, worker, count)) for worker in range(workers)]
    for process in procs:
        process.start()
    for process in procs:
        process.join(180)
        assert process.exitcode == 0
    keys = [line.split(" = ")[0] for line in open(path).read().splitlines()]
    assert sorted(keys) == sorted("net.w%d.k%d" % (w, i) for w in range(workers) for i in range(count))
    assert sorted(os.listdir(tmp_path)) == ["99-many.conf", "proc_sys"]


def test_backup_keeps_the_previous_file(proc, tmp_path, capsys):
    conf = tmp_path / "f.conf"
    conf.write_text("net.ipv4.ip_forward = 0\n")
    res = run({"name": "net.ipv4.ip_forward", "value": 1, "backup": True, "sysctl_file": str(conf)}, capsys)
    assert res["backup_file"].startswith(str(conf) + ".") and res["backup_file"].endswith("~")
    assert open(res["backup_file"]).read() == "net.ipv4.ip_forward = 0\n"
    assert conf.read_text() == "net.ipv4.ip_forward = 1\n"
