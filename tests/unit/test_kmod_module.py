"""The kmod module's decisions against a simulated kernel.

The host kernel cannot load modules, so this drives kmod.main() with /proc/modules, /sys/module and
/lib/modules trees in a temp directory and a stand-in for modprobe/insmod/rmmod/modinfo/depmod that
updates them as the kernel would. Real loading is in tests/integration/test_kmod_lab.py (sim guests);
real modinfo/vermagic on a real .ko is in test_kmod_fixture.py.
"""

import json
import os
import shlex

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.module_utils import kernel_module as km
from ansible_collections.labkit.cluster.plugins.modules import kmod

RELEASE = os.uname()[2]
VERMAGIC = f"{RELEASE} SMP preempt mod_unload modversions "


class FakeKernel:
    """Just enough of a kernel and kmod for the module: files on disk, loaded modules, sysfs."""

    def __init__(self, root):
        self.root = root
        self.modules_dir = root / "lib_modules" / RELEASE
        self.sys = root / "sys_module"
        self.proc = root / "proc_modules"
        self.modules_dir.mkdir(parents=True)
        self.sys.mkdir()
        self.proc.write_text("")
        (self.modules_dir / "modules.builtin").write_text("kernel/drivers/net/loop.ko\n")
        (self.modules_dir / "modules.dep").write_text("")
        self.files = {}  # name or path -> modinfo dict (srcversion, params defaults)
        self.loaded = {}  # name -> {"params": {}, "srcversion": str, "holders": []}
        self.calls = []
        self.loads = 0  # each load lands at another address, as in the kernel
        self.boot_id = root / "boot_id"
        self.boot_id.write_text("11111111-2222-3333-4444-555555555555\n")
        self.stat = root / "proc_stat"
        self.stat.write_text("cpu  1 2 3\nbtime 1700000000\nprocesses 42\n")
        # as systemd ships it: without kmod's zz- name, /etc/modprobe.d/dummy.conf would lose to this file
        self.lib_modprobe = root / "usr_lib_modprobe.d"
        self.lib_modprobe.mkdir()
        (self.lib_modprobe / "systemd.conf").write_text("options dummy numdummies=0\n")
        os.utime(self.lib_modprobe / "systemd.conf", (1600000000, 1600000000))
        # dummy declares module_param(numdummies, int, 0): not shown under /sys/module/dummy/parameters
        self.add_file("dummy", "kernel/drivers/net/dummy.ko", {"numdummies": "1"}, srcversion="", hidden={"numdummies"})
        self.builtin_params = {"loop": {"max_loop": "8"}}
        self.write_sys()

    def add_file(self, name, rel, params, *, srcversion="AAA", vermagic=VERMAGIC, depends="", hidden=()):
        self.files[name] = {
            "filename": str(self.modules_dir / rel),
            "params": params,
            "srcversion": srcversion,
            "vermagic": vermagic,
            "depends": depends,
            "name": name,
            "hidden": set(hidden),
        }

    def add_ko(self, path, name, params, srcversion, *, vermagic=VERMAGIC, depends=""):
        path.write_bytes(f"ko {name} {srcversion}".encode())
        self.files[str(path)] = {
            "filename": str(path),
            "params": params,
            "srcversion": srcversion,
            "vermagic": vermagic,
            "depends": depends,
            "name": name,
        }

    def modinfo_text(self, info):
        lines = [f"filename:       {info['filename']}"]
        if info["srcversion"]:
            lines.append(f"srcversion:     {info['srcversion']}")
        lines += [
            f"depends:        {info['depends']}",
            f"name:           {info['name']}",
            f"vermagic:       {info['vermagic']}",
        ]
        lines += [f"parm:           {p}:a parameter (int)" for p in info["params"]]
        return "\n".join(lines) + "\n"

    def write_sys(self):
        self.proc.write_text(
            "".join(
                f"{n} 16384 {len(m['holders'])} {','.join(m['holders']) or '-'} Live {m['address']}\n"
                for n, m in self.loaded.items()
            )
        )
        for entry in list(self.sys.iterdir()):
            for sub in sorted(entry.rglob("*"), reverse=True):
                sub.rmdir() if sub.is_dir() else sub.unlink()
            entry.rmdir()
        for name, mod in list(self.loaded.items()) + [(n, {"params": p}) for n, p in self.builtin_params.items()]:
            pdir = self.sys / name / "parameters"
            pdir.mkdir(parents=True)
            for key, value in mod["params"].items():
                if key not in mod.get("hidden", ()):
                    (pdir / key).write_text(f"{value}\n")
            if mod.get("srcversion"):
                (self.sys / name / "srcversion").write_text(mod["srcversion"] + "\n")

    def insert(self, info, args):
        name = info["name"]
        if name in self.loaded:
            return 1, "", f"insmod: ERROR: could not insert module: File exists ({name})"
        params = dict(info["params"])
        for arg in args:
            key, _sep, value = arg.partition("=")
            params[key] = value.strip('"')
        self.loads += 1
        self.loaded[name] = {
            "params": params,
            "srcversion": info["srcversion"],
            "holders": [],
            "hidden": info.get("hidden", set()),
            "address": f"0xffffffffc{self.loads:07x}",
        }
        self.write_sys()
        return 0, "", ""

    def run_command(self, args, environ_update=None, **_kwargs):
        assert environ_update == {"LC_ALL": "C"}
        assert isinstance(args, list)
        self.calls.append(args)
        tool, rest = os.path.basename(args[0]), args[1:]
        if tool == "modinfo":
            info = self.files.get(rest[0])
            if info is None:
                return 1, "", f"modinfo: ERROR: Module {rest[0]} not found.\n"
            return 0, self.modinfo_text(info), ""
        if (tool == "modprobe" and rest[0] == "-r") or tool == "rmmod":
            name = rest[-1]
            if self.loaded.get(name, {}).get("holders"):
                return 1, "", f"modprobe: FATAL: Module {name} is in use.\n"
            self.loaded.pop(name, None)
            self.write_sys()
            return 0, "", ""
        if tool == "modprobe":
            info = self.files.get(rest[0])
            if info is None:
                return 1, "", f"modprobe: FATAL: Module {rest[0]} not found in directory /lib/modules/{RELEASE}\n"
            if rest[0] in self.loaded:
                return 0, "", ""
            return self.insert(info, self.config_options(rest[0]) + rest[1:])
        if tool == "insmod":
            return self.insert(self.files[rest[0]], rest[1:])
        if tool == "depmod":
            return 0, "", ""
        raise AssertionError(f"unexpected command {shlex.join(args)}")

    def config_options(self, name):
        """The options lines of the modprobe.d files for name, in the order modprobe applies them."""
        dirs = [self.root / "etc" / "modprobe.d", self.lib_modprobe]
        files = {}
        for directory in dirs:
            for conf in sorted(directory.glob("*.conf")) if directory.is_dir() else []:
                files.setdefault(conf.name, conf)
        args = []
        for fname in sorted(files):
            for line in files[fname].read_text().splitlines():
                words = line.split()
                if len(words) > 2 and words[0] == "options" and words[1] == name:
                    args += words[2:]
        return args

    def changing_calls(self):
        return [c for c in self.calls if os.path.basename(c[0]) != "modinfo"]


