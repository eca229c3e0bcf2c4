"""The lab report's merge and rendering (plugins/module_utils/lab_report.py) and `./labkit report`
(labkit_cluster.report). The callback that feeds them is tested on the sim lab (test_cluster_playbook), and
here on the controller for the QEMU guests, which the sim lab does not run."""

import json
import sys

import pytest
from labkit_cluster import Lab
from labkit_cluster import report as cli

lab_report = cli.lab_report  # plugins/module_utils/lab_report.py of this checkout

PI_STATE = {
    "groups": ["rpi"],
    "address": "10.0.0.21",
    "kernel": {"running": "6.1.0-labkit", "loader": "rpi-firmware", "artifact": "0123456789abcdef", "fallback": None},
    "modules": [{"name": "tcp_estats_nl", "params": {"debug": "0"}}],
    "sysctls": {"net.ipv4.tcp_estats": "127"},
    "subsystems": {"web10g": "loaded"},
    "bmc": None,
    "provenance": [
        {"id": "0123456789abcdef", "release": "6.1.0-labkit", "source": {"url": "https://x/linux.git", "commit": "abc"}}
    ],
}

QEMU_RESULT = {
    "guests": {
        "cxl1": {
            "unit": "labkit-qemu-cxl1.service",
            "console_log": "/var/log/labkit/qemu/cxl1.log",
            "changed": True,
            "restarted": True,
            "qemu_version": "7.2",
            "checks": {"cxl_memdevs": ["mem0"], "ivshmem": {}},
        },
        "shm-a": {
            "unit": "labkit-qemu-shm-a.service",
            "console_log": "/var/log/labkit/qemu/shm-a.log",
            "changed": True,
            "restarted": False,
            "qemu_version": "7.2",
            "checks": {"ivshmem": {"shm0": "ok", "shm1": "<no 1af4:1110 device>"}},
        },
        # a result without checks
        "shm-b": {
            "unit": "labkit-qemu-shm-b.service",
            "console_log": "/var/log/labkit/qemu/shm-b.log",
            "changed": False,
            "restarted": False,
            "qemu_version": "7.2",
        },
    }
}
QEMU_STATE = dict(PI_STATE, groups=["build_hosts", "qemu_hosts"], qemu=QEMU_RESULT)


def run(at, hosts):
    return {"at": at, "playbook": "cluster.yml", "hosts": hosts}


def test_a_host_the_run_did_not_reach_keeps_its_row():
    first = lab_report.merge(
        None,
        run("t1", {
            "pi1": {"status": "changed", "last_change": {"task": "Commit", "at": "t1"}, "state": PI_STATE},
            "pi2": {"status": "ok", "changed": 0, "state": dict(PI_STATE, address="10.0.0.22")},
        }),
    )  # fmt: skip
    second = lab_report.merge(first, run("t2", {"pi1": {"status": "ok", "changed": 0, "state": PI_STATE}}))
    assert second["hosts"]["pi2"] == first["hosts"]["pi2"]
    assert second["hosts"]["pi1"]["status"] == "ok"
    # no change in this run: the last change is still the one of the first run
    assert second["hosts"]["pi1"]["last_change"] == {"task": "Commit", "at": "t1"}
    assert [r["at"] for r in second["runs"]] == ["t1", "t2"]
    assert first["hosts"]["pi1"]["status"] == "changed"  # merge does not modify its input


def test_a_failed_host_keeps_its_last_state_and_shows_the_failure():
    first = lab_report.merge(None, run("t1", {"pi1": {"status": "ok", "state": PI_STATE}}))
    failure = {"task": "Trial-boot the kernel", "msg": "the firmware fell back"}
    second = lab_report.merge(first, run("t2", {"pi1": {"status": "failed", "failure": failure, "state": None}}))
    row = second["hosts"]["pi1"]
    assert row["failure"] == failure and row["status"] == "failed"
    assert row["kernel"] == PI_STATE["kernel"] and row["reported_at"] == "t1"
    third = lab_report.merge(second, run("t3", {"pi1": {"status": "ok", "state": PI_STATE}}))
    assert third["hosts"]["pi1"]["failure"] is None


