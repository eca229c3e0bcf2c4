"""kernel_build end to end: a real kernel from Debian's linux-source-6.1, booted in QEMU.

One x86_64 build, the suite kernel (tests/suite_kernel.py: tinyconfig + what a sim guest boots with +
the project's fixture patches, one of which adds CONFIG_LABKIT_DEMO as a module + a LOCALVERSION), is
shared by the tests of this module and by the dcPIM trial boot, which reuses its artifact; it boots to a
busybox initramfs that prints `uname -r`, the fixture symbol from /proc/config.gz and /proc/labkit_demo
after loading the module from the artifact's modules tree and an out-of-tree module built against the
artifact's headers tree (kernel_build_headers), copied elsewhere first to show it stands alone. A second
run must build nothing. Kconfig
dropping a requested symbol and a patch that does not apply must fail early, naming the culprit. A
cross build for arm64 must give an arm64 Image.

Everything is cached under ~/.cache/labkit/kernel (LABKIT_KERNEL_WORKDIR to use another directory):
the unpacked source, the patched trees, the build directories, ccache and the artifacts. The slow part
on a fresh machine is the two compilations (x86_64 and arm64 tinyconfig, about 4-8 minutes each on 2
busy cores); with the artifacts cached every test takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import busybox_initramfs
import pytest
import suite_kernel
import yaml
from playbook_runner import run_playbook

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "kernel"
WORKDIR = suite_kernel.WORKDIR
TARBALL = suite_kernel.TARBALL
BUSYBOX = busybox_initramfs.BUSYBOX
LOCALVERSION = suite_kernel.LOCALVERSION
DEMO_PATCH = suite_kernel.DEMO_PATCH
BAD_PATCH = FIXTURES / "patches" / "0002-bad-context.patch"
BUILD_TASK = "Start the build in the background"
BOOT_TIMEOUT = 180


def _require(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run ./labkit setup (Debian packages linux-source-6.1, busybox-static)"
        )


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("kernel-inventory") / "hosts"
    path.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    return path


@pytest.fixture(scope="module")
def tarball_sha256():
    _require(TARBALL)
    return suite_kernel.tarball_sha256()


RESOLVED_FILES = "{{ (kernel_build_artifact | labkit.cluster.kernel_artifact).files }}"


def kernel_play(sha256: str, **role_vars) -> str:
    """A play that runs kernel_build on the controller from the linux-source-6.1 tarball."""
    variables = {
        "kernel_build_workdir": str(WORKDIR),
        "kernel_build_source": "tarball",
        "kernel_build_tarball_url": f"file://{TARBALL}",
        "kernel_build_tarball_sha256": sha256,
        "kernel_build_config_base": "tinyconfig",
        "kernel_build_poll_interval": 20,
    }
    variables.update(role_vars)
    play = [
        {
            "name": "Build a kernel",
            "hosts": "localhost",
            "gather_facts": False,
            "roles": [{"role": "labkit.cluster.kernel_build", "vars": variables}],
            "post_tasks": [
                {"name": "Show the artifact", "ansible.builtin.debug": {"var": "kernel_build_artifact"}},
                {
                    "name": "Show the artifact's files",
                    "ansible.builtin.debug": {"msg": RESOLVED_FILES},
                    # check mode sets no fact
                    "when": "kernel_build_artifact is defined",
                },
            ],
        }
    ]
    return yaml.safe_dump(play, sort_keys=False)


def x86_vars(**overrides):
    """The suite kernel's variables, with the overrides of a test."""
    return suite_kernel.kernel_build_vars(**overrides)


def timed(play: str, inventory: Path):
    start = time.monotonic()
    result = run_playbook(play, inventory=inventory, timeout=3600)
    return result, time.monotonic() - start


def artifact_of(result) -> dict:
    """The fact, with `resolved_files`: its files as labkit.cluster.kernel_artifact resolves them."""
    artifact = result.result("localhost", "Show the artifact")["kernel_build_artifact"]
    return {**artifact, "resolved_files": result.result("localhost", "Show the artifact's files")["msg"]}


def build_task_results(result) -> list:
    return [
        e
        for e in result.events
        if e.get("event") in ("runner_on_ok", "runner_on_failed")
        and str(e.get("event_data", {}).get("task", "")).startswith(BUILD_TASK)
    ]


