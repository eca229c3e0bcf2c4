"""kernel_module: modinfo/vermagic/modules.builtin/proc parsing, parameter formatting and the load decision."""

import pytest
from ansible_collections.labkit.cluster.plugins.module_utils import kernel_module as km

MODINFO_FILE = """filename:       /tmp/fx/labkit_fixture.ko
version:        2
description:    Test fixture of labkit.cluster: a parameter that is also a sysctl
author:         labkit developers
license:        GPL
srcversion:     A735C91EF0C59C18150B0C0
depends:
retpoline:      Y
name:           labkit_fixture
vermagic:       6.1.0-56-amd64 SMP preempt mod_unload modversions
parm:           level:Level, also readable and writable as net.labkit_fixture.level (int)
parm:           tag:A free-form string (may contain spaces when quoted) (charp)
parm:           ports:Up to four port numbers (array of int)
"""

MODINFO_DEPS = """filename:       /lib/modules/6.1.0-50-amd64/kernel/net/sched/sch_netem.ko
alias:          net-sch-netem
alias:          net-sch-x
depends:        sch_foo,nf-bar
intree:         Y
vermagic:       6.1.0-50-amd64 SMP preempt mod_unload modversions
parm:           dummy:first line
  continues here (int)
"""

MODINFO_BUILTIN = """name:           dummy
filename:       (builtin)
license:        GPL
file:           drivers/net/dummy
parm:           numdummies:Number of dummy pseudo devices (int)
"""


def test_parse_modinfo_file():
    info = km.parse_modinfo(MODINFO_FILE)
    assert info["name"] == "labkit_fixture"
    assert info["srcversion"] == "A735C91EF0C59C18150B0C0"
    assert info["vermagic"] == "6.1.0-56-amd64 SMP preempt mod_unload modversions"
    assert info["depends"] == []
    assert info["description"] == "Test fixture of labkit.cluster: a parameter that is also a sysctl"
    assert sorted(info["parameters"]) == ["level", "ports", "tag"]
    assert info["parameters"]["ports"].endswith("(array of int)")
    assert len(info["parm"]) == 3


def test_parse_modinfo_multi_and_continuation():
    info = km.parse_modinfo(MODINFO_DEPS)
    assert info["alias"] == ["net-sch-netem", "net-sch-x"]
    assert info["depends"] == ["sch_foo", "nf_bar"]
    assert info["parm"] == ["dummy:first line\ncontinues here (int)"]


def test_parse_modinfo_builtin():
    info = km.parse_modinfo(MODINFO_BUILTIN)
    assert info["filename"] == "(builtin)"
    assert "numdummies" in info["parameters"]
    assert "srcversion" not in info


@pytest.mark.parametrize(
    ("module", "release", "kernel", "expect"),
    [
        ("6.1.0-50-amd64 SMP preempt mod_unload modversions ", "6.1.0-50-amd64", None, None),
        (
            "6.1.0-50-amd64 SMP preempt mod_unload modversions",
            "6.1.0-50-amd64",
            "6.1.0-50-amd64 SMP preempt mod_unload modversions ",
            None,
        ),
        (
            "6.1.0-99-labkit SMP preempt mod_unload modversions",
            "6.1.0-50-amd64",
            None,
            "built for kernel 6.1.0-99-labkit",
        ),
        (
            "6.1.0-50-amd64 SMP mod_unload",
            "6.1.0-50-amd64",
            "6.1.0-50-amd64 SMP preempt mod_unload modversions",
            'built with options "SMP mod_unload"',
        ),
        ("", "6.1.0-50-amd64", None, "no vermagic"),
    ],
)
def test_vermagic_mismatch(module, release, kernel, expect):
    reason = km.vermagic_mismatch(module, release, kernel)
    if expect is None:
        assert reason is None
    else:
        assert expect in reason
        if expect.startswith("built for kernel"):
            assert release in reason


def test_modules_builtin_and_names():
    text = "kernel/drivers/net/dummy.ko\nkernel/net/ipv4/tcp-cubic.ko\n\nkernel/fs/ext4/ext4.ko\n"
    names = km.parse_modules_builtin(text)
    assert names == {"dummy", "tcp_cubic", "ext4"}
    assert km.name_from_path("/x/y/dcpim-module.ko.xz") == "dcpim_module"
    assert km.normalize_name("tcp-estats-nl") == "tcp_estats_nl"


def test_proc_modules():
    text = (
        "dummy 16384 0 - Live 0x0000000000000000\n"
        "nf_conntrack 172032 2 nf_nat,xt_conntrack, Live 0xffffffffc0a00000\n"
        "labkit_fixture 16384 0 - Loading 0x0 (OE)\n"
    )
    mods = km.parse_proc_modules(text)
    assert mods["dummy"]["refcount"] == 0 and mods["dummy"]["holders"] == []
    assert mods["nf_conntrack"]["holders"] == ["nf_nat", "xt_conntrack"]
    assert mods["labkit_fixture"]["state"] == "Loading"


def test_params_formatting_quotes_lists_bools():
    assert km.params_to_args({"numdummies": 3}) == ["numdummies=3"]
    assert km.params_to_args({"tag": "lab run 7", "ports": [4000, 4001], "on": True, "off": False}) == [
        "off=0",
        "on=1",
        "ports=4000,4001",
        'tag="lab run 7"',
    ]
    assert km.format_param_value('"already quoted"') == '"already quoted"'
    with pytest.raises(ValueError):
        km.format_param_value('has "quote" and space')
    assert km.params_to_options_line("dummy", {"numdummies": 3}) == "options dummy numdummies=3"
    assert km.params_to_options_line("dummy", {}) is None


