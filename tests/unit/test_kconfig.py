"""The kconfig module_utils (parsing and comparing .config values) and the kconfig module, in-process.

The real Kconfig is exercised by tests/integration/test_kernel_build.py; these feed text that has the
shapes a .config really has (tristates, "is not set", strings with escapes, hex, absent symbols).
"""

import gzip
import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.module_utils import kconfig
from ansible_collections.labkit.cluster.plugins.modules import kconfig as kconfig_module

DOT_CONFIG = """\
#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.1.192 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc (Debian 12.2.0-14) 12.2.0"
CONFIG_LOCALVERSION="-labkit"
# CONFIG_LOCALVERSION_AUTO is not set
CONFIG_MODULES=y
CONFIG_LABKIT_DEMO=m
CONFIG_LOG_BUF_SHIFT=17
CONFIG_PHYSICAL_START=0x1000000
CONFIG_CMDLINE="console=ttyS0 quiet=\\"yes\\""
# CONFIG_NET is not set
"""


def test_parse_reads_values_not_set_and_later_lines_win():
    values = kconfig.parse(DOT_CONFIG + "CONFIG_MODULES=n\n")
    assert values["CONFIG_LABKIT_DEMO"] == "m"
    assert values["CONFIG_NET"] == "n"
    assert values["CONFIG_MODULES"] == "n"
    assert values["CONFIG_LOCALVERSION"] == '"-labkit"'
    assert "CONFIG_TCP_ESTATS" not in values
    # comment lines that are not "is not set" are no symbols
    assert not any(name.startswith("#") for name in values)


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        (True, "y"),
        (False, "n"),
        ("Y", "y"),
        ("m", "m"),
        (17, "17"),
        ("0x1000000", "0x1000000"),
        ("-labkit", '"-labkit"'),
        ('"-labkit"', '"-labkit"'),
        ('say "hi"', '"say \\"hi\\""'),
    ],
)
def test_normalize_value(value, normalized):
    assert kconfig.normalize_value(value) == normalized


def test_symbol_name_adds_the_prefix_and_rejects_garbage():
    assert kconfig.symbol_name("TCP_ESTATS") == "CONFIG_TCP_ESTATS"
    assert kconfig.symbol_name("CONFIG_TCP_ESTATS") == "CONFIG_TCP_ESTATS"
    with pytest.raises(kconfig.KconfigError):
        kconfig.symbol_name("TCP ESTATS=y")


def test_compare_reports_dropped_changed_and_absent_symbols():
    config = kconfig.parse(DOT_CONFIG)
    requested = {
        "CONFIG_MODULES": "y",
        "CONFIG_LABKIT_DEMO": "y",  # Kconfig kept it as a module
        "CONFIG_NET": "y",  # not set
        "CONFIG_TCP_ESTATS": "y",  # absent: the web10g patch is missing
        "CONFIG_EXPERT": "n",  # absent counts as not set
        "CONFIG_PHYSICAL_START": "0x1000000",
        "CONFIG_LOG_BUF_SHIFT": "18",
        "CONFIG_CMDLINE": '"console=ttyS0 quiet=\\"yes\\""',
    }
    mismatched = kconfig.compare(requested, config, {"CONFIG_TCP_ESTATS": "web10g.config"})
    by_name = {m["symbol"]: m for m in mismatched}
    assert list(by_name) == ["CONFIG_LABKIT_DEMO", "CONFIG_NET", "CONFIG_TCP_ESTATS", "CONFIG_LOG_BUF_SHIFT"]
    assert by_name["CONFIG_LABKIT_DEMO"]["actual"] == "m"
    assert by_name["CONFIG_NET"]["actual"] == "not set"
    assert by_name["CONFIG_TCP_ESTATS"]["actual"] == "absent"
    assert by_name["CONFIG_TCP_ESTATS"]["source"] == "web10g.config"
    assert "patch" in by_name["CONFIG_TCP_ESTATS"]["reason"]
    assert by_name["CONFIG_LOG_BUF_SHIFT"]["source"] == "symbols"
    assert kconfig.summary(mismatched[2:3]) == "CONFIG_TCP_ESTATS (requested y, got absent)"


def test_same_value_compares_hex_and_strings_by_meaning():
    assert kconfig.same_value("0x1000000", "0X1000000")
    assert kconfig.same_value('"a\\"b"', '"a\\"b"')
    assert not kconfig.same_value("y", "m")


