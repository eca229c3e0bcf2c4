"""A trailing newline is not part of a name. Python's `$` matches before a final newline, so every
validator that checks a whole value must match all of it (`fullmatch`): "g1\\n" would otherwise pass as a
guest name, a kernel release or a Redfish id and reach a unit file, a GRUB menu or a URL."""

import pytest
from ansible_collections.labkit.cluster.plugins.module_utils import bmc_inputs, grub, kconfig, kernel_module
from ansible_collections.labkit.cluster.plugins.module_utils import qemu_guest as spec


def refuses(check, value):
    try:
        problem = check(value)
    except Exception:  # each validator raises its own error type
        return True
    return problem is not None


@pytest.mark.parametrize(
    ("check", "good"),
    [
        (lambda v: spec.check_name(v, "name") and None, "g1"),
        (grub.release_problem, "6.1.0-28-amd64"),
        (kernel_module.module_name_problem, "tcp_estats_nl"),
        (kernel_module.param_name_problem, "debug"),
        (lambda v: bmc_inputs.check_system_id(v) and None, "System.Embedded.1"),
        (lambda v: bmc_inputs.parse_host(v) and None, "idrac1.lab"),
    ],
)
def test_a_value_with_a_trailing_newline_is_refused(check, good):
    assert not refuses(check, good)
    assert refuses(check, good + "\n")


def test_a_kconfig_value_with_a_newline_inside_is_never_a_bare_number():
    assert kconfig.normalize_value("0x10") == "0x10"
    assert refuses(lambda v: None if kconfig.normalize_value(v).startswith('"') else "bare", "5\n6")
