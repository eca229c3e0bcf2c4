"""atomic_file: writes replace the file in one rename, keep its mode, and describe the change as a diff."""

import os
import stat

import pytest
from ansible_collections.labkit.cluster.plugins.module_utils import atomic_file


def test_write_creates_parent_and_file_with_default_mode(tmp_path):
    target = tmp_path / "new" / "dir" / "file.conf"
    atomic_file.atomic_write(str(target), "a = 1\n")
    assert target.read_text() == "a = 1\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_write_keeps_mode_of_replaced_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "file.conf"
    target.write_text("old\n")
    target.chmod(0o600)
    atomic_file.atomic_write(str(target), b"new\n")
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["file.conf"]


def test_write_replaces_inode_so_open_readers_keep_old_content(tmp_path):
    target = tmp_path / "file.conf"
    target.write_text("old\n")
    with open(target) as reader:
        atomic_file.atomic_write(str(target), "new\n")
        assert reader.read() == "old\n"
    assert target.read_text() == "new\n"


def test_failed_write_leaves_original_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "file.conf"
    target.write_text("old\n")

    def boom(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(atomic_file.os, "replace", boom)
    with pytest.raises(OSError):
        atomic_file.atomic_write(str(target), "new\n")
    assert target.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["file.conf"]


def test_atomic_copy_binary(tmp_path):
    src = tmp_path / "m.ko"
    src.write_bytes(bytes(range(256)) * 10)
    dest = tmp_path / "lib" / "updates" / "m.ko"
    atomic_file.atomic_copy(str(src), str(dest))
    assert dest.read_bytes() == src.read_bytes()


def test_file_change_create_modify_remove(tmp_path):
    path = str(tmp_path / "x.conf")
    change = atomic_file.FileChange(path, "k = v\n")
    assert change.changed
    assert change.diff()["before"] == ""
    assert change.diff()["before_header"].endswith("(absent)")
    assert change.apply() is True
    assert atomic_file.read_text(path) == "k = v\n"

    same = atomic_file.FileChange(path, "k = v\n")
    assert not same.changed
    assert same.apply() is False

    gone = atomic_file.FileChange(path, None)
    assert gone.changed
    assert gone.diff()["after"] == ""
    assert gone.apply() is True
    assert not os.path.exists(path)
    assert atomic_file.FileChange(path, None).changed is False


def test_remove_and_read_missing(tmp_path):
    assert atomic_file.read_text(str(tmp_path / "none")) is None
    assert atomic_file.remove(str(tmp_path / "none")) is False


def test_backup_path(tmp_path):
    path = tmp_path / "x.conf"
    assert atomic_file.backup_path(str(path), "t1") is None
    path.write_text("1\n")
    backup = atomic_file.backup_path(str(path), "t1")
    assert backup.endswith("x.conf.t1~")
    assert open(backup).read() == "1\n"
