"""Session fixtures for tests that need the booted sim lab.

One lab per test session (booting is the expensive part): `lab` brings up what
inventories/sim names, or reuses it when it is already up. Every test on it runs in one work unit
(tests/conftest.py), so the lab is taken down as soon as the last of them is done: idle guests would
otherwise take CPU from the rest of the run. LABKIT_KEEP_LAB=1 keeps it up (handy while iterating:
the next session then starts in seconds).
"""

import os

import pytest
from playbook_runner import SIM_INVENTORY
from playbook_runner import run_playbook as _run_playbook
from simlab.lab import Lab

_shared = {}


@pytest.fixture(scope="session")
def lab():
    sim = Lab(SIM_INVENTORY)
    sim.up()
    _shared["lab"] = sim
    yield sim
    _take_down()


@pytest.fixture(scope="session")
def run_playbook(lab):
    """run_playbook(play, limit=..., extra_vars=..., check=..., diff=...) against the booted sim lab."""
    return _run_playbook


def _take_down() -> None:
    sim = _shared.pop("lab", None)
    if sim is not None and not os.environ.get("LABKIT_KEEP_LAB"):
        sim.down()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if "lab" in _shared and (nextitem is None or not _on_shared_lab(nextitem)):
        _take_down()


def _on_shared_lab(item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    fixturedefs = info.name2fixturedefs.get("lab", ()) if info else ()
    return bool(fixturedefs) and fixturedefs[-1].scope == "session"
