"""dcpim_module on two sim guests of a lab of its own (dp-1, dp-2: 2 vCPUs each, a private network).

The dcPIM source is the project's stand-in (tests/fixtures/dcpim) made into a git repository at test
time and fetched on the controller (the guests have no internet). In order: the CPU guard refuses the
2-CPU guests; a group that mixes kernels is warned about and bad input is refused; the stock path with
the CPU patch builds, installs, loads, sets sysctls and runs the sample over the private network into a
report; a second run changes nothing; a patch that does not apply is named; the module unloads cleanly.
The patched-kernel path (kernel build, GRUB trial boot, commit, fallback) is test_dcpim_patched.py.
"""

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
FIXTURE = ROOT / "tests" / "fixtures" / "dcpim"
HOSTS = ("dp-1", "dp-2")
ADDRESSES = {"dp-1": "10.213.7.11", "dp-2": "10.213.7.12"}
PLAYBOOK = f"- ansible.builtin.import_playbook: {ROOT / 'playbooks' / 'dcpim.yml'}\n"
GUARD = "dp-1 has 2 CPUs, but dcPIM pins its matching epoch to CPU 60"
BUILD_TASK = "Unpack, patch and build the module against the running kernel, and the applications"


def make_repo(directory: Path) -> str:
    """The fixture as a git repository (upstream's layout: kernel_impl/, kernel_impl/util/)."""
    shutil.copytree(FIXTURE / "kernel_impl", directory / "kernel_impl")
    git = ["git", "-C", str(directory), "-c", "user.name=labkit", "-c", "user.email=labkit@example.invalid"]
    subprocess.run([*git[:3], "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "dcPIM stand-in"], check=True)
    return f"file://{directory}"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("dcpim")
    url = make_repo(base / "repo")
    directory = base / "inventory"
    shutil.copytree(ROOT / "inventories" / "sim" / "group_vars", directory / "group_vars")
    hosts = {
        "dp-1": {"ansible_port": 2285, "lab_address": ADDRESSES["dp-1"]},
        "dp-2": {"ansible_port": 2286, "lab_address": ADDRESSES["dp-2"]},
    }
    common = {
        "dcpim_module_enabled": True,
        "dcpim_module_git_url": url,
        "dcpim_module_git_version": "main",
        "dcpim_module_fetch_on": "controller",
        "dcpim_module_controller_cache": str(base / "cache"),
        "dcpim_module_report_dir": str(base / "reports"),
        # the role's compat patches fix upstream's dcpim_message.c, dcpim_sock.c and uapi_linux_dcpim.h,
        # files the stand-in does not have (they would not apply); tests/unit/test_dcpim_compat_patches.py
        # checks them, and roles/dcpim_module/README.md records their build against upstream
        "dcpim_module_compat_patches": [],
    }
    inventory = {"all": {"children": {"dcpim_hosts": {"hosts": hosts, "vars": common}}}}
    (directory / "hosts.yml").write_text(yaml.safe_dump(inventory))
    lab = Lab(directory)
    lab.up()
    yield {"lab": lab, "inventory": directory, "base": base}
    if not os.environ.get("LABKIT_KEEP_LAB"):
        lab.down()


def play(setup, **extra_vars):
    return run_playbook(PLAYBOOK, inventory=setup["inventory"], extra_vars=extra_vars)


STOCK = {
    "dcpim_module_cpu_patch": True,
    "dcpim_module_params": {"dcpim_enable_ioat": True},
    "dcpim_module_sysctls": {"short_flow_size": 100000, "rmem_default": 5000000},
}


@pytest.fixture(scope="module")
def first(setup):
    """The stock path with the CPU patch and the sample: the run every later test builds on."""
    return play(setup, dcpim_module_sample=True, **STOCK)


def test_cpu_guard_refuses_two_cpu_guests(setup):
    result = play(setup)
    assert result.failed("dp-1") == 1 and result.failed("dp-2") == 1
    assert GUARD in result.stdout, result.stdout[-3000:]
    assert "dcpim_module_cpu_patch: true" in result.stdout
    for host in HOSTS:
        assert setup["lab"].ssh(host, "test -e /sys/module/dcpim_module", check=False).returncode != 0


def test_mixed_kernels_warn_and_bad_input_is_refused(setup):
    # one host patched, one stock: an extra var templated per host
    result = run_playbook(
        PLAYBOOK,
        inventory=setup["inventory"],
        extra_vars={
            "dcpim_module_kernel": "{{ 'patched' if inventory_hostname == 'dp-2' else 'stock' }}",
            "dcpim_module_sysctls": {"clean_match_sock": 1},
        },
    )
    warning = result.result("dp-1", "Warn when the play mixes patched and stock hosts")["msg"]
    kinds = '{"stock": ["dp-1"], "patched": ["dp-2"]}'
    assert warning.startswith(f"WARNING dcpim_module: this play mixes dcPIM kernels: {kinds}")
    assert result.failed("dp-1") == 1 and result.failed("dp-2") == 1
    refused = {host: result.result(host, "Check the role's inputs")["msg"] for host in HOSTS}
    assert "clean_match_sock is the role's own" in refused["dp-1"]
    # no dcpim_kernel_builders in this lab: no kernel to install, and dcpim_module says what it lacks
    assert "dcpim_module_kernel: patched needs dcpim_module_kernel_release" in refused["dp-2"]
    assert "patched needs" not in refused["dp-1"]


def test_stock_path_builds_loads_and_sets_sysctls(setup, first):
    lab = setup["lab"]
    assert first.rc == 0, first.stdout[-4000:]
    release = lab.kernel_release
    for host in HOSTS:
        assert first.failed(host) == 0
        state = lab.ssh(
            host,
            "ls /proc/sys/net/dcpim; sysctl -n net.dcpim.short_flow_size net.dcpim.rmem_default;"
            " cd /sys/module/dcpim_module/parameters && cat wire_protocol dcpim_enable_ioat;"
            f" ls /lib/modules/{release}/extra/",
        ).stdout.split()
        assert state[:4] == ["clean_match_sock", "rmem_default", "short_flow_size", "wmem_default"], state
        assert state[4:6] == ["100000", "5000000"], state
        assert state[6] == "254", "the stock patch marks packets IPPROTO_DCPIM"
        assert state[7] == "Y"
        assert "dcpim_module.ko" in state[8:]
        # CPU patch: the epoch runs on a CPU the guest has
        assert "epoch CPU 1" in lab.ssh(host, "dmesg | grep 'DCPIM: module loaded' | tail -1").stdout
    built = first.result("dp-1", BUILD_TASK)
    assert built["changed"] is True


def test_sample_runs_between_two_hosts_into_a_report(setup, first):
    lab = setup["lab"]
    assert first.rc == 0, first.stdout[-4000:]
    runs = list((setup["base"] / "reports").iterdir())
    assert len(runs) == 1
    client = (runs[0] / "dp-2.txt").read_text()
    server = (runs[0] / "dp-1.server.txt").read_text()
    assert f"dcpim_test {ADDRESSES['dp-1']}:4000 --sp 100000 --count 1 dcpimping" in client
    assert "# rc: 0" in client
    assert "falling back to UDP" in client  # the stand-in module has no dcPIM transport
    assert f"dcpimping summary: 1 pings to {ADDRESSES['dp-1']}:4000 over udp-fallback, rtt" in client
    assert "pinned: running on CPU 0" in server
    assert f"from {ADDRESSES['dp-2']}:34464 answered" in server  # --sp 100000, a 16-bit port
    # the role stopped the server it started
    assert lab.ssh("dp-1", "pgrep -f 'util/server --ip'", check=False).returncode == 1
    # the sample ran: reported as a change of the run (on the first host, which drives it)
    assert first.result("dp-1", "Run the sample client against the server")["changed"] is True


def test_second_run_changes_nothing(setup, first):
    assert first.rc == 0
    stamps = "cat /var/lib/labkit/dcpim/build/*/.labkit-built"
    before = {host: setup["lab"].ssh(host, stamps).stdout for host in HOSTS}
    again = play(setup, **STOCK)
    assert again.rc == 0, again.stdout[-4000:]
    for host in HOSTS:
        assert again.changed(host) == 0, again.stdout[-4000:]
        # one complete build, the one of the first run: nothing was rebuilt or unpacked again
        assert setup["lab"].ssh(host, stamps).stdout == before[host]
        assert len(before[host].splitlines()) == 1  # one stamp (a JSON line) under build/
    assert not again.result("dp-1", BUILD_TASK).get("changed")


def test_patch_that_does_not_apply_is_named(setup, first, tmp_path):
    bad = tmp_path / "bad.patch"
    bad.write_text(
        "--- a/kernel_impl/dcpim_outgoing.c\n+++ b/kernel_impl/dcpim_outgoing.c\n"
        "@@ -1,1 +1,1 @@\n-this line is not in the file\n+neither is this one\n"
    )
    extra_vars = {**STOCK, "dcpim_module_extra_patches": [str(bad)]}
    result = run_playbook(PLAYBOOK, inventory=setup["inventory"], limit="dp-2", extra_vars=extra_vars)
    assert result.failed("dp-2") == 1
    assert "patch 03-bad.patch does not apply to" in result.stdout, result.stdout[-3000:]
    assert "dcpim_outgoing.c" in result.stdout
    # the loaded module is left as it was
    assert setup["lab"].ssh("dp-2", "test -d /proc/sys/net/dcpim").returncode == 0


def test_absent_unloads_cleanly(setup, first):
    lab = setup["lab"]
    result = play(setup, dcpim_module_state="absent")
    assert result.rc == 0, result.stdout[-4000:]
    for host in HOSTS:
        assert result.changed(host) >= 1
        assert lab.ssh(host, "test -e /sys/module/dcpim_module || test -d /proc/sys/net/dcpim", check=False).returncode
        log = lab.ssh(host, "dmesg | grep DCPIM: | tail -2").stdout
        assert "match socket cleaned" in log and "module unloaded (match socket cleaned)" in log, log
