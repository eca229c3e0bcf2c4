"""labkit.cluster.grub_entry on a fake /boot/grub and /etc/default/grub in a temp directory: the menu of a
Debian 12 grub.cfg (a simple entry, a submenu with normal and recovery entries, a firmware entry) is read,
and the environment block is written as grub-editenv writes it."""

import json
import os
from pathlib import Path

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.module_utils import grub
from ansible_collections.labkit.cluster.plugins.modules import grub_entry

DATA = Path(__file__).parent / "data" / "grub-debian12.cfg"
UUID = "4f1d2c3b-aaaa-bbbb-cccc-0123456789ab"
SUBMENU = f"gnulinux-advanced-{UUID}"
RUNNING = f"{SUBMENU}>gnulinux-6.1.0-13-amd64-advanced-{UUID}"
NEW = f"{SUBMENU}>gnulinux-6.1.0-labkit-suite-advanced-{UUID}"


@pytest.fixture
def boot(tmp_path, monkeypatch):
    (tmp_path / "boot" / "grub").mkdir(parents=True)
    (tmp_path / "etc" / "default").mkdir(parents=True)
    (tmp_path / "boot" / "grub" / "grub.cfg").write_text(DATA.read_text())
    (tmp_path / "boot" / "grub" / "grubenv").write_bytes(grub.render_env({"saved_entry": ""}))
    (tmp_path / "etc" / "default" / "grub").write_text('GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=""\n')
    # a grub-mkconfig that records its call and writes the prepared menu
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mkconfig = bin_dir / "grub-mkconfig"
    mkconfig.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/mkconfig.calls\ncp {DATA} "$2"\n')
    mkconfig.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(ansible_warnings, "_global_warnings", {})
    monkeypatch.setattr(module_utils_internal, "is_controller", False)
    return tmp_path


def run(boot, capsys, check=False, **args):
    args.setdefault("config", str(boot / "boot" / "grub" / "grub.cfg"))
    args.setdefault("env", str(boot / "boot" / "grub" / "grubenv"))
    args.setdefault("defaults_file", str(boot / "etc" / "default" / "grub"))
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        grub_entry.main()
    return json.loads(capsys.readouterr().out)


def env(boot):
    return grub.parse_env((boot / "boot" / "grub" / "grubenv").read_bytes())


def test_menu_of_a_debian_grub_cfg_with_its_submenu():
    entries = grub.parse_menu(DATA.read_text())
    assert [e["title"] for e in entries] == [
        "Debian GNU/Linux",
        "Debian GNU/Linux, with Linux 6.1.0-labkit-suite",
        "Debian GNU/Linux, with Linux 6.1.0-labkit-suite (recovery mode)",
        "Debian GNU/Linux, with Linux 6.1.0-13-amd64",
        "Debian GNU/Linux, with Linux 6.1.0-13-amd64 (recovery mode)",
        "UEFI Firmware Settings",
    ]
    assert entries[3]["path"] == RUNNING
    assert entries[3]["index_path"] == "1>2"
    assert entries[3]["submenu"] == ["Advanced options for Debian GNU/Linux"]
    assert entries[3]["kernel"] == "/boot/vmlinuz-6.1.0-13-amd64"
    assert entries[3]["initrd"] == ["/boot/initrd.img-6.1.0-13-amd64"]
    assert entries[1]["cmdline"] == "root=/dev/vda2 ro console=ttyS0,115200 net.ifnames=0"
    assert entries[5]["path"] == "uefi-firmware" and entries[5]["kernel"] is None


def test_the_release_entry_is_the_stable_one_not_the_simple_or_recovery_entry():
    entries = grub.parse_menu(DATA.read_text())
    assert grub.entry_for_release(entries, "6.1.0-labkit-suite")["path"] == NEW
    assert grub.entry_for_release(entries, "6.1.0-13-amd64")["path"] == RUNNING
    assert grub.entry_for_release(entries, "6.1.0-13") is None