def run(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        kconfig_module.main()
    return exited.value.code, json.loads(capsys.readouterr().out)


def test_module_fails_naming_the_dropped_symbols(tmp_path, capsys):
    config = tmp_path / ".config"
    config.write_text(DOT_CONFIG)
    fragment = tmp_path / "web10g.config"
    fragment.write_text("CONFIG_TCP_ESTATS=y\n# CONFIG_NET is not set\nCONFIG_MODULES=y\n")
    code, res = run({"path": str(config), "fragments": [str(fragment)], "symbols": {"LOCALVERSION": "-labkit"}}, capsys)
    assert code == 1 and res["failed"]
    assert "CONFIG_TCP_ESTATS" in res["msg"]
    assert [m["symbol"] for m in res["mismatched"]] == ["CONFIG_TCP_ESTATS"]
    assert res["mismatched"][0]["source"] == str(fragment)
    assert res["values"]["CONFIG_LOCALVERSION"] == '"-labkit"'
    assert res["values"]["CONFIG_TCP_ESTATS"] is None


def test_module_symbols_override_fragments_and_report_without_failing(tmp_path, capsys):
    config = tmp_path / ".config"
    config.write_text(DOT_CONFIG)
    fragment = tmp_path / "a.config"
    fragment.write_text("CONFIG_LABKIT_DEMO=y\n")
    code, res = run(
        {
            "path": str(config),
            "fragments": [str(fragment)],
            "symbols": {"CONFIG_LABKIT_DEMO": "m", "NET": False},
            "fail_on_mismatch": False,
        },
        capsys,
    )
    assert code == 0 and not res["changed"]
    assert res["requested"] == {"CONFIG_LABKIT_DEMO": "m", "CONFIG_NET": "n"}
    assert res["mismatched"] == []


def test_module_reads_a_gzipped_config(tmp_path, capsys):
    config = tmp_path / "config.gz"
    config.write_bytes(gzip.compress(DOT_CONFIG.encode()))
    code, res = run({"path": str(config), "symbols": {"CONFIG_LABKIT_DEMO": "y"}}, capsys)
    assert code == 1
    assert res["mismatched"][0]["actual"] == "m"


def test_module_fails_on_a_missing_file(tmp_path, capsys):
    code, res = run({"path": str(tmp_path / "nope")}, capsys)
    assert code == 1 and "does not exist" in res["msg"]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("CONFIG_TCP_ESTATS", ("CONFIG_TCP_ESTATS", ("y", "m"))),
        ("TCP_ESTATS=y", ("CONFIG_TCP_ESTATS", "y")),
        ("CONFIG_HZ=1000", ("CONFIG_HZ", "1000")),
        ("CONFIG_LOCALVERSION=-lab", ("CONFIG_LOCALVERSION", '"-lab"')),
        ('CONFIG_CMDLINE="a=b"', ("CONFIG_CMDLINE", '"a=b"')),
    ],
)
def test_requirement_bare_name_means_built_in_or_module(text, parsed):
    assert kconfig.requirement(text) == parsed


def test_alternatives_are_met_by_any_and_described_with_or():
    config = kconfig.parse(DOT_CONFIG)
    requested = {"CONFIG_LABKIT_DEMO": ("y", "m"), "CONFIG_MODULES": ("y", "m"), "CONFIG_NET": ("y", "m")}
    mismatched = kconfig.compare(requested, config)
    assert [m["symbol"] for m in mismatched] == ["CONFIG_NET"]
    assert kconfig.summary(mismatched) == "CONFIG_NET (requested y or m, got not set)"
    # an absent symbol meets alternatives that include n
    assert kconfig.compare({"CONFIG_EXPERT": ("m", "n")}, config) == []
    assert kconfig.normalize_value(["y", True, "m"]) == ("y", "y", "m")
    with pytest.raises(kconfig.KconfigError):
        kconfig.normalize_value([])


@pytest.mark.parametrize("value", ["a\nCONFIG_MODULES=n", '"a"\n"b"', "tab\there", "nul\x00"])
def test_values_with_control_characters_are_refused(value):
    with pytest.raises(kconfig.KconfigError):
        kconfig.normalize_value(value)
    with pytest.raises(kconfig.KconfigError):
        kconfig.line("CONFIG_X", value)