def test_runs_are_capped_and_an_unknown_schema_starts_over():
    report = None
    for i in range(lab_report.RUNS_KEPT + 5):
        report = lab_report.merge(report, run(f"t{i}", {}))
    assert len(report["runs"]) == lab_report.RUNS_KEPT and report["runs"][-1]["at"] == f"t{lab_report.RUNS_KEPT + 4}"
    fresh = lab_report.merge({"schema": 99, "hosts": {"old": {}}}, run("t", {}))
    assert fresh["hosts"] == {}


def test_markdown_has_one_row_per_host_and_escapes_pipes():
    failure = {"task": "Load", "msg": "a | b\nc"}
    report = lab_report.merge(None, run("t", {"pi1": {"status": "failed", "failure": failure, "state": PI_STATE}}))
    text = lab_report.to_markdown(report)
    (row,) = [line for line in text.splitlines() if line.startswith("| pi1 ")]
    assert "a \\| b c" in row
    assert "6.1.0-labkit, artifact 0123456789abcdef" in row
    assert "tcp_estats_nl debug=0" in row and "net.ipv4.tcp_estats=127" in row
    assert "https://x/linux.git@abc" in row


def test_html_escapes_what_hosts_report():
    failure = {"task": "Load", "msg": "<script>alert(1)</script>"}
    report = lab_report.merge(None, run("t", {"pi1": {"status": "failed", "failure": failure, "state": PI_STATE}}))
    page = lab_report.to_html(report)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert '<tr class="failed" data-host="pi1">' in page


@pytest.fixture
def report_dir(tmp_path):
    report = lab_report.merge(
        None,
        run("t", {
            "pi1": {"status": "ok", "state": PI_STATE},
            "pi2": {"status": "failed", "failure": {"task": "x", "msg": "y"},
                    "state": dict(PI_STATE, kernel={"running": "6.1.0-50", "fallback": "config.txt.labkit-prev"})},
        }),
    )  # fmt: skip
    (tmp_path / "lab-report.json").write_text(json.dumps(report))
    return tmp_path


def test_query_selects_rows_with_jmespath(report_dir, capsys):
    assert cli.main(["--dir", str(report_dir), "--query", "hosts[?status=='failed'].host"]) == 0
    assert json.loads(capsys.readouterr().out) == ["pi2"]
    assert cli.main(["--dir", str(report_dir), "--query", "hosts[?kernel.fallback].host"]) == 0
    assert json.loads(capsys.readouterr().out) == ["pi2"]


def test_report_prints_markdown_by_default(report_dir, capsys):
    assert cli.main(["--dir", str(report_dir)]) == 0
    assert "| pi1 | rpi | ok |" in capsys.readouterr().out


@pytest.mark.parametrize("expression", ["hosts[?", "hosts[?status=='failed'", "unknown_function(hosts)"])
def test_a_bad_query_is_refused_with_the_expression_named(report_dir, capsys, expression):
    assert cli.main(["--dir", str(report_dir), "--query", expression]) == 2
    assert f"--query {expression!r} is not a JMESPath expression" in capsys.readouterr().err


def test_no_report_yet_names_where_it_looked(tmp_path, capsys):
    assert cli.main(["--dir", str(tmp_path)]) == 2
    assert f"no lab report at {tmp_path / 'lab-report.json'}" in capsys.readouterr().err


def _qemu_cell(report, host="builder"):
    header, body = lab_report.rows(report)
    return dict(zip(header, next(row for row in body if row[0] == host), strict=True))["QEMU guests"]


