"""labkit.cluster.sysctl in a sim-lab guest: netns application, check mode, idempotence, and that only the
changed key is applied (no global `sysctl --system` unless reload_system is asked for).

The fixture-key wait (a key that appears when a module loads) is in test_kmod_lab.py, next to the
fixture module build.
"""

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

HOST = "sim-dcpim1"
NS = "labkit-lab-ns"
CANARY = "/etc/sysctl.d/80-labkit-canary.conf"
OURS = "/etc/sysctl.d/90-labkit-lab.conf"


def play(*tasks: str) -> str:
    return f"- hosts: {HOST}\n  gather_facts: false\n  tasks:\n" + "".join(tasks)


def sysctl(title: str, **args) -> str:
    body = "".join(f"        {key}: {value}\n" for key, value in args.items())
    return f"    - name: '{title}'\n      labkit.cluster.sysctl:\n{body}"


def sh(lab, command: str) -> str:
    return lab.ssh(HOST, command).stdout.strip()


def test_netns_check_mode_and_idempotence(lab, run_playbook):
    lab.ssh(HOST, f"ip netns delete {NS} 2>/dev/null; ip netns add {NS}")
    try:
        root_before = sh(lab, "sysctl -n net.ipv4.tcp_rmem")
        ns_before = sh(lab, f"ip netns exec {NS} sysctl -n net.ipv4.tcp_rmem")
        # a new namespace inherits tcp_rmem from the initial one, which an earlier test may have set: pick a
        # value that differs from what the namespace has, so the change is real
        middle = "87380" if ns_before.split()[1:2] != ["87380"] else "65536"
        task = sysctl("rmem in ns", name="net.ipv4.tcp_rmem", value=f'"4096\\t{middle}  6291456"', netns=NS)
        checked = run_playbook(play(task), limit=HOST, check=True, diff=True)
        assert checked.rc == 0, checked.stdout[-3000:]
        assert checked.result(HOST, "rmem in ns")["changed"] is True
        assert sh(lab, f"ip netns exec {NS} sysctl -n net.ipv4.tcp_rmem") == ns_before

        res = run_playbook(play(task, task.replace("rmem in ns", "rmem in ns again")), limit=HOST)
        assert res.rc == 0, res.stdout[-3000:]
        first, again = res.result(HOST, "rmem in ns"), res.result(HOST, "rmem in ns again")
        assert first["changed"] and first["previous_value"] == " ".join(ns_before.split())
        assert first["sysctl_file"] is None  # a netns value is not persisted by default
        assert again["changed"] is False
        assert sh(lab, f"ip netns exec {NS} sysctl -n net.ipv4.tcp_rmem").split() == ["4096", middle, "6291456"]
        assert sh(lab, "sysctl -n net.ipv4.tcp_rmem") == root_before
    finally:
        lab.ssh(HOST, f"ip netns delete {NS}", check=False)


def test_only_the_changed_key_is_applied(lab, run_playbook):
    """A canary file with a value that differs from the live one stays unapplied unless reload_system is set."""
    live_fin = sh(lab, "sysctl -n net.ipv4.tcp_fin_timeout")
    canary = "33" if live_fin != "33" else "34"
    live_syn = sh(lab, "sysctl -n net.ipv4.tcp_syn_retries")
    wanted = "5" if live_syn != "5" else "4"
    lab.ssh(HOST, f"echo 'net.ipv4.tcp_fin_timeout = {canary}' > {CANARY}; printf '# mine\\n' > {OURS}")
    try:
        res = run_playbook(
            play(
                sysctl("one key", name="net.ipv4.tcp_syn_retries", value=wanted, sysctl_file=OURS),
                sysctl("same again", name="net.ipv4.tcp_syn_retries", value=wanted, sysctl_file=OURS),
            ),
            limit=HOST,
            diff=True,
        )
        assert res.rc == 0, res.stdout[-3000:]
        one = res.result(HOST, "one key")
        assert one["changed"] and one["previous_value"] == live_syn and one["value"] == wanted
        assert res.result(HOST, "same again")["changed"] is False
        assert sh(lab, "sysctl -n net.ipv4.tcp_syn_retries") == wanted
        assert sh(lab, "sysctl -n net.ipv4.tcp_fin_timeout") == live_fin  # no global reload happened
        assert sh(lab, f"cat {OURS}") == f"# mine\nnet.ipv4.tcp_syn_retries = {wanted}"

        res = run_playbook(
            play(
                sysctl(
                    "system reload",
                    name="net.ipv4.tcp_syn_retries",
                    value=live_syn,
                    sysctl_file=OURS,
                    reload_system="true",
                ),
                sysctl("remove", name="net.ipv4.tcp_syn_retries", state="absent", sysctl_file=OURS),
            ),
            limit=HOST,
        )
        assert res.rc == 0, res.stdout[-3000:]
        assert sh(lab, "sysctl -n net.ipv4.tcp_fin_timeout") == canary  # asked for: everything applied
        assert res.result(HOST, "remove")["file_changed"]
        assert sh(lab, f"cat {OURS}") == "# mine"
    finally:
        lab.ssh(
            HOST,
            f"rm -f {CANARY} {OURS}; sysctl -qw net.ipv4.tcp_fin_timeout={live_fin} "
            f"net.ipv4.tcp_syn_retries={live_syn}",
            check=False,
        )