@pytest.mark.parametrize(
    ("name", "value", "written"),
    [
        ("TCP_ESTATS", True, "CONFIG_TCP_ESTATS=y"),
        ("CONFIG_TCP_ESTATS", "Y", "CONFIG_TCP_ESTATS=y"),
        ("KVM", "m", "CONFIG_KVM=m"),
        ("DEBUG_INFO", False, "# CONFIG_DEBUG_INFO is not set"),
        ("DEBUG_INFO", "n", "# CONFIG_DEBUG_INFO is not set"),
        ("HZ", 1000, "CONFIG_HZ=1000"),
        ("NEG", "-5", "CONFIG_NEG=-5"),
        ("PHYSICAL_START", "0x1000000", "CONFIG_PHYSICAL_START=0x1000000"),
        ("CMDLINE", '"console=ttyS0"', 'CONFIG_CMDLINE="console=ttyS0"'),
        ("LOCALVERSION", '-lab "x" \\ y', 'CONFIG_LOCALVERSION="-lab \\"x\\" \\\\ y"'),
    ],
)
def test_line_writes_what_parse_reads_back(name, value, written):
    assert kconfig.line(name, value) == written
    symbol = kconfig.symbol_name(name)
    assert kconfig.compare({symbol: kconfig.normalize_value(value)}, kconfig.parse(written)) == []


def test_fragment_keeps_the_order_and_refuses_bad_names_and_lists():
    assert kconfig.fragment({"B": "y", "A": False}) == "CONFIG_B=y\n# CONFIG_A is not set\n"
    assert kconfig.fragment({}) == ""
    with pytest.raises(kconfig.KconfigError):
        kconfig.fragment({"A=y\nCONFIG_B": "y"})
    with pytest.raises(kconfig.KconfigError):
        kconfig.fragment({"A": ["y", "m"]})
    with pytest.raises(kconfig.KconfigError):
        kconfig.fragment({"A": None})


def test_module_reads_the_first_readable_candidate_and_reports_requirements(tmp_path, capsys):
    config = tmp_path / "config.gz"
    config.write_bytes(gzip.compress(DOT_CONFIG.encode()))
    code, res = run(
        {
            "paths": [str(tmp_path / "config-6.1.0"), str(tmp_path), str(config), str(tmp_path / ".config")],
            "require": ["CONFIG_LABKIT_DEMO", "CONFIG_MODULES=y", "CONFIG_NET", "CONFIG_LABKIT_DEMO=y", "CONFIG_HZ"],
            "fail_on_mismatch": False,
        },
        capsys,
    )
    assert code == 0 and not res["changed"]
    assert res["path"] == str(config)
    assert res["missing"] == ["CONFIG_NET", "CONFIG_LABKIT_DEMO=y", "CONFIG_HZ"]
    assert res["requested"]["CONFIG_NET"] == ["y", "m"]
    assert res["values"]["CONFIG_NET"] == "n"


def test_module_symbols_accept_alternatives(tmp_path, capsys):
    config = tmp_path / ".config"
    config.write_text(DOT_CONFIG)
    code, res = run({"path": str(config), "symbols": {"LABKIT_DEMO": ["y", "m"], "NET": ["y", "m"]}}, capsys)
    assert code == 1
    assert [m["symbol"] for m in res["mismatched"]] == ["CONFIG_NET"]
    assert "requested y or m, got not set" in res["msg"]


def test_module_without_a_readable_candidate_fails_or_reports_no_path(tmp_path, capsys):
    paths = [str(tmp_path / "config-6.1.0"), str(tmp_path / "config.gz")]
    code, res = run({"paths": paths, "require": ["CONFIG_TCP_ESTATS"]}, capsys)
    assert code == 1 and res["path"] is None
    assert res["msg"] == f"none of {paths[0]}, {paths[1]} exists as a readable file"
    code, res = run({"paths": paths, "require": ["CONFIG_TCP_ESTATS"], "fail_on_missing": False}, capsys)
    assert code == 0 and res["path"] is None
    assert res["missing"] == [] and res["mismatched"] == []
    assert res["values"] == {"CONFIG_TCP_ESTATS": None}


def test_module_needs_exactly_one_of_path_and_paths(tmp_path, capsys):
    code, res = run({"symbols": {"NET": "y"}}, capsys)
    assert code == 1 and "path" in res["msg"]
    code, res = run({"path": str(tmp_path / "a"), "paths": [str(tmp_path / "b")]}, capsys)
    assert code == 1 and "mutually exclusive" in res["msg"]


@pytest.mark.parametrize(
    "args",
    [
        {"require": ["CONFIG_X=a\nCONFIG_Y=y"]},
        {"require": ["CONFIG_../X"]},
        {"symbols": {"CONFIG_X": "a\rb"}},
        {"symbols": {"X Y": "y"}},
    ],
)
def test_module_refuses_hostile_requirements(tmp_path, capsys, args):
    config = tmp_path / ".config"
    config.write_text(DOT_CONFIG)
    code, res = run({"path": str(config), **args}, capsys)
    assert code == 1 and res["failed"]
    assert res["msg"].startswith(("require: ", "symbols: "))
    assert config.read_text() == DOT_CONFIG
