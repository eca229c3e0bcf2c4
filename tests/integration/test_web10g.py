"""web10g_dlkm and web10g_userland in sim guests of a lab of their own, through playbooks/web10g.yml.

wg-1 builds tcp_estats_nl for itself (with the forced div_u64 fixture patch) and builds the userland;
wg-2 gets the module built on wg-1 (web10g_dlkm_build_host) and shipped through the controller. The
sources are the project's fixtures (tests/fixtures/web10g_*) served as local git repositories and
fetched on the controller (the guests have no network). Debian's kernel has no CONFIG_TCP_ESTATS: the
refusal uses the default requirement, the other runs ask for CONFIG_NET, which the fixture needs.

Why fixtures here and not the real upstream code: the real tcp_estats_nl needs a web10g-patched kernel
(struct tcp_estats, <net/tcp_estats.h>), which the guests do not run, so the module is the fixture; the
userland's smoke test must then talk to that fixture module, so the userland is the fixture too, and
upstream's autogen.sh + configure would add minutes per guest under TCG. The real upstream userland is
built, installed and run at the role's default pin in the Molecule scenario (molecule/web10g_userland);
the real module's pin and the role's patches are checked in tests/integration/test_web10g_upstream.py.
One play refused, one that does everything, one that changes nothing, one reboot.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from playbook_runner import run_playbook
from simlab.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
BUILDER, SHIPPED = "wg-1", "wg-2"
WORKDIR = "/var/lib/labkit/web10g_dlkm"
GENL = "genl ctrl get name tcp_estats"


def _git_repo(source: Path, target: Path, dist: bool = False) -> str:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.patch"))
    if dist and shutil.which("autoreconf"):
        # Like a release tarball: configure is generated here, so the guest skips autoreconf (about two
        # minutes under TCG). The autogen.sh path is what the Molecule scenario runs.
        subprocess.run(["autoreconf", "--force", "--install"], cwd=target, check=True, capture_output=True)
    env = dict(os.environ, GIT_AUTHOR_NAME="labkit", GIT_AUTHOR_EMAIL="labkit@example.invalid")
    env.update(GIT_COMMITTER_NAME="labkit", GIT_COMMITTER_EMAIL="labkit@example.invalid")
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fixture"]):
        subprocess.run(["git", *cmd], cwd=target, env=env, check=True)
    return f"file://{target}"


def _play(inventory: Path, extra_vars: dict, limit: str | None = None):
    text = f"- ansible.builtin.import_playbook: {ROOT / 'playbooks' / 'web10g.yml'}\n"
    return run_playbook(text, inventory=inventory, limit=limit, extra_vars=extra_vars)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web10g")
    directory = tmp / "inventory"
    shutil.copytree(ROOT / "inventories" / "sim" / "group_vars", directory / "group_vars")
    inventory = {
        "all": {
            "children": {
                "build_hosts": {"hosts": {BUILDER: {"ansible_port": 2281, "lab_address": "10.213.8.11"}}},
                "qemu_hosts": {
                    "hosts": {
                        SHIPPED: {
                            "ansible_port": 2282,
                            "lab_address": "10.213.8.12",
                            "web10g_dlkm_build_host": BUILDER,
                            "web10g_userland_enabled": False,
                        }
                    }
                },
                "web10g_hosts": {"hosts": {BUILDER: {}, SHIPPED: {}}},
            }
        }
    }
    (directory / "hosts.yml").write_text(yaml.safe_dump(inventory))
    sources = {
        "web10g_dlkm_git_url": _git_repo(FIXTURES / "web10g_dlkm", tmp / "repos" / "web10g-dlkm"),
        "web10g_dlkm_git_version": "HEAD",
        "web10g_dlkm_fetch_on": "controller",
        "web10g_dlkm_controller_cache": str(tmp / "cache" / "dlkm"),
        "web10g_userland_git_url": _git_repo(
            FIXTURES / "web10g_userland", tmp / "repos" / "web10g-userland", dist=True
        ),
        "web10g_userland_git_version": "HEAD",
        "web10g_userland_fetch_on": "controller",
        "web10g_userland_controller_cache": str(tmp / "cache" / "userland"),
    }
    full = dict(
        sources,
        web10g_dlkm_kernel_requires={"CONFIG_NET": "y"},
        web10g_dlkm_compat_patches=[],  # the role's compat patch is for upstream's source, not the fixture's
        web10g_dlkm_div_u64_patch="always",
        web10g_dlkm_div_u64_patches=[str(FIXTURES / "web10g_dlkm" / "div_u64.patch")],
        web10g_userland_smoke_test=True,
    )
    lab = Lab(directory)
    lab.up()
    refused = _play(directory, sources, limit=BUILDER)
    first = _play(directory, full)
    yield {"lab": lab, "inventory": directory, "vars": full, "refused": refused, "first": first}
    if not os.environ.get("LABKIT_KEEP_LAB"):
        lab.down()


def _loaded(lab: Lab, host: str) -> None:
    assert "tcp_estats_nl" in lab.ssh(host, "lsmod").stdout
    assert lab.ssh(host, "sysctl -n net.ipv4.tcp_estats").stdout.strip() == "127"
    family = lab.ssh(host, GENL, check=False)
    assert family.returncode == 0 and "tcp_estats" in family.stdout, family.stdout + family.stderr


def test_kernel_without_tcp_estats_is_refused(setup):
    refused = setup["refused"]
    assert refused.failed(BUILDER) == 1, refused.stdout[-3000:]
    log = " ".join(refused.stdout.split())  # the callback may wrap long messages
    assert "lacks CONFIG_TCP_ESTATS=y (it has CONFIG_TCP_ESTATS unset)" in log, refused.stdout[-3000:]
    assert "labkit.cluster.kernel_build with the web10g kernel patch" in log
    assert "labkit.cluster.rpi_kernel" in log and "Nothing was built or installed" in log
    # refused in the preflight: nothing was fetched or built
    assert "Unpack, patch and build" not in log and "Clone or update" not in log


def test_builder_builds_patched_module_and_loads_it(setup):
    lab, first = setup["lab"], setup["first"]
    assert first.rc == 0 and first.failed(BUILDER) == 0, first.stdout[-4000:]
    _loaded(lab, BUILDER)
    # the forced div_u64 patch went in, and the patched module builds and loads on x86
    assert lab.ssh(BUILDER, "modinfo -F labkit_div tcp_estats_nl").stdout.strip() == "div_u64"
    release = lab.kernel_release
    assert (
        lab.ssh(BUILDER, f"test -f /lib/modules/{release}/kernel/net/ipv4/tcp_estats_nl.ko", check=False).returncode
        == 0
    )
    assert lab.ssh(BUILDER, "cat /etc/modules-load.d/tcp_estats_nl.conf").stdout.count("tcp_estats_nl") == 1
    assert "net.ipv4.tcp_estats = 127" in lab.ssh(BUILDER, "cat /etc/sysctl.d/90-web10g.conf").stdout


def test_build_host_ships_a_module_that_loads_on_another_guest(setup):
    lab, first = setup["lab"], setup["first"]
    assert first.failed(SHIPPED) == 0, first.stdout[-4000:]
    _loaded(lab, SHIPPED)
    # nothing was built on wg-2: its module came from wg-1's build directory
    assert lab.ssh(SHIPPED, f"test -e {WORKDIR}/build", check=False).returncode != 0
    shipped = lab.ssh(SHIPPED, f"sha256sum {WORKDIR}/ko/*/tcp_estats_nl.ko").stdout.split()[0]
    built = lab.ssh(BUILDER, f"sha256sum {WORKDIR}/build/*/tcp_estats_nl.ko").stdout.split()[0]
    assert shipped == built
    # both hosts asked for the same inputs, so wg-1 built once for both, and they were sent to it once
    assert lab.ssh(BUILDER, f"ls -d {WORKDIR}/build/*/").stdout.count("\n") == 1
    send = f"Copy the source revision and the patch series to {BUILDER}"
    assert first.result(BUILDER, send)["changed"], first.stdout[-4000:]
    assert not first.result(SHIPPED, send).get("changed"), first.stdout[-4000:]


def test_userland_installed_verified_and_reads_a_connection(setup):
    lab, first = setup["lab"], setup["first"]
    assert lab.ssh(BUILDER, "/usr/local/bin/web10g-listconns").stdout.startswith("# tcp_estats: family ")
    assert "libestats.so.0" in lab.ssh(BUILDER, "ldconfig -p").stdout
    stamp = json.loads(lab.ssh(BUILDER, "cat /usr/local/share/web10g-userland/stamp").stdout)
    assert stamp["prefix"] == "/usr/local" and len(stamp["revision"]) == 40
    smoke = first.result(BUILDER, "Publish the smoke test's output")["ansible_facts"]["web10g_userland_smoke"]
    assert smoke["mask"] == 127 and smoke["variables"] == 12, smoke
    assert smoke["connection"].startswith("127.0.0.1:") and "mask 0x7f" in smoke["header"], smoke
    # the userland is only asked for on wg-1
    assert lab.ssh(SHIPPED, "test -e /usr/local/bin/web10g-listconns", check=False).returncode != 0


def test_second_run_changes_nothing(setup):
    again = _play(setup["inventory"], setup["vars"])
    assert again.rc == 0, again.stdout[-4000:]
    assert again.changed(BUILDER) == 0 and again.changed(SHIPPED) == 0, again.stdout[-6000:]


def test_module_and_sysctl_persist_across_a_reboot(setup):
    lab = setup["lab"]
    lab.reboot(SHIPPED)
    _loaded(lab, SHIPPED)
