"""labkit.cluster.sysctl with hostile input: each refusal says what to fix, and nothing is read or written.

The module runs in-process against a /proc/sys tree in a temp directory, next to a "victim" file that a
traversal would reach; every test compares the whole temp directory before and after.
"""

import errno
import json
import os

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.module_utils import atomic_file
from ansible_collections.labkit.cluster.plugins.module_utils import sysctl_file as sf
from ansible_collections.labkit.cluster.plugins.modules import sysctl
from tree_snapshot import snapshot

SECRET = "TOPSECRET-do-not-leak\n"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    root = tmp_path / "proc_sys"
    (root / "net" / "ipv4").mkdir(parents=True)
    (root / "net" / "ipv4" / "ip_forward").write_text("0\n")
    (root / "kernel").mkdir()
    (root / "kernel" / "pid_max").write_text("4194304\n")
    (tmp_path / "victim").write_text(SECRET)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "90-lab.conf").write_text("# by hand\nvm.swappiness = 10\n")
    monkeypatch.setattr(sf, "PROC_SYS", str(root))
    (tmp_path / "sysctl.d").mkdir()
    monkeypatch.setattr(sf, "SYSCTL_D", str(tmp_path / "sysctl.d"))
    # relative paths that escape resolve inside tmp_path, where the snapshot sees them
    (tmp_path / "cwd" / "here").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "cwd" / "here")
    monkeypatch.setattr(ansible_warnings, "_global_warnings", {})
    monkeypatch.setattr(module_utils_internal, "is_controller", False)
    return tmp_path


def run(args, capsys, check=False):
    args = dict(args)
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        sysctl.main()
    out = capsys.readouterr().out
    assert SECRET.strip() not in out
    return json.loads(out)


def refused(lab, capsys, args, *fragments, check=False):
    """Run the module, assert it failed with every fragment in its message and left the directory as it was."""
    before = snapshot(lab)
    args.setdefault("sysctl_file", str(lab / "conf" / "90-lab.conf"))
    res = run(args, capsys, check=check)
    assert res.get("failed"), res
    for fragment in fragments:
        assert fragment in res["msg"], res["msg"]
    assert res["changed"] is False
    assert snapshot(lab) == before
    return res


@pytest.mark.parametrize(
    "name",
    [
        "net/../../victim",
        "kernel/../../victim",
        "net/ipv4/../../../victim",
        "net.//.//.victim",  # dotted form: '/' is '.', so '//' is '..'
        "net/./ipv4/ip_forward",
    ],
)
@pytest.mark.parametrize("check", [False, True])
def test_traversal_is_refused(lab, capsys, name, check):
    res = refused(lab, capsys, {"name": name, "value": "pwned"}, "component", "/proc/sys", check=check)
    assert res.get("previous_value") is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("/net/ipv4/ip_forward", "starts with '/'"),
        ("net..ipv4.ip_forward", "an empty component"),
        ("net.ipv4.", "an empty component"),
        ("net//ipv4/ip_forward", "an empty component"),
        ("-net.ipv4.ip_forward", "starts with '-'"),
        ("#net.ipv4.ip_forward", "starts with '#'"),
        ("net.ipv4.ip_forward=1", "contains '='"),
        ("net.ipv4." + "x" * 256, "longer than 255 bytes"),
    ],
)
def test_malformed_names_are_refused(lab, capsys, name, fragment):
    refused(lab, capsys, {"name": name, "value": 1}, fragment)


def test_empty_name_is_refused(lab, capsys):
    refused(lab, capsys, {"name": "", "value": 1}, "name is empty")


def test_symlink_out_of_proc_sys_is_refused(lab, capsys):
    (lab / "outside").mkdir()
    (lab / "outside" / "x").write_text("0\n")
    (lab / "proc_sys" / "net" / "evil").symlink_to(lab / "outside")
    refused(lab, capsys, {"name": "net.evil.x", "value": 1}, "outside")


@pytest.mark.parametrize(
    "name",
    [
        "net.ipv4.ip_forward\nkernel.core_pattern = |/tmp/pwn %p",
        "net.ipv4.ip_forward\r",
        "net.ipv4.ip_forward\x00",
        "net.ipv4.\x1bip_forward",
        "net.ipv4.ip_forward\x85",
        "net\t.x",
    ],
)
def test_control_characters_in_name_are_refused(lab, capsys, name):
    refused(lab, capsys, {"name": name, "value": 1, "reload": False}, "control or non-printable characters")


@pytest.mark.parametrize("name", [" net.ipv4.ip_forward", "net.ipv4.ip_forward ", "net.ipv4 .ip_forward"])
def test_whitespace_in_name_is_refused(lab, capsys, name):
    refused(lab, capsys, {"name": name, "value": 1}, "whitespace")


@pytest.mark.parametrize(
    "value",
    [
        "1\nkernel.core_pattern = |/tmp/pwn %p",
        "1\r\nkernel.modprobe = /tmp/pwn",
        "1\x00",
        "\x07",
        "1\u2028kernel.x = 1",
    ],
)
@pytest.mark.parametrize("reload", [True, False])
def test_control_characters_in_value_are_refused(lab, capsys, value, reload):
    refused(lab, capsys, {"name": "net.ipv4.ip_forward", "value": value, "reload": reload}, "value", "one line")