def use_fake_kernel(tmp_path, monkeypatch):
    """Point kmod at a FakeKernel in tmp_path (its /proc, /sys, /lib/modules, /etc and /run) and return it."""
    fake = FakeKernel(tmp_path)
    monkeypatch.setattr(km, "MODULES_ROOT", str(tmp_path / "lib_modules"))
    monkeypatch.setattr(km, "SYS_MODULE", str(fake.sys))
    monkeypatch.setattr(km, "PROC_MODULES", str(fake.proc))
    monkeypatch.setattr(km, "BOOT_ID", str(fake.boot_id))
    # module.warn() collects into a process-wide dict: start each test without earlier tests' warnings
    monkeypatch.setattr(ansible_warnings, "_global_warnings", {})
    # Once controller code is imported in this process (simlab reads inventories with it), warn()
    # goes to the controller's display instead; these tests run modules as on a target.
    monkeypatch.setattr(module_utils_internal, "is_controller", False)
    monkeypatch.setattr(km, "PROC_STAT", str(fake.stat))
    monkeypatch.setattr(kmod, "STATE_DIR", str(tmp_path / "run" / "labkit" / "kmod"))
    monkeypatch.setattr(kmod, "MODULES_LOAD_D", str(tmp_path / "etc" / "modules-load.d"))
    monkeypatch.setattr(kmod, "MODPROBE_D", str(tmp_path / "etc" / "modprobe.d"))
    monkeypatch.setattr(kmod, "SYSTEM_MODPROBE_DIRS", (str(fake.lib_modprobe),))
    monkeypatch.setattr(AnsibleModule, "run_command", lambda self, args, **kw: fake.run_command(args, **kw))
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, **kw: f"/usr/sbin/{name}")
    return fake


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    return use_fake_kernel(tmp_path, monkeypatch)