def test_dropped_symbol_is_named_before_any_build(inventory, tarball_sha256):
    """The web10g case: CONFIG_TCP_ESTATS requested, its patch absent: fail naming it, build nothing."""
    play = kernel_play(
        tarball_sha256,
        **x86_vars(
            kernel_build_config_fragments=[
                str(FIXTURES / "qemu-x86_64.config"),
                str(FIXTURES / "labkit-demo.config"),
                str(FIXTURES / "web10g.config"),
            ],
            kernel_build_config={"CONFIG_PRINTK": "y", "E1000": "y"},
        ),
    )
    result, seconds = timed(play, inventory)
    assert result.rc != 0 and result.failed("localhost")
    failure = result.result("localhost", "Verify that every requested symbol has the requested value")
    dropped = {m["symbol"]: m for m in failure["mismatched"]}
    assert set(dropped) == {"CONFIG_TCP_ESTATS", "CONFIG_E1000"}, failure["msg"]
    assert dropped["CONFIG_TCP_ESTATS"]["actual"] == "absent"
    assert dropped["CONFIG_TCP_ESTATS"]["source"].endswith("web10g.config")
    assert "CONFIG_TCP_ESTATS" in failure["msg"] and "CONFIG_E1000" in failure["msg"]
    assert not build_task_results(result), "the build started although the configuration check failed"
    print(f"dropped symbol reported after {seconds:.0f} s (includes unpacking the source on a fresh machine)")


def test_bad_patch_is_named_with_its_failed_hunk(inventory, tarball_sha256):
    play = kernel_play(
        tarball_sha256, **x86_vars(kernel_build_patches=[{"src": str(DEMO_PATCH)}, {"src": str(BAD_PATCH)}])
    )
    result, _ = timed(play, inventory)
    assert result.rc != 0 and result.failed("localhost")
    msg = result.result("localhost", "Fail naming the patch and the hunks that do not apply")["msg"]
    assert "patch 2 of 2, 0002-bad-context.patch" in msg, msg
    assert "after 0001-labkit-demo.patch" in msg, msg
    assert "lib/Kconfig: Hunk #1 FAILED at 10." in msg, msg
    assert not build_task_results(result)
    # the half-patched work copy is never put in place as a tree of that series (stamps hold the patches' sha256)
    bad = hashlib.sha256(BAD_PATCH.read_bytes()).hexdigest()
    assert not [p for p in (WORKDIR / "trees").glob("*/.labkit-patches") if bad in p.read_text()]


@pytest.fixture(scope="module")
def x86_build(inventory, tarball_sha256):
    """The shared x86_64 build (seconds when the artifact is cached, minutes on a fresh machine)."""
    result, seconds = timed(kernel_play(tarball_sha256, **x86_vars()), inventory)
    assert result.rc == 0, result.stdout[-6000:]
    artifact = artifact_of(result)
    print(f"x86_64 build: {seconds:.0f} s (built={artifact['built']})")
    return {"result": result, "seconds": seconds, "artifact": artifact, "sha256": tarball_sha256}


