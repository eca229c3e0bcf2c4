"""Hostile input to the kmod module: every bad name, path, parameter and combination is refused with a message
that says what to fix, before anything is run or written; and a reload whose load fails puts the previous module
back.

Runs against the simulated kernel of test_kmod_module.py: its stand-in for run_command records every command
(modinfo included), and /etc/modules-load.d, /etc/modprobe.d, /run/labkit/kmod and /lib/modules are in tmp_path.
"""

import os
import shutil
import subprocess

import pytest
from ansible_collections.labkit.cluster.plugins.module_utils import kernel_module as km
from test_kmod_module import RELEASE, run, use_fake_kernel
from tree_snapshot import snapshot

CHANGING = ("modprobe", "insmod", "rmmod", "depmod")


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    return use_fake_kernel(tmp_path, monkeypatch)


def changing_calls(kernel):
    return [c for c in kernel.calls if os.path.basename(c[0]) in CHANGING]


def refused(kernel, tmp_path, capsys, args, *expected, commands_allowed=False):
    """Run the task, assert it failed unchanged with every expected phrase in msg, ran nothing that changes the
    kernel (no command at all unless commands_allowed: refusals of the input come before modinfo) and wrote
    nothing under tmp_path. Returns the result."""
    before = snapshot(tmp_path)
    res = run(args, capsys)
    assert res.get("failed") is True, res
    assert res["changed"] is False
    for phrase in expected:
        assert phrase in res["msg"], res["msg"]
    assert "Traceback" not in res["msg"] and "exception" not in res
    if commands_allowed:
        assert changing_calls(kernel) == []
    else:
        assert kernel.calls == []
    assert snapshot(tmp_path) == before
    assert kernel.loaded == {}
    return res


# ---- module names ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("../../../tmp/evil", "holds '/' or '..'"),
        ("x/../dummy", "holds '/' or '..'"),
        ("..", "holds '/' or '..'"),
        ("dummy\nnumdummies", "control characters ('\\n')"),
        ("dummy\x00", "control characters ('\\x00')"),
        ("dummy numdummies=3", "only letters, digits, '_' and '-'"),
        ("dummy.ko", "only letters, digits, '_' and '-'"),
        ("a" * 56, "at most 55"),
        ("", "module name is empty"),
    ],
)
def test_bad_module_name_refused(kernel, tmp_path, capsys, name, phrase):
    refused(kernel, tmp_path, capsys, {"name": name, "persistent": "present"}, phrase)
    assert not (tmp_path / "tmp").exists()


def test_longest_module_name_passes_validation(kernel, capsys):
    res = run({"name": "a" * 55}, capsys)
    assert "not available for kernel" in res["msg"]  # the fake kernel has no such module, but the name is valid


def test_module_name_from_the_file_is_checked_too(kernel, tmp_path, capsys):
    ko = tmp_path / "odd.ko"
    kernel.add_ko(ko, "../../odd", {}, "S")
    res = refused(
        kernel,
        tmp_path,
        capsys,
        {"path": str(ko), "persistent": "present"},
        "does not name a usable module",
        commands_allowed=True,
    )
    assert "holds '/' or '..'" in res["msg"]


# ---- install_dir -------------------------------------------------------------------------------------------
@pytest.fixture
def build(kernel, tmp_path):
    ko = tmp_path / "build" / "labkit_fixture.ko"
    ko.parent.mkdir()
    kernel.add_ko(ko, "labkit_fixture", {"level": "1"}, "SRC1")
    return ko


@pytest.mark.parametrize(
    "case",
    [
        ("../../../../etc", "holds '..'"),
        ("updates/../../..", "holds '..'"),
        ("/etc/evil", "is absolute"),
        ("", "install_dir is empty"),
        ("./", "install_dir is empty"),
        ("updates\n", "control characters"),
    ],
)
def test_install_dir_outside_the_module_tree_refused(kernel, tmp_path, capsys, build, case):
    install_dir, phrase = case
    refused(kernel, tmp_path, capsys, {"path": str(build), "install": True, "install_dir": install_dir}, phrase)


def test_install_dir_through_a_symlink_out_of_the_tree_refused(kernel, tmp_path, capsys, build):
    outside = tmp_path / "usr_src_headers"
    outside.mkdir()
    (kernel.modules_dir / "build").symlink_to(outside)  # as /lib/modules/<release>/build is
    res = refused(
        kernel,
        tmp_path,
        capsys,
        {"path": str(build), "install": True, "install_dir": "build"},
        "outside",
        "through a symbolic link",
        commands_allowed=True,
    )
    assert str(outside) in res["msg"]


