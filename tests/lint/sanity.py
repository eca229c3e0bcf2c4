#!/usr/bin/env python
"""Run `ansible-test sanity` over a copy of the collection, offline-friendly and with cached venvs.

    python tests/lint/sanity.py [ansible-test sanity args]      (default: --venv --python 3.11)

ansible-test needs the collection at .../ansible_collections/labkit/cluster, so the files git knows
(tracked, plus untracked ones that are not ignored) are copied into a temporary tree of that shape.

Two things make repeated runs cheap and keep them off the unreachable ci-files.testing.ansible.com:
- HOME is pointed at ~/.cache/labkit/ansible-test-home for ansible-test, so the per-test venvs it
  keeps under ~/.ansible/test/venv survive between runs (ansible-test keys them by requirements);
- the pip bootstrap script ansible-test would download (get-pip-<version>.py) is replaced by a small
  stand-in that runs the same pip release from its wheel, fetched from PyPI with `pip download`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("LABKIT_CACHE", Path.home() / ".cache" / "labkit"))
TEST_HOME = CACHE / "ansible-test-home"
# The plugins and the content that ships with them; tools/, bench/ and tests/ are checked by ruff.
DEFAULT_ARGS = ["--venv", "--python", "3.11", "--color", "no", "plugins/", "meta/", "roles/", "playbooks/"]

GET_PIP_STANDIN = '''\
"""Stand-in for get-pip.py: run pip {version} from its wheel (written by labkit tests/lint/sanity.py)."""
import sys

sys.path.insert(0, {wheel!r})
from pip._internal.cli.main import main  # noqa: E402

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--force-reinstall", *args]))
'''


def pip_version_ansible_test_wants() -> str:
    """The pip release ansible-test bootstraps into its venvs."""
    # Imported here: only the venv that runs ansible-test has it.
    from ansible_test._internal.python_requirements import get_venv_packages

    class _Python:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"

    return get_venv_packages(_Python())["pip"]


def prepare_pip_bootstrap(version: str) -> None:
    cache = TEST_HOME / ".ansible" / "test" / "cache"
    standin = cache / f"get_pip_{version.replace('.', '_')}.py"
    wheels = cache / "wheels"
    wheel = wheels / f"pip-{version}-py3-none-any.whl"
    if not wheel.is_file():
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"pip=={version}", "-d", str(wheels)],
            check=True,
        )
    text = GET_PIP_STANDIN.format(version=version, wheel=str(wheel))
    if not standin.is_file() or standin.read_text() != text:
        standin.write_text(text)


def copy_collection(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    collection = dest / "ansible_collections" / "labkit" / "cluster"
    for name in filter(None, (f.decode() for f in files)):
        src = ROOT / name
        if not src.is_file():  # deleted in the work tree but still in the index
            continue
        target = collection / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return collection


def run(args: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    prepare_pip_bootstrap(pip_version_ansible_test_wants())
    ansible_test = shutil.which("ansible-test") or str(Path(sys.executable).parent / "ansible-test")
    env = dict(os.environ, HOME=str(TEST_HOME))
    with tempfile.TemporaryDirectory(prefix="labkit-sanity-") as tmp:
        collection = copy_collection(Path(tmp))
        return subprocess.run(
            [ansible_test, "sanity", *(args or DEFAULT_ARGS)],
            cwd=collection,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def main() -> int:
    result = run(sys.argv[1:])
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