def test_qemu_guests_show_what_the_run_did_and_the_checks_it_made():
    report = lab_report.merge(None, run("t1", {"builder": {"status": "changed", "state": QEMU_STATE}}))
    assert report["hosts"]["builder"]["qemu"] == dict(QEMU_RESULT, at="t1")
    cell = _qemu_cell(report)
    assert cell.startswith("cxl1: restarted (labkit-qemu-cxl1.service), console /var/log/labkit/qemu/cxl1.log")
    assert "CXL memdevs mem0" in cell
    assert "shm-a: started (labkit-qemu-shm-a.service)" in cell and "ivshmem shm0 ok, ivshmem shm1 <no" in cell
    assert cell.endswith("shm-b: kept running (labkit-qemu-shm-b.service), console /var/log/labkit/qemu/shm-b.log")
    (row,) = [line for line in lab_report.to_markdown(report).splitlines() if line.startswith("| builder ")]
    assert "cxl1: restarted" in row and "ivshmem shm0 ok" in row
    page = lab_report.to_html(report)
    assert "ivshmem shm1 &lt;no 1af4:1110 device&gt;" in page and "<no 1af4" not in page


def test_qemu_guests_stay_until_qemu_host_runs_again():
    first = lab_report.merge(None, run("t1", {"builder": {"status": "changed", "state": QEMU_STATE}}))
    # a run with other --tags: qemu_host published nothing, the probe read the rest
    second = lab_report.merge(first, run("t2", {"builder": {"status": "ok", "state": dict(QEMU_STATE, qemu=None)}}))
    assert second["hosts"]["builder"]["qemu"] == first["hosts"]["builder"]["qemu"]
    assert _qemu_cell(second).startswith("as of t1; cxl1: restarted")
    unchanged = {"guests": {"cxl1": dict(QEMU_RESULT["guests"]["cxl1"], changed=False, restarted=False)}}
    third = lab_report.merge(
        second, run("t3", {"builder": {"status": "ok", "state": dict(QEMU_STATE, qemu=unchanged)}})
    )
    assert third["hosts"]["builder"]["qemu"] == dict(unchanged, at="t3")
    assert _qemu_cell(third).startswith("cxl1: kept running")
    # a host without guests has the key, empty
    pi = lab_report.merge(None, run("t1", {"pi1": {"status": "ok", "state": PI_STATE}}))
    assert pi["hosts"]["pi1"]["qemu"] is None and _qemu_cell(pi, "pi1") == ""


QEMU_PLAY = """\
- name: Stand in for qemu_host on h1
  hosts: h1
  gather_facts: false
  tasks:
    - name: Publish a result as the role does
      ansible.builtin.set_fact:
        qemu_host_result: {result}

- name: Lab report
  hosts: all
  gather_facts: false
  roles:
    - role: labkit.cluster.lab_report
      vars:
        lab_report_probe: false
"""


def test_the_role_and_callback_carry_qemu_host_result_into_the_report(tmp_path):
    """The lab_report role's qemu entry and the callback, in a run on the controller: the guests' keys the report
    keeps (a key qemu_host may add later is left out), and none on a host that ran no guests."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"[all:vars]\nansible_connection=local\nansible_python_interpreter={sys.executable}\n[all]\nh1\nh2\n"
    )
    result = {"guests": {name: dict(guest, pid=4242) for name, guest in QEMU_RESULT["guests"].items()}}
    playbook = tmp_path / "play.yml"
    playbook.write_text(QEMU_PLAY.format(result=json.dumps(result)))
    lab = Lab(inventory, playbook, report_dir=tmp_path / "report")
    outcome = lab.provision()
    assert outcome.rc == 0, outcome.stdout[-4000:]
    hosts = lab.report()["hosts"]
    assert hosts["h1"]["qemu"] == dict(QEMU_RESULT, at=lab.report()["updated"])
    assert hosts["h2"]["qemu"] is None
    assert "cxl1: restarted" in (tmp_path / "report" / "lab-report.md").read_text()
