"""rpi_kernel on sim Pis of a lab of its own: real reboots of real kernels chosen by the emulated firmware.

Two Pis in one play: rk-pi1 gets a good artifact (Debian's cloud kernel, another ABI than the
stock one), rk-pi2 a bad one (that kernel without its root device's driver, booted without an
initramfs: it panics). The good one is trial-booted and
committed, the bad one falls back and is reported, and the play goes on for the other Pi. Then a
re-run changes nothing and an ordinary reboot stays on the committed kernel. Reboots: one trial
per Pi (in parallel) and one ordinary reboot.
"""

import shutil
import sys
from pathlib import Path

import pytest
import yaml
from playbook_runner import run_playbook
from simlab.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "rpi_kernel"))
import artifacts  # noqa: E402

GOOD, BAD = "rk-pi1", "rk-pi2"
STOCK = "cd /boot/firmware && sha256sum kernel8.img initramfs8 cmdline.txt *.dtb overlays/*"
HELD = "linux-image-6.1.0-50-amd64"  # the sim Pis' distribution kernel package


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    good, bad = artifacts.artifact("good"), artifacts.artifact("bad")
    directory = tmp_path_factory.mktemp("rpi_kernel") / "inventory"
    shutil.copytree(ROOT / "inventories" / "sim" / "group_vars", directory / "group_vars")
    hosts = {
        GOOD: {"ansible_port": 2271, "lab_address": "10.213.6.11", "rpi_kernel_artifact": str(good)},
        BAD: {
            "ansible_port": 2272,
            "lab_address": "10.213.6.12",
            "rpi_kernel_artifact": str(bad),
            "rpi_kernel_initramfs": False,
        },
    }
    common = {"simlab_tryboot_timeout": 150, "rpi_kernel_hold_packages": [HELD, "raspberrypi-kernel"]}
    inventory = {"all": {"children": {"rpi": {"hosts": hosts, "vars": common}}}}
    (directory / "hosts.yml").write_text(yaml.safe_dump(inventory))
    lab = Lab(directory)
    lab.up()
    stock = {host: lab.ssh(host, STOCK).stdout for host in (GOOD, BAD)}
    configs = {host: lab.ssh(host, "cat /boot/firmware/config.txt").stdout for host in (GOOD, BAD)}
    first = play(directory)
    yield {
        "lab": lab,
        "inventory": directory,
        "good": yaml.safe_load((good / "manifest.json").read_text()),
        "bad": yaml.safe_load((bad / "manifest.json").read_text()),
        "stock": stock,
        "configs": configs,
        "first": first,
    }
    lab.down()


def play(inventory: Path, limit: str | None = None):
    text = f"- ansible.builtin.import_playbook: {ROOT / 'playbooks' / 'rpi_kernel.yml'}\n"
    return run_playbook(
        text, inventory=inventory, limit=limit, extra_vars={"rpi_kernel_required_symbols": ["CONFIG_VIRTIO_BLK"]}
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


def test_bad_artifact_falls_back_and_only_its_pi_fails(setup):
    lab, first = setup["lab"], setup["first"]
    assert first.failed(BAD) == 1
    assert "the firmware fell back and the Pi runs 6.1.0-50-amd64 again" in first.stdout, first.stdout[-3000:]
    assert "config.txt was not changed" in first.stdout
    assert lab.ssh(BAD, "uname -r").stdout.strip() == lab.kernel_release
    assert lab.ssh(BAD, "cat /boot/firmware/config.txt").stdout == setup["configs"][BAD]
    log = (lab.directory / BAD / "firmware.log").read_text()
    bad_kernel = f"labkit-{setup['bad']['hash'][:16]}/kernel8-labkit.img"
    assert f"tryboot tryboot.txt: kernel={bad_kernel} initramfs=None" in log, log
    assert "resetting" in log, log  # the panic ended the boot; no need for the watchdog
    assert "Unable to mount root fs" in (lab.directory / BAD / "console.log").read_text(errors="replace")


def test_stock_boot_files_are_byte_identical(setup):
    lab = setup["lab"]
    for host in (GOOD, BAD):
        assert lab.ssh(host, STOCK).stdout == setup["stock"][host]
    # the artifact brings a bcm2711-rpi-4-b.dtb of its own: it went to its own directory
    prefix = f"labkit-{setup['good']['hash'][:16]}"
    assert lab.ssh(GOOD, f"grep -c 'artifact good' /boot/firmware/{prefix}/bcm2711-rpi-4-b.dtb").stdout.strip() == "1"


def test_rerun_changes_nothing(setup):
    again = play(setup["inventory"], limit=GOOD)
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed(GOOD) == 0, again.stdout[-3000:]
    assert "nothing to do" in again.stdout


def test_ordinary_reboot_stays_on_the_committed_kernel(setup):
    lab = setup["lab"]
    lab.reboot(GOOD)
    assert lab.ssh(GOOD, "uname -r").stdout.strip() == setup["good"]["release"]
    assert lab.ssh(GOOD, STOCK).stdout == setup["stock"][GOOD]
