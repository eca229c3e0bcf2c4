"""Hostile input to build_tree: bad paths, empty argv and bad env names are refused before anything is written
or run."""

import json
import subprocess

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.modules import build_tree


def run(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        build_tree.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def base(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    patch = tmp_path / "01.patch"
    patch.write_text("")
    return {
        "dest": str(tmp_path / "out" / "key"),
        "source": str(repo),
        "revision": "HEAD",
        "patches": [str(patch)],
        "steps": [{"argv": ["true"]}],
    }


HOSTILE = [
    ("dest", "{tmp}/out/../../etc", "contains '..'"),
    ("dest", "relative/key", "not an absolute path"),
    ("dest", "{tmp}/out/ke\ny", "control character"),
    ("source", "{tmp}/re\x1bpo", "control character"),
    ("revision", "--output=/tmp/x", "starts with '-'"),
    ("revision", "HEAD\n", "control character"),
    ("patches", ["{tmp}/../x.patch"], "contains '..'"),
    ("creates", ["/etc/passwd"], "not absolute"),
    ("creates", ["../x"], "contains '..'"),
    ("steps", [{"argv": []}], "empty argv"),
    ("steps", [{"argv": ["make"], "chdir": "../.."}], "contains '..'"),
    ("steps", [{"argv": ["make"], "chdir": "/tmp"}], "not absolute"),
    ("steps", [{"argv": ["make"], "env": {"A B": "1"}}], "not an identifier"),
    ("steps", [{"argv": ["make"], "env": {"1A": "1"}}], "not an identifier"),
    ("steps", [{"argv": ["make"], "env": {"LD_X\n": "1"}}], "not an identifier"),
]


def fill(value, tmp):
    if isinstance(value, str):
        return value.replace("{tmp}", tmp)
    if isinstance(value, list):
        return [fill(v, tmp) for v in value]
    return value


@pytest.mark.parametrize("case", HOSTILE)
def test_refused_and_nothing_written(tmp_path, base, capsys, case):
    key, value, message = case
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    res = run(dict(base, **{key: fill(value, str(tmp_path))}), capsys)
    assert res["failed"] is True and message in res["msg"], res["msg"]
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
