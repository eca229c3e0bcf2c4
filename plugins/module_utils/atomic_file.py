# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Write files atomically (temp file in the same directory, fsync, rename) and describe the change as a diff.

Generic on purpose: any module of the collection that owns a file uses FileChange to decide whether
the file changes, to produce Ansible's diff, and to write it without a window in which a reader sees a
half-written file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import stat
import tempfile

DEFAULT_MODE = 0o644


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


def atomic_write(path, data, mode=None):
    """Replace path with data (bytes or text) in one rename.

    The file keeps the mode, owner and group of the file it replaces; a new file gets `mode`
    (default 0644). The parent directory is created when missing.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogateescape")
    try:
        current = os.stat(path)
    except FileNotFoundError:
        current = None
    _replace(path, lambda handle: handle.write(data), current, mode)


def atomic_copy(src, dest, mode=None):
    """Copy src to dest through a temp file and a rename (for binaries such as a .ko); dest gets `mode`."""

    def fill(handle):
        with open(src, "rb") as inp:
            shutil.copyfileobj(inp, handle)

    _replace(dest, fill, None, mode)


def _replace(path, fill, keep, mode):
    """Write a temp file next to path with fill(handle), fsync it, give it keep's mode/owner (a stat result)
    or `mode`, and rename it over path; the temp file never survives a failure."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if keep is not None:
            os.chmod(tmp_path, stat.S_IMODE(keep.st_mode))
            if hasattr(os, "chown"):
                try:
                    os.chown(tmp_path, keep.st_uid, keep.st_gid)
                except PermissionError:
                    pass
        else:
            os.chmod(tmp_path, DEFAULT_MODE if mode is None else mode)
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def remove(path):
    """Remove path; True when something was removed."""
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


class FileChange:
    """The wanted content of one text file, compared with what is on disk.

    `after` None means the file should not exist. `changed`, `diff()` and `apply()` are what a
    module needs for check mode, diff mode and the real run.
    """

    def __init__(self, path, after, mode=None):
        self.path = path
        self.before = read_text(path)
        self.after = after
        self.mode = mode

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
        if self.after is None:
            remove(self.path)
        else:
            atomic_write(self.path, self.after, mode=self.mode)
        return True
