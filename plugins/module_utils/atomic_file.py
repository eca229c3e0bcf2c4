# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Write files atomically (temp file in the same directory, fsync, rename) and describe the change as a diff.

Generic on purpose: any module of the collection that owns a file uses FileChange to decide whether
the file changes, to produce Ansible's diff, and to write it without a window in which a reader sees a
half-written file. Writes go through symlinks to the file they point to, keep the replaced file's owner,
mode, extended attributes and SELinux label, and hold a lock (locked()) so concurrent writers of one
file do not lose each other's edits. Temp files of an interrupted writer are removed by the next write.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import re
import shutil
import stat
import tempfile
import time
from contextlib import contextmanager

DEFAULT_MODE = 0o644

# mkstemp's names: prefix + 8 characters of this alphabet + suffix.
_TEMP_RANDOM = r"[a-z0-9_]{8}"
_TEMP_SUFFIX = ".tmp"

# Directories this process holds the lock of: real path -> [fd, depth], so nested locked() calls do
# not wait on themselves (flock locks belong to an open file, so a second open would block).
_held = {}


def read_bytes(path):
    """Content of path as bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def read_text(path, encoding="utf-8"):
    """Content of path as text, or None when it does not exist."""
    data = read_bytes(path)
    return None if data is None else data.decode(encoding, errors="surrogateescape")


def resolve(path):
    """The file a write to path must replace: path itself, or what its symlinks finally point to.

    Replacing a symlink with a plain file would leave the file it points to (Debian's
    /etc/sysctl.d/99-sysctl.conf -> ../sysctl.conf) stale, so writes go through to the target.
    """
    return os.path.realpath(path)


@contextmanager
def locked(path):
    """Hold an exclusive lock for a read-modify-write of path.

    The lock is an flock on the directory that holds path's resolved target, so it leaves no file
    behind, and every cooperating writer of that file (through any symlink) waits for the others.
    Re-entrant within one process; atomic_write takes it too. The directory is created when missing.
    """
    directory = os.path.dirname(resolve(path))
    if directory in _held:
        _held[directory][1] += 1
        try:
            yield
        finally:
            _held[directory][1] -= 1
        return
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _held[directory] = [fd, 1]
        try:
            yield
        finally:
            del _held[directory]
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def atomic_write(path, data, mode=None, module=None):
    """Replace path (through its symlinks) with data (bytes or text) in one rename, under locked(path).

    As AnsibleModule.atomic_move does, the file keeps the owner, group, mode, extended attributes and
    SELinux label of the file it replaces (as far as the user may set them); a new file gets `mode`
    (default 0644) and, when an AnsibleModule is given and SELinux is on, the default label of its path.
    The parent directory is created when missing.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogateescape")
    with locked(path):
        _replace(resolve(path), lambda handle: handle.write(data), mode, module)


def atomic_copy(src, dest, mode=None, module=None):
    """Copy src to dest through a temp file and a rename (for binaries such as a .ko); dest gets `mode`
    (default 0644), whatever mode an earlier dest had."""

    def fill(handle):
        with open(src, "rb") as inp:
            shutil.copyfileobj(inp, handle)

    with locked(dest):
        _replace(resolve(dest), fill, DEFAULT_MODE if mode is None else mode, module, keep_attrs=False)


def clean_stale_temps(path):
    """Remove temp files an interrupted writer of path left behind (call with locked(path) held:
    then no cooperating writer is mid-write). Returns the names removed."""
    directory, name = os.path.split(resolve(path))
    pattern = re.compile(r"^%s%s%s$" % (re.escape(".%s." % name), _TEMP_RANDOM, re.escape(_TEMP_SUFFIX)))
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for entry in entries:
        if pattern.match(entry):
            try:
                os.unlink(os.path.join(directory, entry))
                removed.append(entry)
            except OSError:
                pass
    return removed


def _replace(path, fill, mode, module, keep_attrs=True):
    """Write a temp file next to path with fill(handle), fsync it, give it the metadata of the file it
    replaces (or `mode` for a new file), and rename it over path; the temp file never survives an error."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    clean_stale_temps(path)
    try:
        current = os.stat(path)
    except FileNotFoundError:
        current = None
    if current is not None and stat.S_ISDIR(current.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", path)
    selinux = module is not None and module.selinux_enabled()
    context = None
    if selinux:
        context = module.selinux_context(path) if current is not None else module.selinux_default_context(path)

    fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=_TEMP_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if current is not None and keep_attrs:
            _copy_metadata(current, path, tmp_path)
        else:
            os.chmod(tmp_path, DEFAULT_MODE if mode is None else mode)
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise
    if selinux and context is not None:
        module.set_context_if_different(path, context, False)
    _fsync_directory(directory)


def _copy_metadata(current, src, dest):
    """Give dest the owner, mode and extended attributes (SELinux label included) of src, whose stat
    result is `current`; what the user may not set (EPERM) is skipped, as atomic_move does."""
    try:
        os.chown(dest, current.st_uid, current.st_gid)
    except PermissionError:
        pass
    os.chmod(dest, stat.S_IMODE(current.st_mode))
    try:
        shutil.copystat(src, dest)  # mode, times, and on Linux the extended attributes
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EACCES, errno.ENOTSUP):
            raise
    now = time.time()
    os.utime(dest, times=(now, now))


def remove(path):
    """Remove path (a symlink itself, not what it points to); True when something was removed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    _fsync_directory(os.path.dirname(os.path.abspath(path)))
    return True


def backup_path(path, timestamp):
    """Copy path to path.<timestamp>~ (content and mode) and return that name, or None when path is absent."""
    if not os.path.exists(path):
        return None
    dest = "%s.%s~" % (path, timestamp)
    shutil.copy2(path, dest)
    return dest


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class FileChangedError(OSError):
    """The file changed on disk between FileChange reading it and apply() writing it."""


class FileChange:
    """The wanted content of one text file, compared with what is on disk.

    `after` None means the file should not exist. `changed`, `diff()` and `apply()` are what a
    module needs for check mode, diff mode and the real run. For a read-modify-write (`after` computed
    from `before`), create and apply the FileChange inside `with locked(path):` so no other writer's
    change is lost; apply() refuses (FileChangedError) to overwrite a file that changed since it was read.
    """

    def __init__(self, path, after, mode=None, module=None):
        self.path = path
        self.before = read_text(path)
        self.after = after
        self.mode = mode
        self.module = module

    @property
    def changed(self):
        return self.before != self.after

    def diff(self):
        return {
            "before_header": self.path if self.before is not None else "%s (absent)" % self.path,
            "after_header": self.path if self.after is not None else "%s (absent)" % self.path,
            "before": self.before or "",
            "after": self.after or "",
        }

    def apply(self):
        """Write or remove the file when it changes; returns changed."""
        if not self.changed:
            return False
        with locked(self.path):
            if read_text(self.path) != self.before:
                raise FileChangedError(
                    errno.EAGAIN, "changed by another writer while this task edited it; run the task again", self.path
                )
            if self.after is None:
                remove(self.path)
            else:
                atomic_write(self.path, self.after, mode=self.mode, module=self.module)
        return True