@pytest.mark.parametrize(("value", "kind"), [([1, 2], "list"), ({"a": 1}, "dict")])
def test_structured_values_are_refused(lab, capsys, value, kind):
    refused(lab, capsys, {"name": "net.ipv4.ip_forward", "value": value}, "not a %s" % kind, "one string")


@pytest.mark.parametrize("key", ["kernel.pid_max", "vm.swappiness", "kernel/core_pattern", "fs.file-max"])
def test_netns_refuses_host_wide_keys(lab, capsys, key):
    # refused before the namespace is even looked up: it need not exist
    args = {"name": key, "value": 1, "netns": "labkit-no-such-ns"}
    refused(lab, capsys, args, "not a network namespace key", "net.*")


@pytest.mark.parametrize("netns", ["../../etc", "a b", "-force", "..", "ns\n"])
def test_hostile_netns_names_are_refused(lab, capsys, netns):
    refused(lab, capsys, {"name": "net.ipv4.ip_forward", "value": 1, "netns": netns}, "netns")


def test_negative_wait_timeout_is_refused(lab, capsys):
    refused(lab, capsys, {"name": "net.ipv4.ip_forward", "value": 1, "wait_timeout": -5}, "wait_timeout is -5")


@pytest.mark.parametrize("check", [False, True])
def test_directory_as_sysctl_file_is_refused(lab, capsys, check):
    args = {"name": "net.ipv4.ip_forward", "value": 1, "sysctl_file": str(lab / "conf")}
    refused(lab, capsys, args, "is a directory", check=check)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("..", "is a directory"),
        ("sub/90-x.conf", "relative path"),
        ("../../tmp/x.conf", "relative path"),
    ],
)
def test_odd_sysctl_file_paths_are_refused(lab, capsys, path, fragment):
    refused(lab, capsys, {"name": "net.ipv4.ip_forward", "value": 1, "sysctl_file": path}, fragment)


def test_control_characters_in_sysctl_file_are_refused(lab, capsys):
    path = str(lab / "conf" / "90-x.conf\nkernel.x = 1")
    refused(lab, capsys, {"name": "net.ipv4.ip_forward", "value": 1, "sysctl_file": path}, "control characters")


def test_unreadable_sysctl_file_fails_before_the_running_value_changes(lab, capsys):
    (lab / "afile").write_text("")
    path = str(lab / "afile" / "90-x.conf")  # a path through a regular file: NotADirectoryError
    refused(lab, capsys, {"name": "net.ipv4.ip_forward", "value": 1, "sysctl_file": path}, "cannot read sysctl_file")


def test_value_the_kernel_refuses_fails_with_a_fix_and_writes_nothing(lab, capsys, monkeypatch):
    proc_file = str(lab / "proc_sys" / "net" / "ipv4" / "ip_forward")

    def kernel_open(path, mode="r", *args, **kwargs):
        if path == proc_file and "w" in mode:
            raise OSError(errno.EINVAL, "Invalid argument")
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(sysctl, "open", kernel_open, raising=False)
    for value in (99999999999999999999, "1.5", -7):
        refused(lab, capsys, {"name": "net.ipv4.ip_forward", "value": value}, "the kernel refused", "range")


def test_clamped_value_fails_with_changed_true_and_file_untouched(lab, capsys, monkeypatch):
    real_write = sysctl.SysctlKey.write
    monkeypatch.setattr(sysctl.SysctlKey, "write", lambda self, value: real_write(self, "2"))
    conf = lab / "conf" / "90-lab.conf"
    res = run({"name": "net.ipv4.ip_forward", "value": 65536, "sysctl_file": str(conf)}, capsys)
    assert res["failed"] and "reads back" in res["msg"]
    assert res["changed"] is True and res["runtime_changed"] is True and res["file_changed"] is False
    assert res["previous_value"] == "0" and res["value"] == "2"
    assert conf.read_text() == "# by hand\nvm.swappiness = 10\n"


def test_file_write_failure_after_runtime_change_reports_changed(lab, capsys, monkeypatch):
    def disk_full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_file, "atomic_write", disk_full)
    conf = lab / "conf" / "90-lab.conf"
    res = run({"name": "net.ipv4.ip_forward", "value": 1, "sysctl_file": str(conf)}, capsys)
    assert res["failed"] and "cannot write sysctl_file" in res["msg"] and "No space left" in res["msg"]
    assert res["changed"] is True and res["runtime_changed"] is True and res["file_changed"] is False
    assert (lab / "proc_sys" / "net" / "ipv4" / "ip_forward").read_text() == "1"
    assert conf.read_text() == "# by hand\nvm.swappiness = 10\n"
    assert sorted(os.listdir(lab / "conf")) == ["90-lab.conf"]


def test_a_valid_key_with_dots_in_an_interface_name_still_works(lab, capsys):
    (lab / "proc_sys" / "net" / "ipv4" / "conf" / "eth0.100").mkdir(parents=True)
    (lab / "proc_sys" / "net" / "ipv4" / "conf" / "eth0.100" / "forwarding").write_text("0\n")
    conf = lab / "conf" / "90-lab.conf"
    res = run({"name": "net/ipv4/conf/eth0.100/forwarding", "value": 1, "sysctl_file": str(conf)}, capsys)
    assert res["changed"] and not res.get("failed"), res
    assert (lab / "proc_sys" / "net" / "ipv4" / "conf" / "eth0.100" / "forwarding").read_text() == "1"
    assert conf.read_text().endswith("net/ipv4/conf/eth0.100/forwarding = 1\n")
