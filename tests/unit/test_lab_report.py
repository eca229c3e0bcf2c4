"""The lab report's merge and rendering (plugins/module_utils/lab_report.py) and `./labkit report`
(labkit_cluster.report). The callback that feeds them is tested on the sim lab (test_cluster_playbook)."""

import json

import pytest
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