@pytest.mark.parametrize(
    ("requested", "actual", "match"),
    [
        (3, "3", True),
        (3, "2", False),
        ("3", "3\n", True),
        (True, "Y", True),
        (False, "N", True),
        ("yes", "Y", True),
        (True, "N", False),
        ([4000, 4001], "4000,4001", True),
        ([4000, 4001], "4000", False),
        ("0x10", "16", True),
        ("lab run 7", "lab run 7", True),
        ("lab run 7", "lab run", False),
        (3, None, None),
    ],
)
def test_param_matches(requested, actual, match):
    assert km.param_matches(requested, actual) is match


def test_params_differences_splits_unknown():
    differ, unknown = km.params_differences({"a": 1, "b": 2, "c": 3}, {"a": "1", "b": "5", "c": None})
    assert differ == ["b"]
    assert unknown == ["c"]


@pytest.mark.parametrize(
    "case",
    [
        ("present", False, False, False, [], "load", False),
        ("present", True, False, False, [], "none", False),
        ("present", True, False, False, ["srcversion"], "none", True),
        ("present", True, False, True, ["srcversion"], "reload", False),
        ("present", True, False, True, [], "none", False),
        ("present", False, True, True, [], "none", False),
        ("absent", True, False, False, [], "unload", False),
        ("absent", False, False, False, [], "none", False),
    ],
)
def test_decide(case):
    state, loaded, builtin, reload, diffs, action, warns = case
    got, warning = km.decide(state, loaded, builtin, reload, diffs)
    assert got == action
    assert bool(warning) is warns
    if warning:
        assert "reload: true" in warning and "srcversion" in warning


@pytest.mark.parametrize(
    ("stderr", "words"),
    [
        ("modprobe: FATAL: Module nosuch not found in directory /lib/modules/6.1.0-50-amd64", "not available"),
        ("insmod: ERROR: could not insert module x.ko: Unknown symbol in module", "dependency missing"),
        ("insmod: ERROR: could not insert module x.ko: Invalid module format", "rebuild it"),
        ("insmod: ERROR: could not insert module x.ko: Key was rejected by service", "sig_enforce"),
        ("modprobe: FATAL: Module dummy is in use.", "in use"),
        ("rmmod: ERROR: Module dummy is in use", "in use"),
        ("something else", None),
    ],
)
def test_explain_failure(stderr, words):
    msg = km.explain_failure(stderr, "x", "6.1.0-50-amd64")
    if words is None:
        assert msg is None
    else:
        assert words in msg


def test_parse_options_of_one_module_with_quotes():
    text = (
        "# Managed by labkit.cluster.kmod\n"
        'options labkit-fixture tag="two words" ports=10,20\n'
        "options dummy numdummies=9\n"
        "options labkit_fixture level=4\n"
        "# options labkit_fixture level=5\n"
    )
    assert km.parse_options(text, "labkit_fixture") == {"tag": "two words", "ports": "10,20", "level": "4"}
    assert km.parse_options(text, "dummy") == {"numdummies": "9"}
    assert km.parse_options(None, "dummy") == {}


def test_parse_boot_time_and_load_identity():
    assert km.parse_boot_time("cpu  1 2\nbtime 1700000000\nprocesses 3\n") == 1700000000
    assert km.parse_boot_time("cpu 1\n") is None
    entry = km.parse_proc_modules("dummy 16384 0 - Live 0xffffffffc0a1b000\n")["dummy"]
    assert km.load_identity(entry, "abc\n") == {"boot_id": "abc", "size": "16384", "address": "0xffffffffc0a1b000"}


def test_known_params_prefers_sysfs_then_record_then_boot_options():
    values, sources = km.known_params(
        {"level": "4", "tag": None}, {"level": "3", "numdummies": "3"}, {"numdummies": "2", "other": "1"}
    )
    assert values == {"level": "4", "numdummies": "3", "other": "1"}
    assert sources == {"level": "sysfs", "numdummies": "recorded", "other": "modprobe.d"}
    assert km.recorded_value("two words") == "two words" and km.recorded_value([1, 2]) == "1,2"
    assert km.recorded_value(True) == "1"


def test_installed_file_name_follows_the_module_name():
    assert km.installed_file_name("labkit_fixture", "/root/lkf-rev2.ko") == "labkit_fixture.ko"
    assert km.installed_file_name("labkit-fixture", "/x/build.ko.xz") == "labkit_fixture.ko.xz"
    assert km.installed_file_name("dummy", "/x/dummy") == "dummy.ko"


def test_config_order_and_effective_options_last_file_wins():
    listing = [
        ("/etc/modprobe.d", ["dummy.conf", "systemd.conf", "zz-dummy.conf", "notes.txt"]),
        ("/usr/lib/modprobe.d", ["systemd.conf", "aliases.conf"]),
    ]
    order = km.config_order(listing)
    assert order == [
        "/usr/lib/modprobe.d/aliases.conf",
        "/etc/modprobe.d/dummy.conf",
        "/etc/modprobe.d/systemd.conf",  # shadows /usr/lib/modprobe.d/systemd.conf
        "/etc/modprobe.d/zz-dummy.conf",
    ]
    configs = [
        ("/etc/modprobe.d/dummy.conf", "options dummy numdummies=2\n"),
        ("/usr/lib/modprobe.d/systemd.conf", "options dummy numdummies=0\noptions ifb numifbs=0\n"),
    ]
    assert km.effective_options(configs, "dummy") == ({"numdummies": "0"}, {"numdummies": configs[1][0]})
    configs.append(("/etc/modprobe.d/zz-dummy.conf", "options dummy numdummies=3\n"))
    assert km.effective_options(configs, "dummy")[0] == {"numdummies": "3"}