def run(args, capsys, check=False, diff=False):
    args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args), pytest.raises(SystemExit):
        kmod.main()
    return json.loads(capsys.readouterr().out)


def warnings_text(res):
    return json.dumps(res.get("warnings", []))


def test_load_by_name_with_params_then_idempotent(kernel, capsys):
    res = run({"name": "dummy", "params": {"numdummies": 3}}, capsys)
    assert res["changed"] and res["loaded"]
    assert res["params"] == {"numdummies": "3"}
    assert ["/usr/sbin/modprobe", "dummy", "numdummies=3"] in res["commands"]
    again = run({"name": "dummy", "params": {"numdummies": 3}}, capsys)
    assert again["changed"] is False and again["commands"] == []


def test_param_difference_needs_reload_true(kernel, capsys):
    run({"name": "dummy", "params": {"numdummies": 3}}, capsys)
    res = run({"name": "dummy", "params": {"numdummies": 5}}, capsys)
    assert res["changed"] is False and res["reloaded"] is False
    assert res["reload_reasons"] == ["params: numdummies"]
    assert "reload: true" in warnings_text(res)
    assert kernel.loaded["dummy"]["params"]["numdummies"] == "3"

    res = run({"name": "dummy", "params": {"numdummies": 5}, "reload": True}, capsys, diff=True)
    assert res["changed"] and res["reloaded"]
    assert res["reload_reasons"] == ["params: numdummies"]
    assert res["params"] == {"numdummies": "5"}
    assert res["commands"][0] == ["/usr/sbin/modprobe", "-r", "dummy"]
    state = res["diff"][0]
    assert "param numdummies: 3" in state["before"] and "param numdummies: 5" in state["after"]


def test_check_mode_runs_nothing_and_predicts(kernel, capsys):
    res = run({"name": "dummy", "params": {"numdummies": 3}, "persistent": "present"}, capsys, check=True, diff=True)
    assert res["changed"] and res["loaded"] and res["params"] == {"numdummies": "3"}
    assert kernel.changing_calls() == []
    assert "dummy" not in kernel.loaded
    assert not (kernel.root / "etc").exists()
    headers = [d["after_header"] for d in res["diff"]]
    assert headers[0] == "kernel module dummy"
    assert any(h.endswith("modules-load.d/dummy.conf") for h in headers)


def test_unknown_parameter_refused_with_list(kernel, capsys):
    res = run({"name": "dummy", "params": {"numdumies": 3}}, capsys)
    assert res["failed"] and "no parameter numdumies" in res["msg"] and "numdummies" in res["msg"]


def test_module_not_found_says_what_to_do(kernel, capsys):
    res = run({"name": "nosuch"}, capsys)
    assert res["failed"] and "not available for kernel" in res["msg"] and "path=" in res["msg"]


def test_builtin_is_present_and_refuses_runtime_params(kernel, capsys):
    res = run({"name": "loop"}, capsys)
    assert res["changed"] is False and res["builtin"] and res["loaded"]
    assert run({"name": "loop", "params": {"max_loop": 8}}, capsys)["changed"] is False
    res = run({"name": "loop", "params": {"max_loop": 16}}, capsys)
    assert res["failed"] and "loop.max_loop=16" in res["msg"] and "kernel command line" in res["msg"]
    res = run({"name": "loop", "state": "absent"}, capsys)
    assert res["failed"] and "built into" in res["msg"]
    assert kernel.changing_calls() == []


