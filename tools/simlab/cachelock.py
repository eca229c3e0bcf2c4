"""One lock for everything simlab makes once in its cache (keys, certificates, images, templates).

Test workers and `simlab up` calls may run at the same time; the first one builds, the others wait
and then find it built. The lock is re-entrant within a process (an image build inside a template
boot, guests started from threads), and an flock across processes, released when a process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import threading

from simlab import paths


class _CacheLock:
    def __init__(self):
        self._threads = threading.RLock()
        self._depth = 0
        self._handle = None

    @contextlib.contextmanager
    def held(self):
        with self._threads:
            if self._depth == 0:
                paths.cache_dir().mkdir(parents=True, exist_ok=True)
                self._handle = open(paths.cache_dir() / ".simlab-build.lock", "w")
                fcntl.flock(self._handle, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._handle.close()
                    self._handle = None


_LOCK = _CacheLock()
held = _LOCK.held


def locked(function):
    """Run function under the cache lock (for the ensure_* functions that build once)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with held():
            return function(*args, **kwargs)

    return wrapper
