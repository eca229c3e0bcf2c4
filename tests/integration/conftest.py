"""Session fixtures for tests that need the booted sim lab.

One lab per test session (booting is the expensive part): `lab` brings up what
inventories/sim names, or reuses it when it is already up, and takes it down at the end
unless LABKIT_KEEP_LAB=1 (handy while iterating: the next session then starts in seconds).
"""

import os

import pytest
from playbook_runner import SIM_INVENTORY
from playbook_runner import run_playbook as _run_playbook
from simlab.lab import Lab


@pytest.fixture(scope="session")
def lab():
    sim = Lab(SIM_INVENTORY)
    sim.up()
    yield sim
    if not os.environ.get("LABKIT_KEEP_LAB"):
        sim.down()


@pytest.fixture(scope="session")
def run_playbook(lab):
    """run_playbook(play, limit=..., extra_vars=..., check=..., diff=...) against the booted sim lab."""
    return _run_playbook
