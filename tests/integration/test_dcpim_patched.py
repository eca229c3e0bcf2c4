"""dcPIM's patched kernel through playbooks/dcpim.yml: kernel_build on a builder, grub_kernel on the dcPIM hosts
(trial boot through GRUB, commit or fall back), then dcpim_module against the kernel that runs.

A lab of its own: dp-3 and dp-4, `simlab_firmware: uefi` guests (OVMF + GRUB EFI, so grub-reboot and
grub-set-default really decide what boots), and two dcPIM kernel builders that are the controller itself
(build-good, build-broken: `ansible_connection: local`, in the dcpim_kernel_builders group, which simlab
does not boot). The kernel is Debian's linux-source-6.1 with the dcPIM stand-in's kernel_impl/diff.patch
(taken from its checkout by dcpim_module's kernel_patch entry point) and a small configuration
(tinyconfig + tests/fixtures/kernel/sim-guest-x86_64.config): the suite kernel of tests/suite_kernel.py,
with the demo patch as a site patch (dcpim_kernel_extra_patches). test_kernel_build built that artifact
earlier in the same work unit, so build-good finds it and builds nothing; dp-3 gets the artifact and its
headers tree from grub_kernel, and dcpim_module builds the module against it after the trial boot.
build-broken builds the same kernel with a built-in command line naming a root disk the guest does not
have (suite_kernel's no-root variant, which test_rpi_kernel's Pi falls back from too; built incrementally, in the
same build directory; builders build one after the other): dp-4 takes it, panics, resets
(panic=-1) into GRUB's saved default, the old kernel, and is reported failed. The kernels have no
initramfs: Debian's update-grub then names the root by device (root=/dev/vda2), which the kernel
resolves itself.
The lab is also simlab's own test of the uefi firmware (its guests boot from their own disks).
"""

import json
import os
import shlex
import shutil

import pytest
import suite_kernel
import yaml
from playbook_runner import run_playbook
from simlab.lab import Lab
from test_dcpim_module import PLAYBOOK, ROOT, make_repo

pytestmark = [pytest.mark.lab, pytest.mark.slow]

TARBALL = suite_kernel.TARBALL
HOSTS = ("dp-3", "dp-4")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not TARBALL.exists():
        pytest.fail(f"missing {TARBALL}: run ./labkit setup (Debian package linux-source-6.1)")
    base = tmp_path_factory.mktemp("dcpim-patched")
    url = make_repo(base / "repo")
    directory = base / "inventory"
    shutil.copytree(ROOT / "inventories" / "sim" / "group_vars", directory / "group_vars")
    # the controller as it runs test_kernel_build (its user, its Python), so both share the suite kernel's cache
    builder = {
        "ansible_connection": "local",
        "ansible_become": False,
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
    }
    builders = {
        "build-good": {**builder, **suite_kernel.dcpim_kernel_vars()},
        "build-broken": {
            **builder,
            **suite_kernel.dcpim_kernel_vars(suite_kernel.no_root_kernel_vars()),
        },
    }
    hosts = {
        "dp-3": {"ansible_port": 2287, "lab_address": "10.213.7.13", "dcpim_kernel_build_host": "build-good"},
        "dp-4": {"ansible_port": 2288, "lab_address": "10.213.7.14", "dcpim_kernel_build_host": "build-broken"},
    }
    common = {
        "simlab_firmware": "uefi",
        "dcpim_module_enabled": True,
        "dcpim_module_kernel": "patched",
        "dcpim_module_cpu_patch": True,
        "dcpim_module_git_url": url,
        "dcpim_module_git_version": "main",
        "dcpim_module_fetch_on": "controller",
        "dcpim_module_controller_cache": str(base / "cache"),
        "dcpim_module_compat_patches": [],  # for upstream's source, not the stand-in's (test_dcpim_module.py)
        "grub_kernel_initramfs": "never",
        "grub_kernel_trial_timeout": 420,
        "grub_kernel_controller_cache": str(base / "grub_kernel"),
    }
    inventory = {
        "all": {
            "children": {
                "dcpim_kernel_builders": {"hosts": builders},
                "dcpim_hosts": {"hosts": hosts, "vars": common},
            }
        }
    }
    (directory / "hosts.yml").write_text(yaml.safe_dump(inventory))
    simlab = Lab(directory)
    simlab.up()
    before = {host: simlab.ssh(host, "uname -r").stdout.strip() for host in HOSTS}
    yield {"lab": simlab, "inventory": directory, "before": before}
    if not os.environ.get("LABKIT_KEEP_LAB"):
        simlab.down()


def console(lab, host: str) -> str:
    return (lab["lab"].directory / host / "console.log").read_bytes().decode(errors="replace")