def test_load_from_path_reload_on_srcversion(kernel, tmp_path, capsys):
    ko = tmp_path / "labkit_fixture.ko"
    kernel.add_ko(ko, "labkit_fixture", {"level": "1"}, "SRC1")
    res = run({"path": str(ko), "params": {"level": 4}}, capsys)
    assert res["changed"] and res["name"] == "labkit_fixture" and res["srcversion"] == "SRC1"
    assert res["commands"][-1] == ["/usr/sbin/insmod", str(ko), "level=4"]

    kernel.add_ko(ko, "labkit_fixture", {"level": "1"}, "SRC2")
    res = run({"path": str(ko), "params": {"level": 4}}, capsys)
    assert res["changed"] is False and res["reload_reasons"] == ["srcversion"]
    res = run({"path": str(ko), "params": {"level": 4}, "reload": True}, capsys)
    assert res["changed"] and res["reloaded"] and res["srcversion"] == "SRC2"
    assert res["reload_reasons"] == ["srcversion"]
    assert run({"path": str(ko), "params": {"level": 4}, "reload": True}, capsys)["changed"] is False


def test_path_vermagic_mismatch_fails_with_both_strings(kernel, tmp_path, capsys):
    ko = tmp_path / "other.ko"
    kernel.add_ko(ko, "other", {}, "S", vermagic="6.1.0-99-labkit SMP preempt mod_unload modversions ")
    res = run({"path": str(ko)}, capsys)
    assert res["failed"]
    assert "6.1.0-99-labkit SMP preempt mod_unload modversions" in res["msg"]
    assert f'kernel release: "{RELEASE}"' in res["msg"]
    assert kernel.changing_calls() == []


def test_name_must_match_file(kernel, tmp_path, capsys):
    ko = tmp_path / "a.ko"
    kernel.add_ko(ko, "a", {}, "S")
    res = run({"path": str(ko), "name": "b"}, capsys)
    assert res["failed"] and "does not match" in res["msg"]


def test_insmod_loads_missing_dependencies_first(kernel, tmp_path, capsys):
    ko = tmp_path / "needs.ko"
    kernel.add_ko(ko, "needs", {}, "S", depends="dummy")
    res = run({"path": str(ko)}, capsys)
    assert res["commands"] == [["/usr/sbin/modprobe", "dummy"], ["/usr/sbin/insmod", str(ko)]]


def test_install_copies_and_depmods_only_when_changed(kernel, tmp_path, capsys):
    ko = tmp_path / "build" / "labkit_fixture.ko"
    ko.parent.mkdir()
    kernel.add_ko(ko, "labkit_fixture", {"level": "1"}, "SRC1")
    dest = kernel.modules_dir / "updates" / "labkit_fixture.ko"
    kernel.files["labkit_fixture"] = dict(kernel.files[str(ko)], filename=str(dest))

    res = run({"path": str(ko), "install": True}, capsys)
    assert res["installed"] and dest.read_bytes() == ko.read_bytes()
    assert ["/usr/sbin/depmod", "-a", RELEASE] in kernel.calls
    assert ["/usr/sbin/modprobe", "labkit_fixture"] in res["commands"]
    assert res["filename"] == str(dest)

    # depmod would have indexed it; a second run copies nothing and runs no depmod
    (kernel.modules_dir / "modules.dep").write_text("updates/labkit_fixture.ko:\n")
    kernel.calls.clear()
    res = run({"path": str(ko), "install": True}, capsys)
    assert res["changed"] is False and not res["installed"]
    assert not [c for c in kernel.calls if c[0].endswith("depmod")]


def test_persistent_present_then_absent_touches_only_own_files(kernel, capsys):
    etc = kernel.root / "etc"
    (etc / "modprobe.d").mkdir(parents=True)
    (etc / "modprobe.d" / "blacklist.conf").write_text("blacklist dummy\n")
    res = run({"name": "dummy", "params": {"numdummies": 2, "x": "a b"}, "persistent": "present"}, capsys)
    assert res["failed"]  # x is not a parameter of dummy
    res = run({"name": "dummy", "params": {"numdummies": 2}, "persistent": "present"}, capsys, diff=True)
    assert res["changed"]
    load = (etc / "modules-load.d" / "dummy.conf").read_text()
    opts = (etc / "modprobe.d" / "zz-dummy.conf").read_text()
    assert load.splitlines()[-1] == "dummy" and load.startswith("# Managed by labkit.cluster.kmod")
    assert opts.splitlines()[-1] == "options dummy numdummies=2"
    assert sorted(res["files"]) == sorted(
        [str(etc / "modules-load.d" / "dummy.conf"), str(etc / "modprobe.d" / "zz-dummy.conf")]
    )
    assert run({"name": "dummy", "params": {"numdummies": 2}, "persistent": "present"}, capsys)["changed"] is False

    res = run({"name": "dummy", "state": "absent", "persistent": "absent"}, capsys)
    assert res["changed"] and not res["loaded"]
    assert not (etc / "modules-load.d" / "dummy.conf").exists()
    assert not (etc / "modprobe.d" / "zz-dummy.conf").exists()
    assert (etc / "modprobe.d" / "blacklist.conf").read_text() == "blacklist dummy\n"


