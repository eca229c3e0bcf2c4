"""The build_tree module for real on tmp_path: a tiny git repository made here, `git archive`, `patch`, `sh -c` and
`make` steps, the stamp, idempotence, check mode, a patch that does not apply and a failing step."""

import json
import subprocess

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.labkit.cluster.plugins.modules import build_tree

MAKEFILE = "all:\n\tcat greeting > out.txt\n"
GOOD_PATCH = """--- a/greeting
+++ b/greeting
@@ -1 +1 @@
-hello
+hello, patched
"""
BAD_PATCH = """--- a/greeting
+++ b/greeting
@@ -1 +1 @@
-goodbye
+nothing
"""


def run(args, capsys, check=False):
    with patch_module_args(dict(args, _ansible_check_mode=check)), pytest.raises(SystemExit):
        build_tree.main()
    return json.loads(capsys.readouterr().out)


def git(repo, *argv):
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(repo), *argv], check=True, capture_output=True, text=True, env=env).stdout


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "greeting").write_text("hello\n")
    (repo / "Makefile").write_text(MAKEFILE)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    return repo


@pytest.fixture
def patches(tmp_path):
    good = tmp_path / "01-good.patch"
    good.write_text(GOOD_PATCH)
    bad = tmp_path / "02-bad.patch"
    bad.write_text(BAD_PATCH)
    return good, bad


def args(tmp_path, repo, patches=(), steps=None):
    return {
        "dest": str(tmp_path / "build" / "key"),
        "source": str(repo),
        "revision": "HEAD",
        "patches": [str(p) for p in patches],
        "steps": steps if steps is not None else [{"argv": ["make"]}, {"argv": ["sh", "-c", 'echo "in $PWD"']}],
        "creates": ["out.txt"],
    }


def test_builds_patches_stamps_then_unchanged(tmp_path, repo, patches, capsys):
    res = run(args(tmp_path, repo, patches[:1]), capsys)
    dest = tmp_path / "build" / "key"
    assert res["changed"] is True, res
    assert (dest / "out.txt").read_text() == "hello, patched\n"
    assert json.loads((dest / ".labkit-built").read_text())["digest"] == res["digest"]
    assert f"in {dest}.tmp" in (dest / "build.log").read_text()
    assert not (tmp_path / "build" / "key.tmp").exists()
    assert (dest / ".labkit-patches").read_text() == "01-good.patch\n"
    again = run(args(tmp_path, repo, patches[:1]), capsys)
    assert again["changed"] is False and again["digest"] == res["digest"]


def test_new_inputs_rebuild(tmp_path, repo, patches, capsys):
    first = run(args(tmp_path, repo), capsys)
    second = run(args(tmp_path, repo, patches[:1]), capsys)
    assert second["changed"] is True and second["digest"] != first["digest"]
    assert (tmp_path / "build" / "key" / "out.txt").read_text() == "hello, patched\n"


def test_tarball_source(tmp_path, repo, capsys):
    tarball = tmp_path / "source.tar"
    git(repo, "archive", "--format=tar", f"--output={tarball}", "HEAD")
    res = run(dict(args(tmp_path, repo), source=str(tarball), source_type="tar", revision="v1"), capsys)
    assert res["changed"] is True
    assert (tmp_path / "build" / "key" / "out.txt").read_text() == "hello\n"


def test_check_mode_writes_nothing(tmp_path, repo, capsys):
    res = run(args(tmp_path, repo), capsys, check=True)
    assert res["changed"] is True
    assert not (tmp_path / "build").exists()


def test_patch_that_does_not_apply_is_named_and_dest_kept(tmp_path, repo, patches, capsys):
    run(args(tmp_path, repo), capsys)
    dest = tmp_path / "build" / "key"
    before = (dest / ".labkit-built").read_text()
    res = run(args(tmp_path, repo, patches), capsys)
    assert res["failed"] is True
    assert "patch 02-bad.patch does not apply to HEAD" in res["msg"]
    assert (dest / ".labkit-built").read_text() == before
    assert not (tmp_path / "build" / "key.tmp").exists()


def test_failing_step_shows_the_log_tail(tmp_path, repo, capsys):
    steps = [{"argv": ["sh", "-c", "echo first line; echo the-last-words; exit 3"], "name": "the step"}]
    res = run(args(tmp_path, repo, steps=steps), capsys)
    assert res["failed"] is True and res["rc"] == 3
    assert "the step failed (rc 3)" in res["msg"]
    assert "the-last-words" in res["msg"] and "the-last-words" in res["log_tail"]
    assert not (tmp_path / "build" / "key").exists()
    assert "the-last-words" in (tmp_path / "build" / "key.failed" / "build.log").read_text()


def test_missing_output_fails(tmp_path, repo, capsys):
    res = run(dict(args(tmp_path, repo, steps=[{"argv": ["true"]}])), capsys)
    assert res["failed"] is True and "made no out.txt" in res["msg"]


def test_stale_tmp_is_removed(tmp_path, repo, capsys):
    stale = tmp_path / "build" / "key.tmp"
    stale.mkdir(parents=True)
    (stale / "junk").write_text("x")
    run(args(tmp_path, repo), capsys)
    assert not stale.exists()
    assert not (tmp_path / "build" / "key" / "junk").exists()
