"""The main job: playbooks/cluster.yml against the sim lab, through the Python API that `./labkit lab` uses,
and the lab report that every run of it writes."""

import shutil
import subprocess

import pytest
from labkit_cluster import Lab
from labkit_cluster import report as report_cli
from playbook_runner import SIM_INVENTORY

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    return Lab(SIM_INVENTORY, report_dir=tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def runs(lab, api):
    events = []
    return api.provision(on_event=events.append), api.provision(), events


def test_cluster_playbook_succeeds_on_every_host(runs, lab):
    first, _, _ = runs
    assert first.rc == 0, first.stdout[-4000:]
    for host in [*lab.guests, *lab.bmcs]:
        assert first.failed(host) == 0, first.stdout[-4000:]
    summary = first.result("localhost", "Print one line per lab host")["msg"]
    assert len(summary) == len(lab.guests) + len(lab.bmcs)
    for line in summary:
        name = line.split()[0]
        if name in lab.guests:
            assert f"kernel={lab.kernel_release}" in line and lab.guests[name].lab_address in line
        else:
            assert "power=On" in line or "power=Off" in line


def test_second_run_changes_nothing(runs, lab):
    _, second, _ = runs
    assert second.rc == 0, second.stdout[-4000:]
    for host in [*lab.guests, *lab.bmcs]:
        assert second.changed(host) == 0, f"{host} changed on the second run:\n{second.stdout[-4000:]}"


def test_events_are_streamed_to_the_callback_and_stats_are_per_host(runs, lab):
    first, _, events = runs
    assert events and [e["event"] for e in events].count("playbook_on_stats") == 1
    streamed = {e["event_data"].get("host") for e in events if e["event"] == "runner_on_ok"}
    assert set(lab.guests) <= streamed
    for host in lab.guests:
        stats = first.hosts()[host]
        assert stats["ok"] > 0 and stats["failures"] == 0 and stats["dark"] == 0
        assert stats["changed"] == first.changed(host)


def test_lab_hosts_reach_each_other_by_name(runs, lab):
    for name in lab.guests:
        for peer, spec in lab.guests.items():
            if peer != name:  # a host's own name stays on 127.0.1.1, as Debian has it
                assert lab.ssh(name, f"getent hosts {peer}").stdout.split()[0] == spec.lab_address
        assert lab.ssh(name, "hostname").stdout.strip() == name
    peer = next(p for p in lab.guests if p != "sim-pi1")
    assert lab.ssh("sim-pi1", f"ping -c 1 -W 3 {peer}", check=False).returncode == 0


def test_lab_base_repairs_drift_it_probes_for(runs, lab, run_playbook):
    """lab_base skips its modules when its one-round-trip probe finds everything in place: drift
    in each thing it probes must still be seen and repaired (molecule's lab_base scenario runs the
    changing path in check mode)."""
    host, peer = "sim-pi1", "sim-build"
    good = lab.guests[peer].lab_address
    lab.ssh(
        host,
        f"sed -i 's/^{good}\\t{peer}$/10.213.0.99\\t{peer}/' /etc/hosts"
        " && sed -i 's/^127\\.0\\.1\\.1\\s.*/127.0.1.1\\tstale-name/' /etc/hosts"
        " && chmod 600 /etc/ansible/facts.d/labkit.fact && hostname stale-name",
    )
    play = f"- hosts: {host}\n  gather_facts: false\n  roles: [labkit.cluster.lab_base]\n"
    fixed = run_playbook(play)
    assert fixed.rc == 0 and fixed.changed(host) == 4, fixed.stdout[-4000:]
    assert lab.ssh(host, "hostname").stdout.strip() == host
    assert lab.ssh(host, f"getent hosts {peer}").stdout.split()[0] == good
    assert f"127.0.1.1\t{host}" in lab.ssh(host, "cat /etc/hosts").stdout
    assert lab.ssh(host, "stat -c %a /etc/ansible/facts.d/labkit.fact").stdout.strip() == "644"


def test_report_has_a_row_per_host_with_its_state(runs, lab):
    _, second, _ = runs
    report = second.report
    assert set(report["hosts"]) == {*lab.guests, *lab.bmcs}
    for name in lab.guests:
        row = report["hosts"][name]
        assert row["status"] == "ok" and row["failure"] is None
        assert row["kernel"]["running"] == lab.kernel_release
        assert row["address"] == lab.guests[name].lab_address
    pi = report["hosts"]["sim-pi1"]
    assert pi["groups"] == ["rpi", "web10g_hosts"] and pi["kernel"]["loader"] == "rpi-firmware"
    assert pi["kernel"]["committed"] == "kernel8.img" and pi["kernel"]["trial_pending"] is False
    for name in lab.bmcs:
        assert report["hosts"][name]["bmc"]["power"] in ("On", "Off")
    # the first run changed something on each guest (lab_base); the second's "ok" keeps that change
    assert all(report["hosts"][name]["last_change"] for name in lab.guests)
    assert len(report["runs"]) == 2


@pytest.fixture(scope="module")
def failed_limited_run(runs, api):
    """A run limited to one Pi, with an argument lab_base refuses: the Pi fails in lab_base."""
    before = api.report()
    result = api.provision(limit="sim-pi1", tags=["lab_base"], extra_vars={"lab_base_manage_hosts": "not-a-bool"})
    return before, result


def test_report_of_a_limited_failed_run_keeps_the_other_rows(failed_limited_run, lab):
    before, result = failed_limited_run
    assert result.rc != 0 and result.failed("sim-pi1") == 1
    report = result.report
    pi = report["hosts"]["sim-pi1"]
    assert pi["status"] == "failed" and "lab_base_manage_hosts" in pi["failure"]["msg"], pi
    assert pi["kernel"] == before["hosts"]["sim-pi1"]["kernel"]  # from the last run that read it
    for name, row in before["hosts"].items():
        if name != "sim-pi1":
            assert report["hosts"][name] == row
    assert report_cli.query(report, "hosts[?status=='failed'].host") == ["sim-pi1"]


def test_report_page_renders_and_filters_in_a_browser(failed_limited_run, api):
    """The HTML report in headless Chromium: every host has a row, and the page's filter (filled from
    the URL's #fragment by its script) hides the rows that do not match."""
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.fail("chromium is missing (./labkit setup installs it)")
    page = api.report_dir / "lab-report.html"
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", f"{page.as_uri()}#failed"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    rows = [line for line in dom.split("<tr ")[1:]]
    hosts = {row.split('data-host="')[1].split('"')[0]: row for row in rows if "data-host=" in row}
    assert set(hosts) == set(api.report()["hosts"])
    shown = [name for name, row in hosts.items() if "hidden" not in row.split(">")[0]]
    assert shown == ["sim-pi1"], shown
