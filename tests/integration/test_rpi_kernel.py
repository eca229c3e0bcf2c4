"""rpi_kernel on sim Pis of a lab of its own, through cluster.yml --tags rpi_kernel: real reboots of real
kernels chosen by the emulated firmware.

rk-pi1 names its artifact (Debian's cloud kernel, another ABI than the stock one, laid out as a kernel_build
artifact). rk-pi2 names none: it takes the kernel its build host builds in the same run, rk-build (the
controller, in rpi_kernel_builders), which is the suite kernel's no-root variant (tests/suite_kernel.py:
built-in command line naming a root disk the Pi does not have, booted without an initramfs: it panics).
The good one is trial-booted and committed, the bad one falls back and is reported, and the play goes on
for the other Pi; the lab report records both. Then a re-run changes nothing and an ordinary reboot stays
on the committed kernel. Reboots: one trial per Pi (in parallel) and one ordinary reboot.
"""

import json
import shutil
import sys
from pathlib import Path

import pytest
import suite_kernel
import yaml
from playbook_runner import run_playbook
from simlab.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "rpi_kernel"))
import artifacts  # noqa: E402

GOOD, BAD, BUILDER = "rk-pi1", "rk-pi2", "rk-build"
STOCK = "cd /boot/firmware && sha256sum kernel8.img initramfs8 cmdline.txt *.dtb overlays/*"
HELD = "linux-image-6.1.0-50-amd64"  # the sim Pis' distribution kernel package


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    if not suite_kernel.TARBALL.exists():
        pytest.fail(f"missing {suite_kernel.TARBALL}: run ./labkit setup (Debian package linux-source-6.1)")
    good = artifacts.artifact()
    directory = tmp_path_factory.mktemp("rpi_kernel") / "inventory"
    shutil.copytree(ROOT / "inventories" / "sim" / "group_vars", directory / "group_vars")
    hosts = {
        GOOD: {"ansible_port": 2271, "lab_address": "10.213.6.11", "rpi_kernel_artifact": str(good)},
        BAD: {"ansible_port": 2272, "lab_address": "10.213.6.12", "rpi_kernel_initramfs": False},
    }
    common = {"simlab_tryboot_timeout": 150, "rpi_kernel_hold_packages": [HELD, "raspberrypi-kernel"]}
    # the controller as test_kernel_build runs it, so the build shares the suite kernel's cache
    builder = {
        "ansible_connection": "local",
        "ansible_become": False,
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        **suite_kernel.no_root_kernel_vars(kernel_build_install_dependencies=False),
    }
    inventory = {
        "all": {
            "children": {
                "rpi": {"hosts": hosts, "vars": common},
                "rpi_kernel_builders": {"hosts": {BUILDER: builder}},
            }
        }
    }
    (directory / "hosts.yml").write_text(yaml.safe_dump(inventory))
    lab = Lab(directory)
    lab.up()
    stock = {host: lab.ssh(host, STOCK).stdout for host in (GOOD, BAD)}
    configs = {host: lab.ssh(host, "cat /boot/firmware/config.txt").stdout for host in (GOOD, BAD)}
    first = play(directory)
    report = json.loads((directory / "lab-report" / "lab-report.json").read_text())
    yield {
        "lab": lab,
        "inventory": directory,
        "good": yaml.safe_load((good / "manifest.json").read_text()),
        "stock": stock,
        "configs": configs,
        "first": first,
        "report": report,
    }
    lab.down()


def play(inventory: Path, limit: str | None = None):
    return run_playbook(
        ROOT / "playbooks" / "cluster.yml",
        inventory=inventory,
        limit=limit,
        tags=["rpi_kernel"],
        extra_vars={"rpi_kernel_required_symbols": ["CONFIG_VIRTIO_BLK"]},
    )


