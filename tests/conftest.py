"""Shared test set-up: the checkout is importable as the collection, simlab as a package."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("LABKIT_CACHE", Path.home() / ".cache" / "labkit"))
COLLECTIONS = CACHE / "collections"

# ./labkit links the checkout at COLLECTIONS/ansible_collections/labkit/cluster; do it here too so a
# bare `pytest` works after `./labkit setup`.
_link = COLLECTIONS / "ansible_collections" / "labkit" / "cluster"
if not _link.exists():
    _link.parent.mkdir(parents=True, exist_ok=True)
    _link.symlink_to(ROOT)

for path in (str(COLLECTIONS), str(ROOT / "tools")):
    if path not in sys.path:
        sys.path.insert(0, path)

os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", f"{COLLECTIONS}:{CACHE / 'peers'}")
os.environ.setdefault("LABKIT_CACHE", str(CACHE))


def pytest_collection_modifyitems(session, config, items):
    """Run the tests that need the sim lab last, together: its guests keep using CPU while up, so
    CPU-heavy tests (kernel builds, Molecule) run before it boots. Order is otherwise kept."""
    items.sort(key=lambda item: item.get_closest_marker("lab") is not None)