def test_persistent_absent_leaves_foreign_file(kernel, capsys):
    etc = kernel.root / "etc" / "modules-load.d"
    etc.mkdir(parents=True)
    (etc / "dummy.conf").write_text("dummy\n")
    res = run({"name": "dummy", "state": "absent", "persistent": "absent"}, capsys)
    assert (etc / "dummy.conf").read_text() == "dummy\n"
    assert "not written by labkit.cluster.kmod" in warnings_text(res)


def test_unload_in_use_names_holders(kernel, capsys):
    run({"name": "dummy"}, capsys)
    kernel.loaded["dummy"]["holders"] = ["bonding"]
    kernel.write_sys()
    res = run({"name": "dummy", "state": "absent"}, capsys)
    assert res["failed"] and "in use" in res["msg"] and "bonding" in res["msg"]
    assert res["rc"] == 1 and "in use" in res["stderr"]


def test_absent_when_not_loaded_is_no_change(kernel, capsys):
    res = run({"name": "dummy", "state": "absent"}, capsys)
    assert res["changed"] is False and res["loaded"] is False


def test_install_needs_path(kernel, capsys):
    res = run({"name": "dummy", "install": True}, capsys)
    assert res["failed"] and "needs path" in res["msg"]


def load_outside_kmod(kernel, name, **params):
    """modprobe run by someone else (or at boot): the module is loaded and kmod recorded nothing."""
    kernel.insert(kernel.files[name], [f"{k}={v}" for k, v in params.items()])


def test_hidden_parameter_known_from_the_load_record(kernel, capsys):
    res = run({"name": "dummy", "params": {"numdummies": 3}}, capsys)
    assert not (kernel.sys / "dummy" / "parameters" / "numdummies").exists()
    record = json.loads((kernel.root / "run" / "labkit" / "kmod" / "dummy.json").read_text())
    assert record["params"] == {"numdummies": "3"} and record["via"] == "modprobe"
    assert res["params"] == {"numdummies": "3"} and res["unverified_params"] == []
    res = run({"name": "dummy", "params": {"numdummies": 3}, "reload": True}, capsys)
    assert res["changed"] is False and res["unverified_params"] == [] and "warnings" not in res

    res = run({"name": "dummy", "state": "absent"}, capsys)
    assert not (kernel.root / "run" / "labkit" / "kmod" / "dummy.json").exists()


def test_hidden_parameter_unknown_is_reported_not_reloaded(kernel, capsys):
    load_outside_kmod(kernel, "dummy", numdummies=7)
    for _run in range(2):
        res = run({"name": "dummy", "params": {"numdummies": 3}, "reload": True}, capsys)
        assert res["changed"] is False and res["reloaded"] is False and res["commands"] == []
        assert res["unverified_params"] == ["numdummies"] and res["reload_reasons"] == []
        assert "numdummies are unknown" in warnings_text(res)
        assert "numdummies" not in res["params"]


def test_record_of_an_earlier_load_does_not_count(kernel, capsys):
    run({"name": "dummy", "params": {"numdummies": 3}}, capsys)
    kernel.loaded.pop("dummy")  # rmmod + modprobe by someone else: another load at another address
    load_outside_kmod(kernel, "dummy", numdummies=5)
    res = run({"name": "dummy", "params": {"numdummies": 3}, "reload": True}, capsys)
    assert res["changed"] is False and res["unverified_params"] == ["numdummies"]

    kernel.boot_id.write_text("another boot\n")  # same address by chance, but another boot
    kernel.loaded.pop("dummy")
    kernel.loads -= 1
    load_outside_kmod(kernel, "dummy", numdummies=5)
    assert run({"name": "dummy", "params": {"numdummies": 3}}, capsys)["unverified_params"] == ["numdummies"]


