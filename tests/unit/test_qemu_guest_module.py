"""labkit.cluster.qemu_guest before any guest runs: hostile or bad definitions are refused naming the
field, with nothing written and systemctl never called (a recording stand-in on PATH: the controller
has no systemd as PID 1, so starting and restarting guests needs a QEMU host that has). The generated
unit files are read by systemd's own parser (`systemd-analyze verify`), including arguments that need
systemd quoting."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.module_utils import qemu_guest as spec
from ansible_collections.labkit.cluster.plugins.modules import qemu_guest
from tree_snapshot import snapshot

QEMU = shutil.which("qemu-system-x86_64")


@pytest.fixture
def host(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/systemctl-calls\nexit 3\n')
    (bin_dir / "systemctl").chmod(0o755)
    (tmp_path / "units").mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(ansible_warnings, "_global_warnings", {})
    monkeypatch.setattr(module_utils_internal, "is_controller", False)
    return tmp_path


def refused(host, capsys, fragment, **args):
    args.setdefault("guest", {"name": "g1", "kernel": "/boot/vmlinuz"})
    args.update(unit_dir=str(host / "units"), _ansible_diff=True)
    if QEMU:
        args.setdefault("qemu", QEMU)
    before = snapshot(host)
    with patch_module_args(args), pytest.raises(SystemExit):
        qemu_guest.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed"), result
    assert fragment in result["msg"], result["msg"]
    assert result["changed"] is False
    assert snapshot(host) == before  # no unit written, systemctl never called
    return result


@pytest.mark.parametrize(
    ("guest", "fragment"),
    [
        ({"name": "../../etc/x", "kernel": "/boot/vmlinuz"}, "guest name: '../../etc/x' is not a name"),
        ({"name": "g1", "kernel": "/boot/../etc/shadow"}, "must be an absolute path without '..'"),
        ({"name": "g1", "kernel": "/boot/vmlinuz", "append": "quiet\nExecStartPre=/bin/sh"}, "contains a newline"),
        ({"name": "g1", "kernel": "/boot/vmlinuz", "extra_args": ["-x\n[Service]"]}, "contains a newline"),
        (
            {"name": "g1", "kernel": "/boot/vmlinuz", "cxl": {"devices": [{"size": "100M"}]}},
            "must be a multiple of 256M",
        ),
        ({"name": "g1", "kernel": "/boot/vmlinuz", "cxl": {"devices": [{"kind": "hdm"}]}}, "is not a CXL device kind"),
        ({"name": "g1", "kernel": "/boot/vmlinuz", "ivshmem": ["nope"]}, "names region nope, not one of the host's"),
        ({"name": "g1"}, "give a kernel (and initrd) to boot directly, or a disk"),
        ({"kernel": "/boot/vmlinuz"}, "guest name: None is not a name"),
    ],
)
def test_bad_guests_are_refused_before_anything(host, capsys, guest, fragment):
    if not QEMU and "name" in guest and "is not a name" not in fragment:
        pytest.skip("qemu-system-x86_64 is needed to read its version")
    refused(host, capsys, fragment, guest=guest)


def test_bad_unit_names_in_after_are_refused(host, capsys):
    refused(host, capsys, "after: 'x; rm -rf /' is not a unit name", after=["x; rm -rf /"])


def test_bad_regions_are_refused(host, capsys):
    refused(host, capsys, "regions[0].size: 3M must be a multiple of 2M", regions=[{"name": "a", "size": "3M"}])


@pytest.mark.skipif(not QEMU, reason="qemu-system-x86_64 is needed to read its version")
def test_volatile_cxl_on_this_qemu_names_the_version(host, capsys):
    version = spec.qemu_version(subprocess.run([QEMU, "--version"], capture_output=True, text=True, check=True).stdout)
    if version >= spec.VOLATILE_CXL_QEMU:
        pytest.skip(f"QEMU {version} supports volatile CXL devices")
    guest = {"name": "g1", "kernel": "/boot/vmlinuz", "cxl": {"devices": [{"kind": "volatile"}]}}
    refused(host, capsys, "needs QEMU >= 8.0 (volatile-memdev); this host's QEMU is %d.%d" % version, guest=guest)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is needed to parse units")
def test_units_pass_systemds_own_parser(tmp_path):
    guest = spec.validate_guest(
        {
            "name": "odd",
            "kernel": sys.executable,  # an existing file: verify checks that ExecStart's binary exists
            "append": 'console=ttyS0 msg="a b" back\\slash 100% $HOME',
            "cxl": {"devices": [{"name": "m0"}]},
        },
        {},
        (7, 2),
    )
    argv = spec.qemu_argv(
        guest, {}, run_dir="/run/labkit/qemu/odd", files_dir="/var/lib/labkit/qemu/odd", qemu=sys.executable
    )
    unit = tmp_path / "labkit-qemu-odd.service"
    unit.write_text(spec.unit_text(guest, argv, after=["labkit-ivshmem-shm0.service"]))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    # the Requires= unit does not exist here; everything else must parse cleanly
    problems = [line for line in done.stderr.splitlines() if "labkit-ivshmem-shm0.service" not in line and line.strip()]
    assert problems == [], done.stderr
    text = unit.read_text()
    assert '"console=ttyS0 msg=\\"a b\\" back\\\\slash 100%% $$HOME"' in text


@pytest.mark.parametrize(
    ("arg", "word"),
    [
        ("plain", "plain"),
        ("a b", '"a b"'),
        ('q"uote', '"q\\"uote"'),
        ("50%", "50%%"),
        ("$HOME", "$$HOME"),
        ("back\\slash", '"back\\\\slash"'),
        ("", '""'),
    ],
)
def test_systemd_words(arg, word):
    assert spec.systemd_word(arg) == word


@pytest.mark.skipif(not QEMU, reason="qemu-system-x86_64 is needed to read its version")
@pytest.mark.parametrize("restart", [False, True])
def test_a_running_guest_with_an_unchanged_unit_is_restarted_only_when_asked(tmp_path, monkeypatch, capsys, restart):
    """A rebuilt initramfs leaves the unit as it was: only `restart` boots the guest on the new one."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # a systemd whose guest runs and is enabled; every other call is recorded
    (bin_dir / "systemctl").write_text(
        f'#!/bin/sh\ncase "$1" in is-active|is-enabled) exit 0;; esac\necho "$@" >> {tmp_path}/calls\n'
    )
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(ansible_warnings, "_global_warnings", {})
    monkeypatch.setattr(module_utils_internal, "is_controller", False)
    units = tmp_path / "units"
    units.mkdir()
    args = {"guest": {"name": "g1", "kernel": "/boot/vmlinuz"}, "unit_dir": str(units), "qemu": QEMU}
    with patch_module_args(args), pytest.raises(SystemExit):
        qemu_guest.main()  # writes the unit (the guest "runs": it is restarted for its new unit)
    capsys.readouterr()
    (tmp_path / "calls").unlink()
    with patch_module_args({**args, "restart": restart}), pytest.raises(SystemExit):
        qemu_guest.main()
    result = json.loads(capsys.readouterr().out)
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    assert result.get("restarted") is restart and result["changed"] is restart, result
    assert calls == (["restart labkit-qemu-g1.service"] if restart else [])
