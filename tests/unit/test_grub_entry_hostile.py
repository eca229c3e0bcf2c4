"""labkit.cluster.grub_entry with hostile input: each refusal says what to fix, and nothing is written
(the whole temp directory is compared before and after, and grub-mkconfig is never run)."""

import json
import os

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.module_utils import grub
from ansible_collections.labkit.cluster.plugins.modules import grub_entry
from test_grub_entry_module import DATA
from tree_snapshot import snapshot


@pytest.fixture
def boot(tmp_path, monkeypatch):
    (tmp_path / "boot" / "grub").mkdir(parents=True)
    (tmp_path / "etc" / "default").mkdir(parents=True)
    (tmp_path / "boot" / "grub" / "grub.cfg").write_text(DATA.read_text())
    (tmp_path / "boot" / "grub" / "grubenv").write_bytes(grub.render_env({"saved_entry": "0"}))
    (tmp_path / "etc" / "default" / "grub").write_text("GRUB_DEFAULT=0\n")
    (tmp_path / "victim").write_text("untouched\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "grub-mkconfig").write_text(f"#!/bin/sh\ntouch {tmp_path}/bin/ran\n")
    (bin_dir / "grub-mkconfig").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(ansible_warnings, "_global_warnings", {})
    monkeypatch.setattr(module_utils_internal, "is_controller", False)
    return tmp_path


def refused(boot, capsys, fragment, check=False, **args):
    args.setdefault("config", str(boot / "boot" / "grub" / "grub.cfg"))
    args.setdefault("env", str(boot / "boot" / "grub" / "grubenv"))
    args.setdefault("defaults_file", str(boot / "etc" / "default" / "grub"))
    args.update(select="default", saved_default=True, regenerate=True, _ansible_check_mode=check, _ansible_diff=True)
    before = snapshot(boot)
    with patch_module_args(args), pytest.raises(SystemExit):
        grub_entry.main()
    res = json.loads(capsys.readouterr().out)
    assert res.get("failed"), res
    assert fragment in res["msg"], res["msg"]
    assert "Nothing was changed" in res["msg"]
    assert res["changed"] is False
    assert snapshot(boot) == before
    return res


@pytest.mark.parametrize(
    ("release", "fragment"),
    [
        ("", "release is empty"),
        ("../../victim", "'/' or '..'"),
        ("6.1.0/../../victim", "'/' or '..'"),
        ("6.1..0", "'/' or '..'"),
        ("6.1.0\nsaved_entry=evil", "control character"),
        ("6.1.0\r", "control character"),
        ("6.1.0\x00", "control character"),
        ("6.1.0 quiet", "is not a kernel release"),
        ("-6.1.0", "is not a kernel release"),
        ("6.1.0'$(reboot)'", "is not a kernel release"),
        ("6" * 200, "is not a kernel release"),
    ],
)
@pytest.mark.parametrize("check", [False, True])
def test_hostile_releases_are_refused(boot, capsys, release, fragment, check):
    refused(boot, capsys, fragment, check=check, release=release)


@pytest.mark.parametrize("option", ["config", "env", "defaults_file"])
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("/boot/grub/../../victim", "'..' component"),
        ("boot/grub/grubenv", "not an absolute path"),
        ("/boot/grub/grubenv\n/victim", "control character"),
        ("/boot/grub/grub\x1b.cfg", "control character"),
    ],
)
def test_hostile_paths_are_refused(boot, capsys, option, value, fragment):
    refused(boot, capsys, fragment, release="6.1.0-13-amd64", **{option: value})


@pytest.mark.parametrize("ident", ["evil\x1b[2J", "evil\\nnext_entry=pwn", "evil\nnext_entry=pwn"])
def test_an_entry_id_with_a_control_character_is_never_written(boot, capsys, ident):
    cfg = boot / "boot" / "grub" / "grub.cfg"
    entry = f"menuentry 'x' $menuentry_id_option '{ident}' {{\n  linux /boot/vmlinuz-6.1.0-x root=/dev/vda2\n}}\n"
    cfg.write_text(entry)
    (boot / "etc" / "default" / "grub").write_text("GRUB_DEFAULT=saved\n")
    before = (boot / "boot" / "grub" / "grubenv").read_bytes()
    args = {
        "release": "6.1.0-x",
        "select": "once",
        "config": str(cfg),
        "env": str(boot / "boot" / "grub" / "grubenv"),
        "defaults_file": str(boot / "etc" / "default" / "grub"),
    }
    with patch_module_args(args), pytest.raises(SystemExit):
        grub_entry.main()
    res = json.loads(capsys.readouterr().out)
    assert res.get("failed") and ("control character" in res["msg"] or "no entry" in res["msg"]), res
    assert (boot / "boot" / "grub" / "grubenv").read_bytes() == before