def test_guests_boot_through_ovmf_and_grub_from_their_own_disks(lab):
    guest = lab["lab"]
    out = guest.ssh(
        "dp-3",
        "test -d /sys/firmware/efi && echo efi; findmnt -no FSTYPE,SOURCE /boot/efi; findmnt -no SOURCE /; "
        "ls /boot/efi/EFI/BOOT; test -s /boot/grub/grubenv && echo grubenv; "
        "grep -c '^### BEGIN /etc/grub.d/10_linux' /boot/grub/grub.cfg",
    ).stdout.split()
    assert out == ["efi", "vfat", "/dev/vda1", "/dev/vda2", "BOOTX64.EFI", "grubenv", "1"]
    cmdline = guest.ssh("dp-3", "cat /proc/cmdline").stdout
    assert "console=ttyS0,115200" in cmdline and "net.ifnames=0" in cmdline
    assert guest.ssh("dp-3", "ip -o link show eth1").returncode == 0
    assert lab["before"]["dp-3"] == guest.image_for("uefi").kernel_release


@pytest.fixture(scope="module")
def trial(lab):
    """The whole group in one run: build-good's kernel (the suite kernel, already built) and build-broken's (built
    incrementally in the same build directory) are trial-booted on dp-3 and dp-4."""
    return run_playbook(PLAYBOOK, inventory=lab["inventory"], timeout=3600)


def test_trial_boot_commits_the_kernel(lab, trial):
    guest = lab["lab"]
    assert trial.failed("dp-3") == 0, trial.stdout[-4000:]
    assert trial.failed("build-good") == 0 and trial.failed("build-broken") == 0, trial.stdout[-4000:]
    release = guest.ssh("dp-3", "uname -r").stdout.strip()
    assert release.endswith(suite_kernel.LOCALVERSION) and release != lab["before"]["dp-3"]
    assert release.startswith("6.1.")
    assert "root=/dev/vda2" in guest.ssh("dp-3", "cat /proc/cmdline").stdout
    assert (
        guest.ssh("dp-3", f"readlink /lib/modules/{release}/build").stdout.strip()
        == f"/usr/src/labkit-headers-{release}"
    )
    # the module was built against the new kernel's headers tree and loaded into it
    assert guest.ssh("dp-3", "test -d /proc/sys/net/dcpim").returncode == 0
    vermagic = guest.ssh("dp-3", f"modinfo -F vermagic /lib/modules/{release}/extra/dcpim_module.ko").stdout
    assert vermagic.startswith(release + " "), vermagic
    # committed: GRUB's saved default is the entry that booted (the trial already showed GRUB boots it),
    # and the one-shot entry is spent
    env = guest.ssh("dp-3", "grub-editenv - list").stdout
    assert "saved_entry=gnulinux-advanced-" in env and f"-{release}-advanced-" in env, env
    assert "next_entry=\n" in env + "\n" or "next_entry" not in env, env


def test_lab_report_probe_reads_the_committed_artifact_and_its_fallback(lab, trial):
    """lab_report's probe (what cluster.yml's last play runs) on the host that committed and the one that fell back."""
    probe = (ROOT / "roles" / "lab_report" / "files" / "probe.py").read_text()
    guest = lab["lab"]
    committed = json.loads(guest.ssh("dp-3", f"python3 -c {shlex.quote(probe)}").stdout)["kernel"]
    result = trial.result("dp-3", "Publish the result")["ansible_facts"]["grub_kernel_result"]
    assert committed["loader"] == "grub" and committed["running"] == result["release"], committed
    # the artifact id is the first 16 hex digits of its hash (docs/artifact.md)
    assert committed["artifact"] and result["hash"].startswith(committed["artifact"]), (committed, result)
    assert committed["fallback"] == lab["before"]["dp-3"] and committed["trial_pending"] is False, committed
    kept = json.loads(guest.ssh("dp-4", f"python3 -c {shlex.quote(probe)}").stdout)["kernel"]
    assert kept["running"] == lab["before"]["dp-4"] and kept["artifact"] is None and not kept["trial_pending"], kept


def test_kernel_that_does_not_come_back_leaves_the_old_one(lab, trial):
    assert trial.failed("dp-4") == 1
    assert "did not come back" in trial.stdout or "came back with" in trial.stdout, trial.stdout[-4000:]
    assert "GRUB's saved default was not changed" in trial.stdout
    assert "grub_kernel on dp-4" in trial.stdout and "the failed entry is gnulinux-advanced-" in trial.stdout
    guest = lab["lab"]
    assert guest.ssh("dp-4", "uname -r").stdout.strip() == lab["before"]["dp-4"]
    env = guest.ssh("dp-4", "grub-editenv - list").stdout
    assert suite_kernel.NO_ROOT_LOCALVERSION not in env, env
    # OVMF, GRUB, the trial kernel's panic, GRUB again (its one-shot entry spent), the old kernel
    text = console(lab, "dp-4")
    assert "Kernel panic" in text and "VFS: Unable to mount root" in text
    assert text.count("Welcome to GRUB!") >= 2 and "BdsDxe: starting" in text


def test_second_run_changes_nothing(lab, trial):
    # the builder is part of the composition: its play hands the artifact fact to grub_kernel
    again = run_playbook(PLAYBOOK, inventory=lab["inventory"], limit="dp-3:build-good")
    assert again.rc == 0, again.stdout[-4000:]
    assert again.changed("dp-3") == 0, again.stdout[-4000:]