def test_good_artifact_is_trial_booted_and_committed(setup):
    lab, good, first = setup["lab"], setup["good"], setup["first"]
    assert first.failed(GOOD) == 0, first.stdout[-3000:]
    assert lab.ssh(GOOD, "uname -r").stdout.strip() == good["release"]
    prefix = f"labkit-{good['hash'][:16]}/"
    config = lab.ssh(GOOD, "cat /boot/firmware/config.txt").stdout
    assert f"os_prefix={prefix}" in config and "kernel=kernel8-labkit.img" in config
    assert lab.ssh(GOOD, "cat /boot/firmware/config.txt.labkit-prev").stdout == setup["configs"][GOOD]
    assert lab.ssh(GOOD, "test -e /boot/firmware/tryboot.txt", check=False).returncode != 0
    log = (lab.directory / GOOD / "firmware.log").read_text()
    assert f"tryboot tryboot.txt: kernel={prefix}kernel8-labkit.img" in log, log
    assert HELD in lab.ssh(GOOD, "apt-mark showhold").stdout


def test_pi_without_an_artifact_takes_its_builders_kernel_falls_back_and_only_it_fails(setup):
    lab, first = setup["lab"], setup["first"]
    assert first.failed(BUILDER) == 0, first.stdout[-3000:]
    built = first.result(BAD, "Take the kernel its build host built")["ansible_facts"]["rpi_kernel_artifact"]
    assert built["release"].endswith(suite_kernel.NO_ROOT_LOCALVERSION) and built["build_host"] == BUILDER
    assert first.failed(BAD) == 1
    assert "the firmware fell back and the Pi runs 6.1.0-50-amd64 again" in first.stdout, first.stdout[-3000:]
    assert "config.txt was not changed" in first.stdout
    assert lab.ssh(BAD, "uname -r").stdout.strip() == lab.kernel_release
    assert lab.ssh(BAD, "cat /boot/firmware/config.txt").stdout == setup["configs"][BAD]
    log = (lab.directory / BAD / "firmware.log").read_text()
    assert f"tryboot tryboot.txt: kernel=labkit-{built['id']}/kernel8-labkit.img initramfs=None" in log, log
    assert "resetting" in log, log  # the panic ended the boot; no need for the watchdog
    assert "Unable to mount root fs" in (lab.directory / BAD / "console.log").read_text(errors="replace")


def test_lab_report_records_the_commit_and_the_fallback(setup):
    hosts = setup["report"]["hosts"]
    good, bad = hosts[GOOD], hosts[BAD]
    assert good["status"] == "changed" and good["kernel"]["running"] == setup["good"]["release"], good
    assert good["kernel"]["artifact"] == setup["good"]["id"] and good["kernel"]["fallback"], good
    # the report play reads only the hosts that did not fail: the failed Pi keeps its failure, no probe
    assert bad["status"] == "failed" and "fell back" in bad["failure"]["msg"], bad


def test_stock_boot_files_are_byte_identical(setup):
    lab = setup["lab"]
    for host in (GOOD, BAD):
        assert lab.ssh(host, STOCK).stdout == setup["stock"][host]
    # the artifact brings a bcm2711-rpi-4-b.dtb of its own: it went to its own directory
    prefix = f"labkit-{setup['good']['hash'][:16]}"
    assert lab.ssh(GOOD, f"grep -c 'artifact good' /boot/firmware/{prefix}/bcm2711-rpi-4-b.dtb").stdout.strip() == "1"


def test_rerun_changes_nothing(setup):
    # the builder too: it finds its artifact and builds nothing
    again = play(setup["inventory"], limit=f"{GOOD}:{BUILDER}")
    assert again.rc == 0, again.stdout[-3000:]
    changed = {host: again.changed_tasks(host) for host in (GOOD, BUILDER)}
    assert again.changed(GOOD) == 0 and again.changed(BUILDER) == 0, changed
    assert "nothing to do" in again.stdout


def test_ordinary_reboot_stays_on_the_committed_kernel(setup):
    lab = setup["lab"]
    lab.reboot(GOOD)
    assert lab.ssh(GOOD, "uname -r").stdout.strip() == setup["good"]["release"]
    assert lab.ssh(GOOD, STOCK).stdout == setup["stock"][GOOD]