def test_artifact_has_image_modules_config_and_manifest(x86_build):
    artifact = x86_build["artifact"]
    path = Path(artifact["path"])
    assert artifact["arch"] == "x86_64" and artifact["image"] == "bzImage"
    assert artifact["release"].startswith("6.1.") and artifact["release"].endswith(LOCALVERSION)
    assert len(artifact["hash"]) == 64 and path.name == artifact["hash"][:16]
    for name in ("bzImage", "config", "System.map", "kernel.release", "manifest.json", "build.log"):
        assert (path / name).is_file(), name
    assert (path / "kernel.release").read_text().strip() == artifact["release"]
    assert "CONFIG_LABKIT_DEMO=m" in (path / "config").read_text().splitlines()

    manifest = json.loads((path / "manifest.json").read_text())
    # the fact is the manifest plus where it is and whether this run built it (docs/artifact.md)
    fact = {key: value for key, value in artifact.items() if key != "resolved_files"}
    assert fact == {**manifest, "path": str(path), "build_host": "localhost", "built": fact["built"]}
    assert manifest.get("schema", 1) == 1
    assert manifest["source"] == {"type": "tarball", "url": f"file://{TARBALL}", "sha256": x86_build["sha256"]}
    assert manifest["patches"] == [
        {"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in suite_kernel.PATCHES
    ]
    assert manifest["config_sha256"] == hashlib.sha256((path / "config").read_bytes()).hexdigest()
    assert manifest["inputs"]["targets"] == ["bzImage", "modules"]

    files = artifact["resolved_files"]
    assert files["image"] == str(path / "bzImage") and files["config"] == str(path / "config")
    release_dir = Path(files["modules"]) / "lib" / "modules" / artifact["release"]
    module = release_dir / "kernel" / "lib" / "labkit_demo.ko"
    assert module.is_file()
    assert b".debug_info" not in module.read_bytes(), "INSTALL_MOD_STRIP=1 should strip the module"
    assert (release_dir / "modules.dep").is_file()
    assert not (release_dir / "build").is_symlink() and not (release_dir / "source").is_symlink()
    assert manifest["files"]["dtbs"] is None and manifest["files"]["overlays"] is None
    assert files["dtbs"] == "" and files["overlays"] == ""
    assert manifest["files"]["headers"] == "headers" and manifest["inputs"]["headers"] is True
    assert files["headers"] == str(path / "headers")
    # the hash is that of the inputs (headers only enter them when set, which keeps older ids)
    inputs_json = json.dumps(manifest["inputs"], sort_keys=True)
    assert hashlib.sha256(inputs_json.encode()).hexdigest() == artifact["hash"]


# An out-of-tree module that needs the kernel's Module.symvers (init_uts_ns is an exported symbol).
EXTERNAL_MODULE_C = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
#include <linux/utsname.h>

static int __init labkit_ext_init(void)
{
	pr_info("labkit_ext: loaded into %s\\n", init_utsname()->release);
	return 0;
}

static void __exit labkit_ext_exit(void)
{
}

module_init(labkit_ext_init);
module_exit(labkit_ext_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("labkit test: built against kernel_build's headers tree");
"""


@pytest.fixture(scope="module")
def external_module(x86_build, tmp_path_factory):
    """labkit_ext.ko, built against a copy of the artifact's headers tree in a fresh directory."""
    headers = Path(x86_build["artifact"]["resolved_files"]["headers"])
    assert headers.is_dir(), f"no headers tree in the artifact: {x86_build['artifact']}"
    base = tmp_path_factory.mktemp("elsewhere")
    copy = base / "headers"
    start = time.monotonic()
    shutil.copytree(headers, copy, symlinks=True)
    copy_seconds = time.monotonic() - start
    module_dir = base / "labkit_ext"
    module_dir.mkdir()
    (module_dir / "labkit_ext.c").write_text(EXTERNAL_MODULE_C)
    (module_dir / "Kbuild").write_text("obj-m := labkit_ext.o\n")
    start = time.monotonic()
    built = subprocess.run(
        ["make", "-C", str(copy), f"M={module_dir}", "-j2", "modules"],
        env=dict(os.environ, LC_ALL="C"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    make_seconds = time.monotonic() - start
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    print(f"headers copied in {copy_seconds:.1f} s, external module built in {make_seconds:.1f} s")
    return {"headers": copy, "dir": module_dir, "ko": module_dir / "labkit_ext.ko", "make": built}


def test_headers_tree_builds_an_external_module_from_anywhere(x86_build, external_module):
    artifact = x86_build["artifact"]
    copy = external_module["headers"]
    for name in (".config", "Module.symvers", "Makefile", "include/generated/utsrelease.h", "scripts/mod/modpost"):
        assert (copy / name).exists(), name
    # the kernel's own Makefile, not the build directory's wrapper around it
    assert "\nVERSION = " in (copy / "Makefile").read_text()[:200]
    assert (copy / "include/config/kernel.release").read_text().strip() == artifact["release"]
    if "CONFIG_OBJTOOL=y" in (copy / ".config").read_text().splitlines():
        assert os.access(copy / "tools/objtool/objtool", os.X_OK)
    outside = [p for p in copy.rglob("*") if p.is_symlink() and copy.resolve() not in p.resolve().parents]
    assert not outside, f"links out of the headers tree: {outside[:5]}"

    ko = external_module["ko"]
    assert ko.is_file(), external_module["make"].stdout[-4000:]
    vermagic = subprocess.run(
        ["modinfo", "-F", "vermagic", str(ko)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert vermagic.startswith(artifact["release"] + " "), vermagic
    # the compiler read its headers from the copy, not from the build directory or the source tree
    deps = (external_module["dir"] / ".labkit_ext.o.cmd").read_text()
    assert "include/linux/module.h" in deps and str(WORKDIR) not in deps, deps[:2000]


def _initramfs(artifact: dict, dest: Path, external_ko: Path) -> Path:
    """A busybox initramfs (uncompressed newc cpio: tinyconfig has no decompressors) that reports and reboots."""
    root = busybox_initramfs.skeleton(dest / "root")
    modules = Path(artifact["resolved_files"]["modules"]) / "lib" / "modules"
    shutil.copytree(modules, root / "lib" / "modules", symlinks=True)
    shutil.copy2(external_ko, root / "lib" / external_ko.name)
    init = root / "init"
    init.write_text(
        "#!/bin/busybox sh\n"
        "/bin/busybox --install -s /bin\n"
        "mount -t proc proc /proc\n"
        "mount -t sysfs sys /sys\n"
        'echo "LABKIT uname=$(uname -r)"\n'
        "zcat /proc/config.gz | grep -E '^CONFIG_(LABKIT_DEMO|LOCALVERSION)=' | sed 's/^/LABKIT config /'\n"
        'insmod "/lib/modules/$(uname -r)/kernel/lib/labkit_demo.ko" && echo "LABKIT proc=$(cat /proc/labkit_demo)"\n'
        'insmod /lib/labkit_ext.ko && echo "LABKIT ext=$(grep -o "^labkit_ext " /proc/modules)"\n'
        "echo LABKIT done\n"
        "reboot -f\n"
    )
    init.chmod(0o755)
    return busybox_initramfs.pack(root, dest / "initramfs.cpio")


def test_kernel_boots_in_qemu_with_its_release_and_the_fixture_symbol(x86_build, external_module, tmp_path):
    _require(BUSYBOX)
    artifact = x86_build["artifact"]
    initramfs = _initramfs(artifact, tmp_path, external_module["ko"])
    console = tmp_path / "console.log"
    cmd = [
        "qemu-system-x86_64",
        "-accel",
        "tcg",
        "-m",
        "256",
        "-no-reboot",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        f"file:{console}",
        "-kernel",
        artifact["resolved_files"]["image"],
        "-initrd",
        str(initramfs),
        "-append",
        "console=ttyS0 panic=-1",
    ]
    start = time.monotonic()
    try:
        subprocess.run(cmd, timeout=BOOT_TIMEOUT, check=True, capture_output=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the kernel did not reboot within {BOOT_TIMEOUT} s; console:\n{console.read_text()[-4000:]}")
    output = console.read_text(errors="replace")
    lines = [line.strip() for line in output.splitlines()]
    print(f"booted and rebooted in {time.monotonic() - start:.0f} s")
    assert f"LABKIT uname={artifact['release']}" in lines, output[-4000:]
    assert "LABKIT config CONFIG_LABKIT_DEMO=m" in lines, output[-4000:]
    assert f'LABKIT config CONFIG_LOCALVERSION="{LOCALVERSION}"' in lines, output[-4000:]
    assert f"LABKIT proc=labkit_demo {artifact['release']}" in lines, output[-4000:]
    assert "LABKIT ext=labkit_ext" in lines, output[-4000:]
    assert f"labkit_ext: loaded into {artifact['release']}" in output, output[-4000:]
    assert "LABKIT done" in lines


def test_second_run_builds_nothing(x86_build, inventory):
    result, seconds = timed(kernel_play(x86_build["sha256"], **x86_vars()), inventory)
    assert result.rc == 0, result.stdout[-4000:]
    assert result.changed("localhost") == 0, result.stdout[-6000:]
    artifact = artifact_of(result)
    assert artifact["hash"] == x86_build["artifact"]["hash"]
    assert artifact["built"] is False
    assert not build_task_results(result)
    print(f"cached run: {seconds:.1f} s")


def test_check_mode_touches_nothing(x86_build, inventory):
    result = run_playbook(kernel_play(x86_build["sha256"], **x86_vars()), inventory=inventory, check=True, timeout=600)
    assert result.rc == 0 and result.changed("localhost") == 0
    assert "check mode: kernel_build would fetch" in result.stdout


def test_cross_build_gives_an_arm64_image(inventory, tarball_sha256):
    play = kernel_play(
        tarball_sha256,
        kernel_build_patches=[{"src": str(DEMO_PATCH)}],
        kernel_build_localversion="-labkit-arm64",
        kernel_build_arch="arm64",
        kernel_build_cross_compile="aarch64-linux-gnu-",
        kernel_build_targets=["Image"],
    )
    result, seconds = timed(play, inventory)
    assert result.rc == 0, result.stdout[-6000:]
    artifact = artifact_of(result)
    print(f"arm64 cross build: {seconds:.0f} s (built={artifact['built']})")
    image = Path(artifact["resolved_files"]["image"])
    assert artifact["arch"] == "arm64" and image.name == "Image"
    header = image.read_bytes()[:64]
    # arm64 boot protocol: the magic "ARM\x64" at offset 56 of the Image header
    assert header[56:60] == b"ARM\x64", header
    described = subprocess.run(["file", "-b", str(image)], capture_output=True, text=True, check=True).stdout
    assert "ARM64" in described, described
    assert artifact["release"].endswith("-labkit-arm64")
    assert artifact["files"]["modules"] is None and artifact["resolved_files"]["modules"] == ""
    config = Path(artifact["resolved_files"]["config"]).read_text()
    assert "CONFIG_ARM64=y" in config and 'CONFIG_LOCALVERSION="-labkit-arm64"' in config


def test_headers_are_refused_for_a_cross_build(inventory, tarball_sha256):
    """Host programs in a headers tree run on the build host only: a cross build with headers fails early."""
    play = kernel_play(
        tarball_sha256,
        kernel_build_arch="arm64",
        kernel_build_cross_compile="aarch64-linux-gnu-",
        kernel_build_targets=["Image", "modules"],
        kernel_build_headers=True,
    )
    result, seconds = timed(play, inventory)
    assert result.rc != 0 and result.failed("localhost")
    msg = result.result("localhost", "Refuse headers for a cross build")["msg"]
    assert "native builds only" in msg and "aarch64-linux-gnu-" in msg, msg
    assert not build_task_results(result)
    print(f"cross build with headers refused after {seconds:.0f} s")


# A stand-in for the kernel's Makefile with only the configuration targets kernel_build runs; its
# olddefconfig drops CONFIG_TCP_ESTATS as Kconfig does for a symbol no Kconfig file declares.
STANDIN_MAKEFILE = """\
O ?= .
tinyconfig:
\t: > $(O)/.config
olddefconfig:
\tsed -i '/CONFIG_TCP_ESTATS/d' $(O)/.config
"""


def _standin_tree(top: Path) -> None:
    """The files the fixture patch and merge_config.sh need, taken from the linux-source-6.1 tarball,
    and the stand-in Makefile (a whole kernel costs minutes to export or unpack)."""
    (top / "scripts" / "kconfig").mkdir(parents=True)
    members = ["lib/Kconfig", "lib/Makefile", "scripts/kconfig/merge_config.sh"]
    subprocess.run(
        ["tar", "-xf", str(TARBALL), "-C", str(top), "--strip-components=1"]
        + [f"linux-source-6.1/{m}" for m in members],
        check=True,
    )
    (top / "Makefile").write_text(STANDIN_MAKEFILE)


@pytest.fixture(scope="module")
def git_source(tmp_path_factory, tarball_sha256):
    """A small git repository: the files the fixture patch and merge_config.sh need, taken at test time
    from the linux-source-6.1 tarball, and a stand-in Makefile (a whole kernel in git costs minutes)."""
    repo = tmp_path_factory.mktemp("kernel-git") / "linux"
    _standin_tree(repo)
    env = dict(os.environ, GIT_AUTHOR_NAME="labkit", GIT_AUTHOR_EMAIL="labkit@localhost")
    env.update(GIT_COMMITTER_NAME="labkit", GIT_COMMITTER_EMAIL="labkit@localhost")
    for args in (["init", "-q", "-b", "labkit-6.1.y"], ["add", "-A"], ["commit", "-q", "-m", "stand-in"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return f"file://{repo}"


def test_git_source_is_exported_patched_and_checked(git_source, inventory, tarball_sha256):
    """A git branch goes the way of the tarball: shallow clone, export, patch, configure, check."""
    play = kernel_play(
        tarball_sha256,
        **x86_vars(
            kernel_build_source="git",
            kernel_build_git_url=git_source,
            kernel_build_git_version="labkit-6.1.y",
            kernel_build_patches=[{"src": str(DEMO_PATCH)}],  # the stand-in Makefile is not the kernel's
            kernel_build_config={},
            kernel_build_config_fragments=[str(FIXTURES / "qemu-x86_64.config"), str(FIXTURES / "web10g.config")],
        ),
    )
    result, seconds = timed(play, inventory)
    assert result.rc != 0
    commit = result.result("localhost", f"Clone or update {git_source}")["after"]
    failure = result.result("localhost", "Verify that every requested symbol has the requested value")
    assert [m["symbol"] for m in failure["mismatched"]] == ["CONFIG_TCP_ESTATS"]
    source = json.loads((WORKDIR / "src" / f"git-{commit}" / ".labkit-source").read_text())
    assert source == {"type": "git", "url": git_source, "version": "labkit-6.1.y", "revision": commit}
    # The git commit's own patched tree, keyed like every tree: source id and the series' hashes.
    patch_sha256 = hashlib.sha256(DEMO_PATCH.read_bytes()).hexdigest()
    tree_key = hashlib.sha256(f"git-{commit} {patch_sha256}".encode()).hexdigest()[:16]
    assert (WORKDIR / "trees" / tree_key / ".labkit-patches").read_text() == f"{patch_sha256}\n"
    assert not build_task_results(result)
    print(f"git source exported, patched and checked in {seconds:.0f} s")


def test_two_runs_that_unpack_one_source_at_once_both_get_it(inventory, tarball_sha256, tmp_path):
    """Two runs on one build host that unpack and patch the same new source at the same time: each
    works in a directory of its own, one puts the tree in place, the other keeps it, both go on to
    configure, and nothing half-made is left behind. The source is a small tarball of the stand-in
    tree with a marker unique to this run, so its source id is new and both runs really unpack it."""
    top = tmp_path / "linux-standin"
    _standin_tree(top)
    (top / "MARKER").write_text(f"{time.time_ns()} {os.getpid()}\n")
    tarball = tmp_path / "linux-standin.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(tmp_path), "linux-standin"], check=True)
    sha256 = hashlib.sha256(tarball.read_bytes()).hexdigest()
    play = kernel_play(
        sha256,
        **x86_vars(
            kernel_build_tarball_url=f"file://{tarball}",
            kernel_build_tarball_sha256=sha256,
            kernel_build_patches=[{"src": str(DEMO_PATCH)}],
            kernel_build_config={},
            kernel_build_config_fragments=[str(FIXTURES / "qemu-x86_64.config"), str(FIXTURES / "web10g.config")],
        ),
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: run_playbook(play, inventory=inventory, timeout=900), range(2)))
    for result in results:
        # Both reach the configuration check, which the stand-in Makefile fails as in the git test.
        failure = result.result("localhost", "Verify that every requested symbol has the requested value")
        assert [m["symbol"] for m in failure["mismatched"]] == ["CONFIG_TCP_ESTATS"], result.stdout[-3000:]
    placed = [
        "placed" in r["stdout"]
        for result in results
        for r in result.results("localhost", "Put the unpacked source in place")
    ]
    assert placed.count(True) == 1, placed
    source_id = f"tarball-{sha256}"
    assert (WORKDIR / "src" / source_id / "MARKER").read_text() == (top / "MARKER").read_text()
    patch_sha256 = hashlib.sha256(DEMO_PATCH.read_bytes()).hexdigest()
    tree_key = hashlib.sha256(f"{source_id} {patch_sha256}".encode()).hexdigest()[:16]
    assert (WORKDIR / "trees" / tree_key / ".labkit-patches").read_text() == f"{patch_sha256}\n"
    leftovers = [
        p.name
        for d in ("src", "trees")
        for p in (WORKDIR / d).iterdir()
        if p.name.startswith((f"{source_id}.tmp-", f"{tree_key}.tmp-"))
    ]
    assert not leftovers, leftovers
