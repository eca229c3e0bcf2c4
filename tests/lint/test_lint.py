"""Static checks over the whole repository: ruff, ansible-lint (production profile), role READMEs,
ansible-test sanity. Each test prints the tool's own output when it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sanity

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# ansible-test sanity takes about 70 s with its venvs cached under ~/.cache/labkit/ansible-test-home
# and a few minutes more on a fresh machine, where it creates them (pylint, yamllint, voluptuous ...).
SANITY_TIMEOUT = int(os.environ.get("LABKIT_SANITY_TIMEOUT", "900"))

pytestmark = pytest.mark.lint


def _tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else name


def _run(*cmd: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", NO_COLOR="1")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _check(result: subprocess.CompletedProcess, expect: str | None = None) -> None:
    """Fail with the tool's own output (and nothing else) unless it exited 0 [and printed `expect`]."""
    output = result.stdout + result.stderr
    if result.returncode != 0 or (expect is not None and expect not in output):
        pytest.fail(f"{' '.join(map(str, result.args))} exited {result.returncode}\n{output}", pytrace=False)


def test_ruff_check():
    result = _run(_tool("ruff"), "check", "--no-cache", "--output-format", "concise", ".")
    _check(result)


def test_ruff_format():
    result = _run(_tool("ruff"), "format", "--no-cache", "--check", "--diff", ".")
    _check(result)


def test_ansible_lint_production_profile():
    # Profile, offline mode and exclusions come from .ansible-lint at the repository root.
    result = _run(_tool("ansible-lint"), "--nocolor", timeout=900)
    _check(result, expect="Profile 'production' was required, and it passed")


def test_role_readmes_match_argument_specs():
    result = _run(sys.executable, str(ROOT / "tools" / "role_readme.py"), "--check")
    _check(result)


def test_ansible_test_sanity():
    try:
        result = sanity.run(sanity.DEFAULT_ARGS, timeout=SANITY_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"ansible-test sanity took longer than {SANITY_TIMEOUT} s (LABKIT_SANITY_TIMEOUT)\n{exc.stdout}")
    _check(result)
