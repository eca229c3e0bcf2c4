"""tools/role_readme.py catches drift between README, argument_specs and defaults."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import role_readme  # noqa: E402

pytestmark = pytest.mark.lint


def _role(tmp_path: Path, defaults: dict, options: dict) -> Path:
    role = tmp_path / "demo"
    for sub in ("tasks", "defaults", "meta"):
        (role / sub).mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text("---\n[]\n")
    (role / "defaults" / "main.yml").write_text(yaml.safe_dump(defaults))
    specs = {"argument_specs": {"main": {"short_description": "demo", "options": options}}}
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(specs))
    (role / "README.md").write_text(f"# demo\n\n{role_readme.BEGIN}\n{role_readme.END}\n\nmore text\n")
    return role


OPTIONS = {"demo_items": {"type": "list", "elements": "str", "default": ["a"], "description": ["Items, C(a) | b."]}}


def test_generates_then_checks_clean(tmp_path, capsys):
    role = _role(tmp_path, {"demo_items": ["a"]}, OPTIONS)
    assert role_readme.main(["--check", str(role)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert role_readme.main([str(role)]) == 0
    text = (role / "README.md").read_text()
    assert "| `demo_items` | list of str | `[a]` | Items, `a` \\| b. |" in text
    assert text.endswith("more text\n")
    assert role_readme.main(["--check", str(role)]) == 0


def test_default_mismatch_is_reported(tmp_path, capsys):
    role = _role(tmp_path, {"demo_items": ["b"]}, OPTIONS)
    assert role_readme.main([str(role)]) == 1
    assert "default of demo_items is ['b'] in defaults/main.yml but ['a'] in argument_specs" in capsys.readouterr().err


def test_undeclared_default_and_bad_prefix_are_reported(tmp_path, capsys):
    options = dict(OPTIONS, other_flag={"type": "bool", "description": "x"})
    role = _role(tmp_path, {"demo_items": ["a"], "demo_secret": 1}, options)
    assert role_readme.main([str(role)]) == 1
    err = capsys.readouterr().err
    assert "demo_secret, which argument_specs does not declare" in err
    assert "option other_flag does not start with demo_" in err


def test_missing_markers_are_reported(tmp_path, capsys):
    role = _role(tmp_path, {"demo_items": ["a"]}, OPTIONS)
    (role / "README.md").write_text("# demo\n")
    assert role_readme.main(["--check", str(role)]) == 1
    assert "needs the markers" in capsys.readouterr().err
