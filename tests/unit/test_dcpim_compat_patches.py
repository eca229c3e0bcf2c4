"""The dcpim_module role's patch files: well-formed, small, inside kernel_impl/, and version-guarded.

dcPIM (github.com/Terabit-Ethernet/dcPIM) has no license file, so no test machine holds a copy and no test
can apply the patches to the real source or build it; roles/dcpim_module/README.md records that build (the
role's series on the pinned revision against Debian 12's 6.1 headers). Here each patch is parsed, and GNU
patch applies it to a file rebuilt from the patch's own old side (hunk line numbers and counts consistent).
The lab tests (tests/integration/test_dcpim_module.py) use the project's stand-in, which lacks the files
the compat patches touch, so they set dcpim_module_compat_patches to [].
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "dcpim_module"
PATCHES = sorted((ROLE / "files" / "patches").glob("*.patch"))
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
SPECS = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
COMPAT = DEFAULTS["dcpim_module_compat_patches"]

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
MAX_CONTEXT = 3  # "minimal context": never more than diff -u's default on either side of a change


def parse(text: str) -> list[dict]:
    """Unified diff -> [{old, new, hunks: [{old_start, new_start, lines}]}]; raises on anything malformed."""
    lines = text.splitlines()
    files, i = [], 0
    while i < len(lines) and not lines[i].startswith("--- "):
        i += 1  # the description before the diff, as patch(1) skips it
    assert i < len(lines), "no diff in the patch"
    while i < len(lines):
        assert lines[i].startswith("--- a/") and lines[i + 1].startswith("+++ b/"), lines[i : i + 2]
        current = {"old": lines[i][6:].split("\t")[0], "new": lines[i + 1][6:].split("\t")[0], "hunks": []}
        files.append(current)
        i += 2
        while i < len(lines) and lines[i].startswith("@@"):
            match = HUNK.match(lines[i])
            assert match, f"bad hunk header: {lines[i]}"
            old_start, old_count, new_start, new_count = (int(g) if g is not None else 1 for g in match.groups())
            i += 1
            body = []
            while i < len(lines) and lines[i][:1] in (" ", "-", "+", "\\"):
                if lines[i].startswith("--- a/") and i + 1 < len(lines) and lines[i + 1].startswith("+++ b/"):
                    break
                body.append(lines[i])
                i += 1
            old = [line for line in body if line[:1] in (" ", "-")]
            new = [line for line in body if line[:1] in (" ", "+")]
            assert (len(old), len(new)) == (old_count, new_count), f"hunk counts of {match.group(0)}"
            current["hunks"].append({"old_start": old_start, "new_start": new_start, "lines": body})
        assert current["hunks"], f"no hunk for {current['old']}"
        while i < len(lines) and not lines[i].strip():
            i += 1
    return files


def added(files: list[dict]) -> list[str]:
    return [line[1:] for f in files for h in f["hunks"] for line in h["lines"] if line.startswith("+")]


def test_the_defaults_name_existing_patches_and_agree_with_argument_specs():
    assert COMPAT == SPECS["dcpim_module_compat_patches"]["default"]
    assert COMPAT, "the pinned revision does not build on Debian 12's kernels without compat patches"
    for name in COMPAT + DEFAULTS["dcpim_module_stock_patches"] + DEFAULTS["dcpim_module_cpu_patches"]:
        assert (ROLE / "files" / name).is_file(), name
    # compat patches come first, with both kernels: the stock and CPU patches are written on top
    series = (ROLE / "vars" / "main.yml").read_text()
    assert "{{ dcpim_module_compat_patches\n     + (dcpim_module_stock_patches" in series


@pytest.mark.parametrize("path", PATCHES, ids=[p.name for p in PATCHES])
def test_patch_is_well_formed_small_and_inside_kernel_impl(path):
    text = path.read_text()
    files = parse(text)
    for f in files:
        assert f["old"] == f["new"], "renames are not expected"
        assert f["old"].startswith("kernel_impl/") and ".." not in f["old"].split("/"), f["old"]
        for hunk in f["hunks"]:
            kinds = "".join(line[0] for line in hunk["lines"])
            leading, trailing = len(kinds) - len(kinds.lstrip(" ")), len(kinds) - len(kinds.rstrip(" "))
            assert leading <= MAX_CONTEXT and trailing <= MAX_CONTEXT, f"{path.name}: more context than needed"
            assert kinds.strip(" "), "a hunk without a change"
    # the description says which upstream file and revision the patch was written against
    assert text.index("--- a/") > 0, "a patch starts with what it does and why"
    # the preprocessor stays balanced in what the patch adds
    directives = [re.match(r"\s*#\s*(if|ifdef|ifndef|endif)\b", line) for line in added(files)]
    opened = sum(1 for m in directives if m and m.group(1).startswith("if"))
    closed = sum(1 for m in directives if m and m.group(1) == "endif")
    assert opened == closed, f"{path.name}: #if/#endif unbalanced in the added lines"


@pytest.mark.parametrize("name", COMPAT, ids=[Path(n).name for n in COMPAT])
def test_compat_patch_names_the_pinned_revision(name):
    text = (ROLE / "files" / name).read_text()
    assert DEFAULTS["dcpim_module_git_version"] in text.split("--- a/")[0]


@pytest.mark.parametrize("name", [n for n in COMPAT if Path(n).name.startswith("kernel-")])
def test_kernel_compat_patch_is_guarded_with_linux_version_code(name):
    """A kernel-* patch keeps upstream's code on older kernels (6.0.3, dcPIM's) behind LINUX_VERSION_CODE."""
    files = parse((ROLE / "files" / name).read_text())
    new = added(files)
    version = re.search(r"kernel-(\d+)\.(\d+)-", Path(name).name)
    assert version, "kernel-<major>.<minor>-<what>.patch names the first kernel it is for"
    major, minor = version.groups()
    assert "#include <linux/version.h>" in new
    guards = [line for line in new if re.match(r"\s*#\s*(el)?if\b.*LINUX_VERSION_CODE", line)]
    assert any(f"KERNEL_VERSION({major}, {minor}, 0)" in line for line in guards), guards
    assert any(re.match(r"\s*#\s*else\b", line) for line in new), "the older kernels' branch"
    removed = [line[1:] for f in files for h in f["hunks"] for line in h["lines"] if line.startswith("-")]
    # what the patch takes out of upstream's code is still built, in the older kernels' branch
    for line in removed:
        call = re.search(r"(\w+)\(\)", line)
        if call:
            assert any(call.group(0) in n for n in new), f"{call.group(0)} is gone for older kernels"


@pytest.mark.skipif(shutil.which("patch") is None, reason="GNU patch is not installed (Debian package patch)")
@pytest.mark.parametrize("path", PATCHES, ids=[p.name for p in PATCHES])
def test_gnu_patch_applies_it_exactly_to_its_own_old_side(path, tmp_path):
    """Rebuild each file from the hunks' old side (filler elsewhere): patch(1) must apply without offset or fuzz."""
    for f in parse(path.read_text()):
        content: dict[int, str] = {}
        for hunk in f["hunks"]:
            old = [line[1:] for line in hunk["lines"] if line[:1] in (" ", "-")]
            for offset, line in enumerate(old):
                content[hunk["old_start"] + offset] = line
        target = tmp_path / f["old"]
        target.parent.mkdir(parents=True, exist_ok=True)
        last = max(content) + 2
        target.write_text("".join(content.get(n, f"/* filler {n} */") + "\n" for n in range(1, last + 1)))
    run = subprocess.run(
        ["patch", "-p1", "--forward", "--batch", "--dry-run", "-i", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "offset" not in run.stdout and "fuzz" not in run.stdout, run.stdout