def test_install_dir_is_normalised(kernel, capsys, build):
    dest = kernel.modules_dir / "extra" / "labkit_fixture.ko"
    kernel.files["labkit_fixture"] = dict(kernel.files[str(build)], filename=str(dest))
    res = run({"path": str(build), "install": True, "install_dir": "./extra//"}, capsys)
    assert res["installed"] and res["filename"] == str(dest) and dest.exists()


# ---- parameters --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "phrases"),
    [
        # the newline would end the options line and start an `install` line: a root command at the next modprobe
        ({"numdummies": "1\ninstall dummy /bin/sh -c 'touch /tmp/pwned'"}, ["control characters ('\\n')"]),
        ({"numdummies": "1\rx"}, ["control characters ('\\r')"]),
        ({"numdummies": "1\x00"}, ["control characters ('\\x00')"]),
        ({"numdummies": "1\x1b[2J"}, ["control characters ('\\x1b')"]),
        ({"numdummies": "1\u2028install"}, ["control characters ('\\u2028')"]),
        ({"numdummies": ["1", "2\nx"]}, ["control characters"]),
        ({"numdummies\ninstall dummy /bin/sh": 1}, ["parameter name", "control characters"]),
        ({"numdummies=1 install": 1}, ["is not a kernel parameter name", "no spaces"]),
        ({"a b": 1}, ["is not a kernel parameter name"]),
        ({"-r": 1}, ["must start with a letter or '_'"]),
        ({"": 1}, ["is empty"]),
        ({"x" * 256: 1}, ["longer than 255"]),
        # a value with a space and a quote used to end in a traceback
        ({"numdummies": 'a "b" c'}, ["holds a double quote", "no escape"]),
        ({"numdummies": 'a"b'}, ["holds a double quote"]),
        ({"numdummies": {"nested": 1}}, ["cannot be a dictionary"]),
        ({"numdummies": [[1, 2]]}, ["arrays are one level"]),
        ({"numdummies": ["1,2", "3"]}, ["holds ','"]),
        ({"num-dummies": 1, "num_dummies": 2}, ["same parameter to the kernel"]),
    ],
)
def test_bad_parameters_refused(kernel, tmp_path, capsys, params, phrases):
    refused(kernel, tmp_path, capsys, {"name": "dummy", "params": params, "persistent": "present"}, *phrases)
    assert not (tmp_path / "etc").exists()


def test_every_problem_is_named_at_once(kernel, tmp_path, capsys):
    res = refused(
        kernel,
        tmp_path,
        capsys,
        {
            "name": "../x",
            "params": {"a b": 1, "ok": "x\ny"},
            "install_dir": "..",
            "state": "absent",
            "persistent": "present",
        },
        "holds '/' or '..'",
        "'a b' is not a kernel parameter name",
        "parameter ok: the value holds control characters",
        "install_dir '..' holds '..'",
        "state: absent with persistent: present",
    )
    assert res["msg"].count("; ") >= 4


def test_values_with_spaces_are_quoted_as_the_kernel_parses_them(kernel, capsys):
    kernel.files["dummy"]["params"].update({"tag": "", "names": ""})
    params = {"numdummies": 2, "tag": "lab run 7", "names": ["a b", "c"], "mark": "à"}
    kernel.files["dummy"]["params"]["mark"] = ""
    res = run({"name": "dummy", "params": params, "persistent": "present"}, capsys)
    assert res["changed"], res
    line = 'options dummy mark="à" names="a b,c" numdummies=2 tag="lab run 7"'
    opts = kernel.root / "etc" / "modprobe.d" / "zz-dummy.conf"
    assert opts.read_text().splitlines() == [opts.read_text().splitlines()[0], line]
    assert ["/usr/sbin/modprobe", "dummy", 'mark="à"', 'names="a b,c"', "numdummies=2", 'tag="lab run 7"'] in res[
        "commands"
    ]
    assert km.parse_options(opts.read_text(), "dummy") == {
        "mark": "à",
        "names": "a b,c",
        "numdummies": "2",
        "tag": "lab run 7",
    }


