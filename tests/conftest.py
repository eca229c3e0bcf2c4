"""Shared test set-up: the checkout is importable as the collection, simlab as a package, and the
tests are grouped for a parallel run (`./labkit test` runs pytest-xdist with `--dist loadgroup`)."""

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("LABKIT_CACHE", Path.home() / ".cache" / "labkit"))
COLLECTIONS = CACHE / "collections"

# ./labkit links the checkout at COLLECTIONS/ansible_collections/labkit/cluster; do it here too so a
# bare `pytest` works after `./labkit setup` (two xdist workers may race to make it).
_link = COLLECTIONS / "ansible_collections" / "labkit" / "cluster"
if not _link.exists():
    _link.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        _link.symlink_to(ROOT)

for path in (str(COLLECTIONS), str(ROOT / "tools")):
    if path not in sys.path:
        sys.path.insert(0, path)

os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", f"{COLLECTIONS}:{CACHE / 'peers'}")
os.environ.setdefault("LABKIT_CACHE", str(CACHE))

# Work units of a parallel run. A unit runs on one worker, in order, so its module fixtures are set
# up once: every test module is a unit of its own, except
#   - every module on the shared sim lab (the session fixture `lab`): one lab, booted once;
#   - the modules that build or boot the suite kernel (tests/suite_kernel.py): kernel_build builds it
#     and the dcPIM trial boot reuses its artifact, so they never build one tree at the same time.
SHARED_LAB = "simlab"
SUITE_KERNEL = "suite_kernel"
_SUITE_KERNEL_MODULES = ("test_kernel_build", "test_dcpim_patched")
# Order of the units: the suite kernel first (from an empty cache its build is the longest step, and
# it runs fastest while no guest competes for the CPU), then the units without guests, then those
# with guests (marked `lab`); longest first within each (seconds with a warm cache, from a run's
# LABKIT_TIMELINE read by bench/timeline.py), so the long ones start at once and the short ones fill in.
# A unit not listed counts as short.
UNIT_SECONDS = {
    SHARED_LAB: 610,
    SUITE_KERNEL: 420,
    "test_rpi_kernel": 380,
    "test_molecule": 420,
    "test_web10g": 350,
    "test_dcpim_module": 245,
    "test_simlab_rpi": 200,
    "test_idrac_power": 60,
    "test_nrk_host_setup": 60,
    "test_lint": 55,
    "test_simlab_lifecycle": 25,
    "test_playbook_tags": 25,
    "test_nrk_baremetal": 25,
    "test_qemu_guest_boot": 15,
    "test_uml_lab": 16,
}


def _uses_shared_lab(item) -> bool:
    defs = getattr(item, "_fixtureinfo", None)
    fixturedefs = defs.name2fixturedefs.get("lab", ()) if defs else ()
    return bool(fixturedefs) and fixturedefs[-1].scope == "session"


def work_unit(item) -> str:
    module = Path(str(item.fspath)).stem
    if _uses_shared_lab(item):
        return SHARED_LAB
    if module in _SUITE_KERNEL_MODULES:
        return SUITE_KERNEL
    return module


def pytest_itemcollected(item):
    """Mark each test with its work unit as it is collected: xdist reads the mark when collection ends."""
    item.add_marker(pytest.mark.xdist_group(work_unit(item)))


def pytest_collection_modifyitems(session, config, items):
    """Order the work units (see above); within a unit, the order of the files is kept (kernel_build
    before the dcPIM trial boot that reuses its kernel)."""
    units = {}
    for item in items:
        units.setdefault(work_unit(item), []).append(item)
    order = sorted(
        units,
        key=lambda unit: (
            unit != SUITE_KERNEL,
            any(item.get_closest_marker("lab") for item in units[unit]),
            -UNIT_SECONDS.get(unit, 0),
        ),
    )
    for unit, tests in units.items():
        if unit == SUITE_KERNEL:
            tests.sort(key=lambda item: _SUITE_KERNEL_MODULES.index(Path(str(item.fspath)).stem))
    items[:] = [item for unit in order for item in units[unit]]


# LABKIT_TIMELINE=<file>: each worker appends one JSON line per test phase (worker, unit, test, phase,
# start, end), so a run's idle and overlapping stretches can be read afterwards (bench/timeline.py).
_TIMELINE = os.environ.get("LABKIT_TIMELINE", "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _timed(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _timed(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield from _timed(item, "teardown")


def _timed(item, phase: str):
    start = time.time()
    yield
    if _TIMELINE:
        record = {
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            "unit": work_unit(item),
            "test": item.nodeid,
            "phase": phase,
            "start": round(start, 2),
            "end": round(time.time(), 2),
        }
        with open(_TIMELINE, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
