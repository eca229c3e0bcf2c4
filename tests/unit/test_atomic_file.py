"""atomic_file: writes replace the file in one rename (through symlinks, under a lock), keep its metadata,
and describe the change as a diff."""

import multiprocessing
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


def test_write_through_symlink_keeps_link_and_updates_target(tmp_path):
    # Debian: /etc/sysctl.d/99-sysctl.conf -> ../sysctl.conf
    real = tmp_path / "sysctl.conf"
    real.write_text("a = 1\n")
    real.chmod(0o640)
    (tmp_path / "sysctl.d").mkdir()
    link = tmp_path / "sysctl.d" / "99-sysctl.conf"
    link.symlink_to("../sysctl.conf")

    change = atomic_file.FileChange(str(link), "a = 2\n")
    assert change.before == "a = 1\n"
    assert change.apply() is True
    assert link.is_symlink() and os.readlink(link) == "../sysctl.conf"
    assert real.read_text() == "a = 2\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path / "sysctl.d")) == ["99-sysctl.conf"]
    assert sorted(os.listdir(tmp_path)) == ["sysctl.conf", "sysctl.d"]


def _add_keys(path, worker, count):
    for index in range(count):
        with atomic_file.locked(path):
            change = atomic_file.FileChange(path, None)
            change.after = (change.before or "") + "k%d_%d = %d\n" % (worker, index, index)
            change.apply()


def test_concurrent_read_modify_write_keeps_every_key(tmp_path):
    path = str(tmp_path / "99-many.conf")
    workers, count = 4, 75
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_add_keys, args=(path, worker, count)) for worker in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    lines = open(path).read().splitlines()
    assert len(lines) == workers * count == len(set(lines))
    assert sorted(os.listdir(tmp_path)) == ["99-many.conf"]


def test_apply_refuses_a_file_changed_since_it_was_read(tmp_path):
    path = tmp_path / "x.conf"
    path.write_text("a = 1\n")
    change = atomic_file.FileChange(str(path), "a = 1\nb = 2\n")
    path.write_text("a = 1\nc = 3\n")  # another writer, between read and write
    with pytest.raises(atomic_file.FileChangedError, match="another writer"):
        change.apply()
    assert path.read_text() == "a = 1\nc = 3\n"


def test_failed_fill_leaves_original_and_no_temp(tmp_path, monkeypatch):
    src = tmp_path / "m.ko"
    src.write_bytes(b"new")
    dest = tmp_path / "dest.ko"
    dest.write_bytes(b"old")

    def broken_copy(_inp, _out):
        raise OSError("read error")

    monkeypatch.setattr(atomic_file.shutil, "copyfileobj", broken_copy)
    with pytest.raises(OSError, match="read error"):
        atomic_file.atomic_copy(str(src), str(dest))
    assert dest.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["dest.ko", "m.ko"]


def test_stale_temp_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "file.conf"
    target.write_text("old\n")
    (tmp_path / ".file.conf.k1ll_d9x.tmp").write_text("half")  # mkstemp's name for this file
    (tmp_path / ".other.conf.abcd1234.tmp").write_text("not ours")
    (tmp_path / ".file.conf.notes").write_text("not a temp file")
    atomic_file.atomic_write(str(target), "new\n")
    assert target.read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == [".file.conf.notes", ".other.conf.abcd1234.tmp", "file.conf"]


def test_write_keeps_extended_attributes(tmp_path):
    target = tmp_path / "file.conf"
    target.write_text("old\n")
    try:
        os.setxattr(target, "user.labkit", b"kept")
    except OSError as exc:
        pytest.skip("no user extended attributes on %s: %s" % (tmp_path, exc))
    atomic_file.atomic_write(str(target), "new\n")
    assert os.getxattr(target, "user.labkit") == b"kept"


def test_write_keeps_owner(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    target = tmp_path / "file.conf"
    target.write_text("old\n")
    os.chown(target, 65534, 65534)
    atomic_file.atomic_write(str(target), "new\n")
    assert (target.stat().st_uid, target.stat().st_gid) == (65534, 65534)


class FakeSelinuxModule:
    """The AnsibleModule SELinux calls atomic_move makes, recorded."""

    def __init__(self):
        self.calls = []

    def selinux_enabled(self):
        return True

    def selinux_context(self, path):
        self.calls.append(("context", path))
        return ["system_u", "object_r", "etc_t", "s0"]

    def selinux_default_context(self, path):
        self.calls.append(("default", path))
        return ["system_u", "object_r", "system_conf_t", "s0"]

    def set_context_if_different(self, path, context, changed):
        self.calls.append(("set", path, context[2]))
        return changed


def test_selinux_label_kept_or_defaulted_through_the_module(tmp_path):
    module = FakeSelinuxModule()
    path = str(tmp_path / "new.conf")
    atomic_file.atomic_write(path, "a\n", module=module)
    assert module.calls == [("default", path), ("set", path, "system_conf_t")]
    module.calls.clear()
    atomic_file.atomic_write(path, "b\n", module=module)
    assert module.calls == [("context", path), ("set", path, "etc_t")]


def test_directory_target_is_refused_and_untouched(tmp_path):
    target = tmp_path / "conf.d"
    target.mkdir()
    with pytest.raises(IsADirectoryError):
        atomic_file.atomic_write(str(target), "x\n")
    assert target.is_dir() and os.listdir(target) == []
    assert sorted(os.listdir(tmp_path)) == ["conf.d"]