def test_hidden_parameter_from_own_options_file_in_place_at_boot(kernel, capsys):
    run({"name": "dummy", "params": {"numdummies": 2}, "persistent": "present"}, capsys)
    opts = kernel.root / "etc" / "modprobe.d" / "zz-dummy.conf"
    # reboot: the record is gone (tmpfs), the module was loaded at boot with the file's options
    for entry in (kernel.root / "run").rglob("*.json"):
        entry.unlink()
    kernel.boot_id.write_text("the next boot\n")
    kernel.loaded.pop("dummy")
    kernel.insert(kernel.files["dummy"], kernel.config_options("dummy"))  # systemd-modules-load at boot
    assert kernel.loaded["dummy"]["params"]["numdummies"] == "2"  # zz-dummy.conf is read after systemd.conf
    os.utime(opts, (1699999000, 1699999000))  # written before btime 1700000000

    res = run({"name": "dummy", "params": {"numdummies": 2}, "persistent": "present", "reload": True}, capsys)
    assert res["changed"] is False and res["params"] == {"numdummies": "2"} and res["unverified_params"] == []
    res = run({"name": "dummy", "params": {"numdummies": 4}, "reload": True}, capsys)
    assert res["reloaded"] and res["reload_reasons"] == ["params: numdummies"]
    assert kernel.loaded["dummy"]["params"]["numdummies"] == "4"

    # a file written after boot says nothing about the module loaded at boot
    kernel.loaded.pop("dummy")
    load_outside_kmod(kernel, "dummy")
    os.utime(opts, (1700000500, 1700000500))
    res = run({"name": "dummy", "params": {"numdummies": 2}, "reload": True}, capsys)
    assert res["changed"] is False and res["unverified_params"] == ["numdummies"]


def test_install_names_the_copy_after_the_module(kernel, tmp_path, capsys):
    """modprobe finds modules by file name: a build saved as lkf-rev2.ko is installed as labkit_fixture.ko."""
    ko = tmp_path / "lkf-rev2.ko"
    kernel.add_ko(ko, "labkit_fixture", {"level": "1"}, "SRC2")
    dest = kernel.modules_dir / "updates" / "labkit_fixture.ko"
    kernel.files["labkit_fixture"] = dict(kernel.files[str(ko)], filename=str(dest))
    res = run({"path": str(ko), "install": True}, capsys)
    assert res["installed"] and res["filename"] == str(dest) and dest.read_bytes() == ko.read_bytes()
    assert not (kernel.modules_dir / "updates" / "lkf-rev2.ko").exists()


def test_record_includes_modprobe_d_options_and_old_options_file_goes(kernel, capsys):
    etc = kernel.root / "etc" / "modprobe.d"
    etc.mkdir(parents=True)
    (etc / "dummy.conf").write_text(kmod.MARKER + "\noptions dummy numdummies=7\n")  # an earlier kmod's file
    res = run({"name": "dummy"}, capsys)
    # modprobe applied dummy.conf, then systemd.conf (later name): numdummies=0, and kmod knows it
    assert kernel.loaded["dummy"]["params"]["numdummies"] == "0" and res["params"] == {"numdummies": "0"}
    res = run({"name": "dummy", "params": {"numdummies": 2}, "persistent": "present", "reload": True}, capsys)
    assert res["reloaded"] and kernel.loaded["dummy"]["params"]["numdummies"] == "2"
    assert not (etc / "dummy.conf").exists() and str(etc / "dummy.conf") in res["files"]
    assert "warnings" not in res


def test_warns_when_a_later_options_file_wins(kernel, capsys):
    (kernel.lib_modprobe / "zzz-site.conf").write_text("options dummy numdummies=9\n")
    res = run({"name": "dummy", "params": {"numdummies": 2}, "persistent": "present"}, capsys, check=True)
    assert "zzz-site.conf sets numdummies=9" in warnings_text(res) and "wins" in warnings_text(res)