@pytest.mark.skipif(shutil.which("modprobe") is None, reason="needs kmod's modprobe to read the file")
def test_modprobe_reads_one_options_line_and_no_command(kernel, capsys):
    """What the real modprobe makes of the file kmod writes: one options line, no install/remove command."""
    params = {"numdummies": 2, "tag": "lab run 7 install dummy /bin/sh"}
    kernel.files["dummy"]["params"]["tag"] = ""
    run({"name": "dummy", "params": params, "persistent": "present"}, capsys)
    opts = kernel.root / "etc" / "modprobe.d" / "zz-dummy.conf"
    shown = subprocess.run(
        ["modprobe", "-C", str(opts), "--show-config"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    # --show-config adds the options of the kernel command line: keep what concerns dummy
    shown = [line for line in shown if line.split()[1:2] == ["dummy"]]
    assert shown == ['options dummy numdummies=2 tag="lab run 7 install dummy /bin/sh"']


# ---- paths and conflicting options ---------------------------------------------------------------------------
def test_directory_as_ko_says_it_is_a_directory(kernel, tmp_path, capsys):
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    res = refused(kernel, tmp_path, capsys, {"path": str(build_dir)}, "is a directory, expected a .ko file")
    assert "does not exist" not in res["msg"]


def test_missing_ko_says_it_does_not_exist(kernel, tmp_path, capsys):
    refused(kernel, tmp_path, capsys, {"path": str(tmp_path / "none.ko")}, "does not exist")


@pytest.mark.parametrize(
    ("path", "phrase"),
    [("build/labkit_fixture.ko", "is relative"), ("-r.ko", "is relative"), ("/tmp/a\n.ko", "control characters")],
)
def test_bad_path_refused(kernel, tmp_path, capsys, path, phrase):
    refused(kernel, tmp_path, capsys, {"path": path}, phrase)


def test_absent_with_persistent_present_refused(kernel, tmp_path, capsys):
    run({"name": "dummy"}, capsys)
    kernel.calls.clear()
    before = snapshot(tmp_path)
    res = run({"name": "dummy", "state": "absent", "persistent": "present"}, capsys)
    assert res["failed"] and res["changed"] is False
    assert "state: absent with persistent: present" in res["msg"] and "persistent: absent" in res["msg"]
    assert kernel.calls == [] and snapshot(tmp_path) == before and "dummy" in kernel.loaded


def test_install_without_path_refused(kernel, tmp_path, capsys):
    refused(kernel, tmp_path, capsys, {"name": "dummy", "install": True}, "install: true needs path")


# ---- a reload whose load fails -------------------------------------------------------------------------------
def failing(kernel, monkeypatch, refuse):
    """Make the stand-in kmod fail every command refuse(args) picks, as the kernel does with an invalid value."""
    real = kernel.run_command

    def run_command(args, **kwargs):
        if refuse(args):
            kernel.calls.append(args)
            return 1, "", f"{os.path.basename(args[0])}: ERROR: could not insert '{args[1]}': Invalid argument\n"
        return real(args, **kwargs)

    monkeypatch.setattr(kernel, "run_command", run_command)
    return real


def test_failed_reload_restores_the_previous_module_and_params(kernel, capsys, monkeypatch):
    run({"name": "dummy", "params": {"numdummies": 3}}, capsys)
    real = failing(kernel, monkeypatch, lambda args: args[1:] == ["dummy", "numdummies=5"])
    res = run({"name": "dummy", "params": {"numdummies": 5}, "reload": True}, capsys)
    assert res["failed"] and res["changed"] is True and res["restored"] is True
    assert "modprobe dummy numdummies=5 failed (rc=1)" in res["msg"] and "Invalid argument" in res["msg"]
    assert "The previous module dummy was restored" in res["msg"] and "numdummies=3" in res["msg"]
    assert res["rc"] == 1 and "Invalid argument" in res["stderr"] and res["cmd"][-1] == "numdummies=5"
    assert res["commands"] == [
        ["/usr/sbin/modprobe", "-r", "dummy"],
        ["/usr/sbin/modprobe", "dummy", "numdummies=5"],
        ["/usr/sbin/modprobe", "dummy", "numdummies=3"],
    ]
    assert kernel.loaded["dummy"]["params"]["numdummies"] == "3"
    # the restored load is recorded: the next run knows the hidden value again
    monkeypatch.setattr(kernel, "run_command", real)
    again = run({"name": "dummy", "params": {"numdummies": 3}}, capsys)
    assert again["changed"] is False and again["unverified_params"] == [] and again["params"] == {"numdummies": "3"}


def test_failed_reload_and_failed_restore_report_both_errors(kernel, capsys, monkeypatch):
    run({"name": "dummy", "params": {"numdummies": 3}}, capsys)
    failing(kernel, monkeypatch, lambda args: args[0].endswith("modprobe") and args[1] == "dummy")
    res = run({"name": "dummy", "params": {"numdummies": 5}, "reload": True}, capsys)
    assert res["failed"] and res["changed"] is True and res["restored"] is False
    assert "modprobe dummy numdummies=5 failed" in res["msg"]
    assert "Restoring the previous module failed too, so dummy is not loaded" in res["msg"]
    assert "modprobe dummy numdummies=3 failed" in res["msg"]
    assert res["restore_error"]["cmd"][-1] == "numdummies=3"
    assert "dummy" not in kernel.loaded


def test_failed_reload_from_path_reloads_the_same_file(kernel, tmp_path, capsys, monkeypatch):
    ko = tmp_path / "labkit_fixture.ko"
    kernel.add_ko(ko, "labkit_fixture", {"level": "1"}, "SRC1")
    run({"path": str(ko), "params": {"level": 4}}, capsys)
    failing(kernel, monkeypatch, lambda args: args[-1] == "level=9")
    res = run({"path": str(ko), "params": {"level": 9}, "reload": True}, capsys)
    assert res["failed"] and res["changed"] and res["restored"]
    assert res["commands"][-1] == ["/usr/sbin/insmod", str(ko), "level=4"]
    assert kernel.loaded["labkit_fixture"]["params"]["level"] == "4"


def test_failed_reload_after_install_puts_the_previous_file_back(kernel, tmp_path, capsys, monkeypatch):
    ko = tmp_path / "build" / "labkit_fixture.ko"
    ko.parent.mkdir()
    kernel.add_ko(ko, "labkit_fixture", {"level": "1"}, "SRC1")
    dest = kernel.modules_dir / "updates" / "labkit_fixture.ko"
    kernel.files["labkit_fixture"] = dict(kernel.files[str(ko)], filename=str(dest))
    run({"path": str(ko), "install": True, "params": {"level": 2}}, capsys)
    (kernel.modules_dir / "modules.dep").write_text("updates/labkit_fixture.ko:\n")
    old = dest.read_bytes()

    kernel.add_ko(ko, "labkit_fixture", {"level": "1"}, "SRC2")  # a new build that the kernel refuses
    kernel.files["labkit_fixture"] = dict(kernel.files[str(ko)], filename=str(dest))
    real = kernel.run_command

    def run_command(args, **kwargs):
        # modprobe loads what the file under /lib/modules is now
        if args[0].endswith("modprobe") and args[1] == "labkit_fixture":
            if dest.read_bytes() != old:
                kernel.calls.append(args)
                return 1, "", "modprobe: ERROR: could not insert 'labkit_fixture': Unknown symbol in module\n"
            kernel.files["labkit_fixture"] = dict(kernel.files["labkit_fixture"], srcversion="SRC1")
        return real(args, **kwargs)

    monkeypatch.setattr(kernel, "run_command", run_command)
    res = run({"path": str(ko), "install": True, "params": {"level": 2}, "reload": True}, capsys)
    assert res["failed"] and res["changed"] and res["restored"], res
    assert "needs symbols of a module that is not loaded" in res["msg"]
    assert f"put the previous {dest} back" in res["msg"]
    assert dest.read_bytes() == old
    assert res["commands"][-2:] == [
        ["/usr/sbin/depmod", "-a", RELEASE],
        ["/usr/sbin/modprobe", "labkit_fixture", "level=2"],
    ]
    assert kernel.loaded["labkit_fixture"]["srcversion"] == "SRC1"


def test_failed_first_load_reports_no_change(kernel, capsys, monkeypatch):
    failing(kernel, monkeypatch, lambda args: args[0].endswith("modprobe"))
    res = run({"name": "dummy", "params": {"numdummies": 5}}, capsys)
    assert res["failed"] and res["changed"] is False and "restored" not in res


def test_failed_load_after_install_reports_the_change(kernel, tmp_path, capsys, monkeypatch, build):
    dest = kernel.modules_dir / "updates" / "labkit_fixture.ko"
    kernel.files["labkit_fixture"] = dict(kernel.files[str(build)], filename=str(dest))
    failing(kernel, monkeypatch, lambda args: args[0].endswith("modprobe"))
    res = run({"path": str(build), "install": True}, capsys)
    assert res["failed"] and res["changed"] is True and dest.exists()
