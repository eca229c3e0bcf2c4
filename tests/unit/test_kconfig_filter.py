"""The kconfig filters (kconfig_fragment, kconfig_quote) and the kernel_build fragment template they render."""

from pathlib import Path

import jinja2
import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labkit.cluster.plugins.filter import kconfig as kconfig_filter
from ansible_collections.labkit.cluster.plugins.module_utils import kconfig

TEMPLATE = Path(__file__).resolve().parents[2] / "roles" / "kernel_build" / "templates" / "labkit.config.j2"


def test_filters_are_registered():
    filters = kconfig_filter.FilterModule().filters()
    assert filters["kconfig_fragment"] is kconfig_filter.kconfig_fragment
    assert filters["kconfig_quote"] is kconfig_filter.kconfig_quote


def test_fragment_writes_every_kind_of_value():
    symbols = {
        "TCP_ESTATS": "y",
        "CONFIG_DEBUG_INFO": False,
        "KVM": "M",
        "NET": True,
        "HZ": 1000,
        "PHYSICAL_START": "0x1000000",
        "NEG": "-5",
        "CMDLINE": '"console=ttyS0"',
        "TEXT": 'a"b\\c',
        "NAME": "n2",
    }
    assert kconfig_filter.kconfig_fragment(symbols) == (
        "CONFIG_TCP_ESTATS=y\n"
        "# CONFIG_DEBUG_INFO is not set\n"
        "CONFIG_KVM=m\n"
        "CONFIG_NET=y\n"
        "CONFIG_HZ=1000\n"
        "CONFIG_PHYSICAL_START=0x1000000\n"
        "CONFIG_NEG=-5\n"
        'CONFIG_CMDLINE="console=ttyS0"\n'
        'CONFIG_TEXT="a\\"b\\\\c"\n'
        'CONFIG_NAME="n2"\n'
    )
    # what the filter writes, the kconfig module reads back as requested
    text = kconfig_filter.kconfig_fragment(symbols)
    requested = {kconfig.symbol_name(k): kconfig.normalize_value(v) for k, v in symbols.items()}
    assert kconfig.compare(requested, kconfig.parse(text)) == []


def test_quote_always_quotes_and_escapes():
    assert kconfig_filter.kconfig_quote("1") == '"1"'
    assert kconfig_filter.kconfig_quote("y") == '"y"'
    assert kconfig_filter.kconfig_quote('-lab "x" \\') == '"-lab \\"x\\" \\\\"'
    assert kconfig_filter.kconfig_fragment({"LOCALVERSION": kconfig_filter.kconfig_quote("1")}) == (
        'CONFIG_LOCALVERSION="1"\n'
    )


@pytest.mark.parametrize(
    "symbols",
    [
        {"X": "a\nCONFIG_MODULES=n"},
        {"X=y\nCONFIG_Y": "y"},
        {"X": None},
        {"X": ["y", "m"]},
        ["CONFIG_X=y"],
    ],
)
def test_fragment_refuses_what_would_break_the_file(symbols):
    with pytest.raises(AnsibleFilterError):
        kconfig_filter.kconfig_fragment(symbols)


def test_quote_refuses_a_newline():
    with pytest.raises(AnsibleFilterError):
        kconfig_filter.kconfig_quote("-lab\nCONFIG_MODULES=n")


def _render(**variables):
    # Jinja as the template module sets it up (trim_blocks, the trailing newline kept), with the
    # collection's filters under their FQCNs
    env = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["comment"] = lambda text: f"#\n# {text}\n#"
    for name, function in kconfig_filter.FilterModule().filters().items():
        env.filters[f"labkit.cluster.{name}"] = function
    return env.from_string(TEMPLATE.read_text()).render(ansible_managed="Ansible managed", **variables)


def test_kernel_build_template_renders_localversion_then_the_symbols():
    text = _render(kernel_build_localversion="-web10g", kernel_build_config={"TCP_ESTATS": True, "HZ": 250})
    assert text.splitlines()[-4:] == [
        'CONFIG_LOCALVERSION="-web10g"',
        "# CONFIG_LOCALVERSION_AUTO is not set",
        "CONFIG_TCP_ESTATS=y",
        "CONFIG_HZ=250",
    ]
    empty = _render(kernel_build_localversion="1", kernel_build_config={})
    assert empty.endswith('CONFIG_LOCALVERSION="1"\n# CONFIG_LOCALVERSION_AUTO is not set\n')
