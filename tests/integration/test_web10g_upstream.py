"""web10g_dlkm's default pin and patch series against the real upstream web10g-dlkm (no guest, ~15 s).

Clones ../shared/upstream/web10g-dlkm.bundle (next to the checkout) at the role's default
web10g_dlkm_git_version and runs the labkit.cluster.build_tree module on it, as tasks/build.yml does: the
compat patches, then the div_u64 series (what the role applies on 32-bit ARM, or everywhere with
web10g_dlkm_div_u64_patch: always), named NN-<name> in one directory, then
`make -C <kernel tree> M=<source> modules` against the controller's Debian 6.1 headers
(/usr/src/linux-headers-*-amd64, from linux-headers-amd64).

Debian's kernel does not carry the web10g kernel patch (no CONFIG_TCP_ESTATS, no <net/tcp_estats.h>,
no struct tcp_estats), so the module cannot be built here: the compile is expected to stop at exactly
that missing kernel API, in tcp_estats_mib_var.h, after the kernel headers both .c files include
before it (the <linux/version.h> and <linux/math64.h> the patches add among them) compiled. It must
not stop on a patch, on nla_strlcpy (gone since Linux 5.11) or on a 64-bit division. The code the
patches change comes after that include, so its compile is not proven here; the test checks instead
that the 6.1 headers declare nla_strscpy() and no nla_strlcpy(), and that the patched source calls
only the former.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "web10g_dlkm"
MODULE = ROOT / "plugins" / "modules" / "build_tree.py"
BUNDLE = ROOT.parent / "shared" / "upstream" / "web10g-dlkm.bundle"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
# build_tree's patch command, options and all; the test asserts build_tree still uses it
PATCH = ["patch", "-p1", "--forward", "--batch", "--no-backup-if-mismatch", "-r", "-"]
WEB10G_API_ERRORS = (
    "error: #error This should not be included outside of CONFIG_TCP_ESTATS enabled builds.",
    "fatal error: net/tcp_estats.h: No such file or directory",
)


def _headers() -> Path | None:
    trees = sorted(Path("/usr/src").glob("linux-headers-*-amd64"))
    return trees[-1] if trees else None


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    if not BUNDLE.is_file():
        pytest.skip(f"{BUNDLE} is missing: the real web10g-dlkm comes from ../shared/upstream next to the checkout")
    kdir = _headers()
    if kdir is None:
        pytest.skip("no /usr/src/linux-headers-*-amd64: apt-get install linux-headers-amd64")
    for tool in ("git", "make", "gcc", "patch"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing")
    tmp = tmp_path_factory.mktemp("web10g_upstream")
    git = tmp / "git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(BUNDLE), str(git)], check=True)
    pin = DEFAULTS["web10g_dlkm_git_version"]
    # the pin is on a branch or a tag of upstream, so a normal clone has it
    refs = subprocess.run(
        ["git", "-C", str(git), "for-each-ref", "--contains", pin, "--format=%(refname)", "refs/heads", "refs/tags"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    patches = tmp / "patches"
    patches.mkdir()
    series = DEFAULTS["web10g_dlkm_compat_patches"] + DEFAULTS["web10g_dlkm_div_u64_patches"]
    for index, name in enumerate(series, start=1):
        shutil.copy(ROLE / "files" / name, patches / f"{index:02d}-{Path(name).name}")
    directory = tmp / "build" / "key"
    step = {
        "name": f"make -C {kdir} M={directory}.tmp modules",
        "argv": ["make", "-C", str(kdir), f"M={directory}.tmp", "modules"],
    }
    args = {
        "dest": str(directory),
        "source": str(git),
        "revision": pin,
        "patches": [str(p) for p in sorted(patches.iterdir())],
        "steps": [step],
        "creates": ["tcp_estats_nl.ko"],
    }
    (tmp / "args.json").write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    run = subprocess.run(
        [sys.executable, str(MODULE), str(tmp / "args.json")], capture_output=True, text=True, timeout=600, check=False
    )
    return {
        "pin": pin,
        "refs": refs,
        "run": json.loads(run.stdout),
        "tree": Path(f"{directory}.failed"),
        "patches": sorted(patches.iterdir()),
        "kdir": kdir,
    }


def test_the_pin_is_on_a_branch_of_upstream(build):
    assert "refs/heads/master" in build["refs"], build["refs"]


def test_build_tree_patches_with_the_command_the_test_repeats(build):
    assert json.dumps(PATCH) in MODULE.read_text()


def test_the_patch_series_applies_to_the_pin(build):
    run = build["run"]
    assert "does not apply" not in run["msg"], run["msg"]
    applied = (build["tree"] / ".labkit-patches").read_text().split()
    assert applied == [patch.name for patch in build["patches"]]
    assert "div_u64((u64)stats->start_tv.tv_nsec, 1000)" in (build["tree"] / "tcp_estats_mib_var.c").read_text()
    source = (build["tree"] / "tcp_estats_nl_mod.c").read_text()
    calls = re.findall(r"^\s*(nla_str[ls]cpy)\(name, ", source, re.MULTILINE)
    assert calls == ["nla_strscpy"]


def test_a_second_apply_is_refused(build):
    for patch in build["patches"]:
        with patch.open() as handle:
            again = subprocess.run(PATCH, cwd=build["tree"], stdin=handle, capture_output=True, text=True, check=False)
        assert again.returncode != 0, patch.name
        assert "Reversed (or previously applied) patch detected!  Skipping patch." in again.stdout, again.stdout


def test_the_6_1_headers_have_nla_strscpy_only(build):
    common = sorted(Path("/usr/src").glob(f"{build['kdir'].name.removesuffix('-amd64')}-common"))
    headers = (common[-1] if common else build["kdir"]) / "include" / "net" / "netlink.h"
    text = headers.read_text()
    assert "ssize_t nla_strscpy(" in text
    assert "nla_strlcpy" not in text


def test_the_compile_stops_at_the_missing_web10g_kernel_api(build):
    run = build["run"]
    assert run.get("failed") and run.get("rc") == 2, run
    assert "modules failed" in run["msg"]
    log = (build["tree"] / "build.log").read_text()
    diagnostics = re.findall(r"^(\S+?):\d+:\d+: ((?:fatal )?error: .*)$", log, re.MULTILINE)
    # both objects stop there, and nowhere else
    assert {(Path(path).name, message) for path, message in diagnostics} == {
        ("tcp_estats_mib_var.h", message) for message in WEB10G_API_ERRORS
    }, log
    for symptom in ("nla_strlcpy", "__udivdi3", "__aeabi_uldivmod", "implicit declaration"):
        assert symptom not in log, symptom
