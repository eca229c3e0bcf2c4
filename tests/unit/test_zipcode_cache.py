"""The sim guests' bytecode cache for zip-imported modules (tools/simlab/guest_files), run on this
machine's Python: a source compiled once is served from the cache for another zip at another path, under
that path's name, and a changed source is compiled again."""

from __future__ import annotations

import importlib.util
import os
import zipfile
import zipimport
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "tools" / "simlab" / "guest_files" / "labkit_zipcode_cache.py"
SOURCE = "VALUE = {value}\n\ndef where():\n    return where.__code__.co_filename\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the cache is written by root only")


@pytest.fixture
def compiled(tmp_path, monkeypatch):
    """The cache installed over a counting zipimport compiler; yields the list of compiled paths."""
    calls = []
    original = zipimport._compile_source

    def counting(pathname, source):
        calls.append(pathname)
        return original(pathname, source)

    monkeypatch.setattr(zipimport, "_compile_source", counting)
    spec = importlib.util.spec_from_file_location("labkit_zipcode_cache_under_test", FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.CACHE = str(tmp_path / "cache")
    assert zipimport._compile_source is not counting  # installed
    return calls


def _code(tmp_path: Path, name: str, value: int):
    archive = tmp_path / name / "payload.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("labkit_payload.py", SOURCE.format(value=value))
    return archive, zipimport.zipimporter(str(archive)).get_code("labkit_payload")


def _run(code) -> dict:
    namespace: dict = {}
    exec(code, namespace)
    return namespace


def test_a_source_is_compiled_once_and_named_after_its_current_zip(tmp_path, compiled):
    first, code = _code(tmp_path, "one", 1)
    assert len(compiled) == 1 and _run(code)["VALUE"] == 1
    second, code = _code(tmp_path, "two", 1)
    assert len(compiled) == 1, "the second zip's identical source was compiled again"
    namespace = _run(code)
    assert namespace["VALUE"] == 1
    # the function's code, nested in the module's, carries the second zip's path, not the first's
    assert namespace["where"]().startswith(str(second)) and str(first) not in code.co_filename


def test_a_changed_source_is_compiled_again(tmp_path, compiled):
    _code(tmp_path, "one", 1)
    _, code = _code(tmp_path, "two", 2)
    assert len(compiled) == 2
    assert _run(code)["VALUE"] == 2


def test_a_broken_cache_entry_is_compiled_again(tmp_path, compiled):
    _code(tmp_path, "one", 1)
    for entry in (tmp_path / "cache").iterdir():
        entry.write_bytes(b"not marshal data")
    _, code = _code(tmp_path, "two", 1)
    assert len(compiled) == 2 and _run(code)["VALUE"] == 1
