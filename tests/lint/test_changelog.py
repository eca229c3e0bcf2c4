"""The changelog fragments are valid for antsibull-changelog, and a release made from them renders every one.

`antsibull-changelog lint` checks each fragment's sections and text; the release runs in a copy of the
collection laid out as ansible_collections/labkit/cluster (antsibull-changelog finds new plugins with
ansible-doc there), so the checkout's fragments stay unreleased."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lint
TOOL = Path(sys.executable).with_name("antsibull-changelog")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # ansible-doc (which finds the new plugins) from the same venv
    env = {**os.environ, "PATH": f"{TOOL.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(TOOL), *args], cwd=cwd, env=env, check=False, capture_output=True, text=True, timeout=300
    )


def test_fragments_pass_antsibull_changelog_lint():
    proc = run("lint", cwd=ROOT)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_a_release_renders_every_fragment(tmp_path):
    tracked = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "galaxy.yml", "changelogs", "plugins", "roles", "meta"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    copy = tmp_path / "ansible_collections" / "labkit" / "cluster"
    for name in tracked:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    proc = run("release", "--version", "0.1.0", "--date", "2026-01-01", cwd=copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    notes = (copy / "CHANGELOG.md").read_text()
    assert "## v0\\.1\\.0" in notes, notes[:2000]
    released = yaml.safe_load((copy / "changelogs" / "changelog.yaml").read_text())["releases"]["0.1.0"]
    fragments = sorted(p.name for p in (ROOT / "changelogs" / "fragments").glob("*.yml"))
    assert sorted(released["fragments"]) == fragments
    # the new modules are found in the collection itself
    assert {"kmod", "sysctl", "idrac_power"} <= {m["name"] for m in released["modules"]}, released.get("modules")
