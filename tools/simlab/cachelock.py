"""Locks for what simlab makes once in its cache (keys, certificates, images, templates).

Test workers and `simlab up` calls may run at the same time; the first one builds a thing, the others
wait and then find it built. Each thing has its own lock, so two images build side by side. A lock is
re-entrant within a process (guests started from threads) and an flock across processes, released
when a process dies. Nested locks are always taken in one order (template, then image, then key).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import threading

from simlab import paths


class _CacheLock:
    def __init__(self, name: str):
        self.name = name
        self._threads = threading.RLock()
        self._depth = 0
        self._handle = None

    @contextlib.contextmanager
    def held(self):
        with self._threads:
            if self._depth == 0:
                directory = paths.cache_dir() / "locks"
                directory.mkdir(parents=True, exist_ok=True)
                self._handle = open(directory / f"{self.name}.lock", "w")
                fcntl.flock(self._handle, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._handle.close()
                    self._handle = None


_LOCKS: dict[str, _CacheLock] = {}
_REGISTRY = threading.Lock()


def held(name: str):
    with _REGISTRY:
        lock = _LOCKS.setdefault(name, _CacheLock(name))
    return lock.held()


def locked(name):
    """Run the decorated function under the lock `name` (a string, or a function of the call's
    arguments that returns one): for the ensure_* functions that build something once."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with held(name(*args, **kwargs) if callable(name) else name):
                return function(*args, **kwargs)

        return wrapper

    return decorate