def test_saved_entries_resolve_by_ids_titles_or_index():
    entries = grub.parse_menu(DATA.read_text())
    assert grub.resolve_saved(entries, RUNNING) == (entries[3], True)
    titles = "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-13-amd64"
    assert grub.resolve_saved(entries, titles) == (entries[3], True)
    assert grub.resolve_saved(entries, "1>2") == (entries[3], False)
    assert grub.resolve_saved(entries, "0") == (entries[0], False)
    assert grub.resolve_saved(entries, "gone>away") == (None, False)
    assert grub.resolve_saved(entries, "") == (None, False)


def test_environment_block_round_trip_keeps_1024_bytes_and_other_variables():
    data = grub.render_env({"saved_entry": RUNNING, "boot_success": "1"})
    assert len(data) == 1024 and data.startswith(b"# GRUB Environment Block\n")
    assert grub.parse_env(data) == {"saved_entry": RUNNING, "boot_success": "1"}
    with pytest.raises(grub.GrubError):
        grub.render_env({"x": "y" * 1100})


def test_saved_default_pins_the_running_kernel_before_a_trial(boot, capsys):
    res = run(boot, capsys, release="6.1.0-13-amd64", select="default", keep_valid=True, saved_default=True)
    assert res["changed"] and res["regenerated"]
    assert res["saved_entry"] == RUNNING and res["default_entry"]["kernel"] == "/boot/vmlinuz-6.1.0-13-amd64"
    assert "GRUB_DEFAULT=saved\n" in (boot / "etc" / "default" / "grub").read_text()
    assert Path(res["backup_file"]).read_text().startswith("GRUB_DEFAULT=0\n")
    assert env(boot)["saved_entry"] == RUNNING
    again = run(boot, capsys, release="6.1.0-13-amd64", select="default", keep_valid=True, saved_default=True)
    assert not again["changed"] and not again["regenerated"]


def test_keep_valid_keeps_a_named_default_and_pins_an_index(boot, capsys):
    (boot / "etc" / "default" / "grub").write_text("GRUB_DEFAULT=saved\n")
    titles = "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-13-amd64"
    (boot / "boot" / "grub" / "grubenv").write_bytes(grub.render_env({"saved_entry": titles}))
    res = run(boot, capsys, release="6.1.0-labkit-suite", select="default", keep_valid=True, saved_default=True)
    assert not res["changed"] and res["saved_entry"] == titles
    (boot / "boot" / "grub" / "grubenv").write_bytes(grub.render_env({"saved_entry": "1>2"}))
    res = run(boot, capsys, release="6.1.0-labkit-suite", select="default", keep_valid=True, saved_default=True)
    assert res["changed"] and env(boot)["saved_entry"] == RUNNING


def test_once_sets_next_entry_and_leaves_the_saved_default(boot, capsys):
    (boot / "boot" / "grub" / "grubenv").write_bytes(grub.render_env({"saved_entry": RUNNING}))
    res = run(boot, capsys, release="6.1.0-labkit-suite", select="once", regenerate=True)
    assert res["changed"] and res["entry"] == NEW and res["kernel_cmdline"].startswith("root=/dev/vda2 ")
    assert env(boot) == {"saved_entry": RUNNING, "next_entry": NEW}
    assert (boot / "mkconfig.calls").read_text().split() == ["-o", str(boot / "boot" / "grub" / "grub.cfg")]
    assert res["diff"][-1]["after"] == f"saved_entry={RUNNING}\nnext_entry={NEW}\n"


def test_check_mode_reports_and_writes_nothing(boot, capsys):
    before = (boot / "boot" / "grub" / "grubenv").read_bytes()
    res = run(boot, capsys, check=True, release="6.1.0-labkit-suite", select="once", saved_default=True)
    assert res["changed"] and res["next_entry"] == NEW
    assert (boot / "boot" / "grub" / "grubenv").read_bytes() == before
    assert (boot / "etc" / "default" / "grub").read_text().startswith("GRUB_DEFAULT=0\n")
    assert not (boot / "mkconfig.calls").exists()


def test_a_release_without_entry_fails_and_leaves_the_environment(boot, capsys):
    before = (boot / "boot" / "grub" / "grubenv").read_bytes()
    res = run(boot, capsys, release="6.0.3-dcpim", select="once")
    assert res["failed"] and "no entry that boots vmlinuz-6.0.3-dcpim" in res["msg"]
    assert (boot / "boot" / "grub" / "grubenv").read_bytes() == before
