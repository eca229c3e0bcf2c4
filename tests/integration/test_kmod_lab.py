"""labkit.cluster.kmod in a sim-lab guest (a real Debian kernel that loads modules).

Covers issue 3's guest cases: dummy with numdummies and reload, check mode, idempotence, persistence
across a reboot, the project's labkit_fixture module built against the guest's headers (loaded by path,
installed, reloaded after a rebuild changes its srcversion, refused when built for another release),
and sysctl waiting for the fixture's key. Each test cleans up the modules and files it creates.
Tasks cost 3-5 s each in a TCG guest, so each play batches several steps.
"""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

HOST = "sim-dcpim1"
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "kmod_fixture"
SRC = "/root/labkit_fixture"
FAKE_RELEASE = "6.1.0-99-labkit"
INSTALLED = "/lib/modules/$(uname -r)/updates/labkit_fixture.ko"
REVS = ("rev1", "rev2", "other")
BUILD_CACHE = Path(os.environ.get("LABKIT_CACHE", Path.home() / ".cache" / "labkit")) / "kmod-fixture-builds"
# depmod costs ~8 s in a TCG guest: only when an installed copy was there to remove
CLEAN_FIXTURE = (
    "rmmod labkit_fixture 2>/dev/null; rm -f /run/labkit/kmod/labkit_fixture.json "
    "/etc/modules-load.d/labkit_fixture.conf "
    f"/etc/modprobe.d/zz-labkit_fixture.conf; if [ -e {INSTALLED} ]; then rm -f {INSTALLED}; depmod -a; fi; true"
)
CLEAN_DUMMY = (
    "modprobe -r dummy 2>/dev/null; "
    "rm -f /run/labkit/kmod/dummy.json /etc/modules-load.d/dummy.conf /etc/modprobe.d/dummy.conf "
    "/etc/modprobe.d/zz-dummy.conf; true"
)
COUNT_DUMMIES = "ip -o link show type dummy | wc -l"


def play(*tasks: str) -> str:
    return f"- hosts: {HOST}\n  gather_facts: false\n  tasks:\n" + "".join(tasks)


def kmod(title: str, body: str, extra: str = "") -> str:
    """A kmod task; body is its arguments as YAML lines indented by 8 spaces."""
    return f"    - name: {title}\n      labkit.cluster.kmod:\n{body}{extra}"


def shell(title: str, command: str) -> str:
    """A read-only shell task, so a play can look at the guest between kmod tasks."""
    return f'    - name: {title}\n      ansible.builtin.shell: "{command}"\n      changed_when: false\n'


def sh(lab, command: str) -> str:
    return lab.ssh(HOST, command).stdout.strip()


def out(res, title: str) -> str:
    return res.result(HOST, title)["stdout"].strip()


def _build_cache(lab) -> Path:
    """Where the three builds are kept: one directory per fixture source, guest image and release."""
    digest = hashlib.sha256()
    for name in ("labkit_fixture.c", "Makefile"):
        digest.update((FIXTURE / name).read_bytes())
    digest.update(f"{lab.image.directory.name} {lab.kernel_release} {FAKE_RELEASE}".encode())
    return BUILD_CACHE / digest.hexdigest()[:16]


def _build_in_guest(lab) -> None:
    lab.ssh(HOST, f"rm -rf {SRC} && mkdir -p {SRC}/rev1 {SRC}/rev2 {SRC}/other")
    for name in ("labkit_fixture.c", "Makefile"):
        text = (FIXTURE / name).read_text()
        for build in REVS:
            lab.ssh(HOST, f"cat > {SRC}/{build}/{name}", input=text)
    lab.ssh(
        HOST,
        # the same source against a copy of the headers that claims another kernel release
        "set -e; rm -rf /usr/src/labkit-fakehdr; cp -a /lib/modules/$(uname -r)/build/. /usr/src/labkit-fakehdr/; "
        f"sed -i 's/^#define UTS_RELEASE .*/#define UTS_RELEASE \"{FAKE_RELEASE}\"/' "
        "/usr/src/labkit-fakehdr/include/generated/utsrelease.h; "
        f"make -C {SRC}/rev1 REV=1 >{SRC}/rev1.log 2>&1 & a=$!; "
        f"make -C {SRC}/rev2 REV=2 >{SRC}/rev2.log 2>&1 & b=$!; "
        f"make -C {SRC}/other KDIR=/usr/src/labkit-fakehdr REV=1 >{SRC}/other.log 2>&1 & c=$!; "
        f"wait $a || {{ cat {SRC}/rev1.log; exit 1; }}; wait $b || {{ cat {SRC}/rev2.log; exit 1; }}; "
        f"wait $c || {{ cat {SRC}/other.log; exit 1; }}; "
        f"for b in rev1 rev2 other; do cp {SRC}/$b/labkit_fixture.ko /root/lkf-$b.ko; done",
        timeout=900,
    )


@pytest.fixture(scope="module")
def fixture_builds(lab):
    """labkit_fixture built in the guest: rev 1, rev 2 (other srcversion), and rev 1 for another release.

    The three builds run side by side in their own directories (~27 s each in a TCG guest), once per
    fixture source and guest image: the .ko files are kept on the controller and sent to the guest
    after that. modinfo in the guest checks them either way.
    """
    cache = _build_cache(lab)
    if all((cache / f"lkf-{rev}.ko").is_file() for rev in REVS):
        for rev in REVS:
            lab.copy_to(HOST, cache / f"lkf-{rev}.ko", f"/root/lkf-{rev}.ko")
    else:
        _build_in_guest(lab)
        staging = cache.with_name(f"{cache.name}.tmp-{os.getpid()}")
        staging.mkdir(parents=True, exist_ok=True)
        for rev in REVS:
            ko = subprocess.run(lab.ssh_argv(HOST, f"cat /root/lkf-{rev}.ko"), capture_output=True, check=True).stdout
            (staging / f"lkf-{rev}.ko").write_bytes(ko)
        try:
            staging.rename(cache)
        except OSError:  # another run kept its builds first
            shutil.rmtree(staging)
    src = {rev: sh(lab, f"modinfo -F srcversion /root/lkf-{rev}.ko") for rev in ("rev1", "rev2")}
    assert src["rev1"] and src["rev2"] and src["rev1"] != src["rev2"]
    assert sh(lab, "modinfo -F vermagic /root/lkf-other.ko").startswith(FAKE_RELEASE + " ")
    yield src
    lab.ssh(HOST, f"{CLEAN_FIXTURE}; rm -rf {SRC} /usr/src/labkit-fakehdr /root/lkf-*.ko", check=False)


def test_dummy_params_check_mode_idempotence_and_reload(lab, run_playbook):
    """dummy's numdummies is declared with mode 0, so /sys/module/dummy/parameters does not show it: kmod knows
    it from its own load record, and the interfaces the kernel created are the proof of what was applied."""
    lab.ssh(HOST, CLEAN_DUMMY)
    try:
        load3 = kmod("load 3", "        name: dummy\n        params: {numdummies: 3}\n")
        checked = run_playbook(play(load3), limit=HOST, check=True, diff=True)
        assert checked.rc == 0, checked.stdout[-3000:]
        assert checked.result(HOST, "load 3")["changed"] is True
        assert sh(lab, "test -d /sys/module/dummy && echo loaded || echo absent") == "absent"

        reload5 = kmod("reload to five", "        name: dummy\n        params: {numdummies: 5}\n        reload: true\n")
        res = run_playbook(
            play(
                load3,
                kmod("again", "        name: dummy\n        params: {numdummies: 3}\n"),
                kmod("five without reload", "        name: dummy\n        params: {numdummies: 5}\n"),
                shell("count after 3", COUNT_DUMMIES),
                reload5,
                reload5.replace("reload to five", "reload to five again"),
                shell("count after 5", COUNT_DUMMIES),
                kmod("unload", "        name: dummy\n        state: absent\n"),
                shell("state after unload", "test -e /run/labkit/kmod/dummy.json && echo kept || echo gone"),
                shell("someone else loads it", "modprobe dummy numdummies=2"),
                kmod(
                    "not loaded by kmod",
                    "        name: dummy\n        params: {numdummies: 5}\n        reload: true\n",
                ),
            ),
            limit=HOST,
            diff=True,
        )
        assert res.rc == 0, res.stdout[-3000:]
        first = res.result(HOST, "load 3")
        assert first["changed"] and first["loaded"] and not first["builtin"]
        assert first["params"]["numdummies"] == "3" and first["unverified_params"] == []
        assert res.result(HOST, "again")["changed"] is False
        stale = res.result(HOST, "five without reload")
        assert stale["changed"] is False and stale["reload_reasons"] == ["params: numdummies"]
        assert "reload: true" in str(stale.get("warnings"))
        assert out(res, "count after 3") == "3"

        reloaded = res.result(HOST, "reload to five")
        assert reloaded["changed"] and reloaded["reloaded"] and reloaded["reload_reasons"] == ["params: numdummies"]
        assert reloaded["params"]["numdummies"] == "5"
        state = reloaded["diff"][0]
        assert "param numdummies: 3" in state["before"] and "param numdummies: 5" in state["after"]
        again = res.result(HOST, "reload to five again")
        assert again["changed"] is False and again["commands"] == [] and again["unverified_params"] == []
        assert out(res, "count after 5") == "5"

        unload = res.result(HOST, "unload")
        assert unload["changed"] and not unload["loaded"]
        assert out(res, "state after unload") == "gone"
        # loaded outside kmod, the value is unknowable: reported, not a reason to reload on every run
        unknown = res.result(HOST, "not loaded by kmod")
        assert unknown["changed"] is False and unknown["reloaded"] is False and unknown["commands"] == []
        assert unknown["unverified_params"] == ["numdummies"] and "numdummies" not in unknown["params"]
        assert "numdummies are unknown" in str(unknown.get("warnings"))
    finally:
        lab.ssh(HOST, CLEAN_DUMMY, check=False)


def test_builtin_and_missing_module(lab, run_playbook):
    builtin = sh(lab, "sed -n 's#.*/\\([^/]*\\)\\.ko$#\\1#p' /lib/modules/$(uname -r)/modules.builtin | head -1")
    assert builtin
    res = run_playbook(
        play(
            kmod("builtin", f"        name: {builtin}\n"),
            kmod("missing", "        name: labkit_no_such_module\n", "      ignore_errors: true\n"),
        ),
        limit=HOST,
    )
    got = res.result(HOST, "builtin")
    assert got["builtin"] and got["loaded"] and got["changed"] is False
    missing = res.result(HOST, "missing")
    assert "not available for kernel" in missing["msg"] and lab.kernel_release in missing["msg"]


def test_persistence_survives_reboot(lab, run_playbook):
    """kmod persistent: present (dummy + options) and a sysctl.d entry, across one guest reboot."""
    lab.ssh(HOST, f"{CLEAN_DUMMY}; rm -f /etc/sysctl.d/90-labkit-test.conf")
    rmem = " ".join(sh(lab, "sysctl -n net.ipv4.tcp_rmem").split())
    try:
        res = run_playbook(
            play(
                kmod("persist", "        name: dummy\n        params: {numdummies: 2}\n        persistent: present\n"),
                "    - name: persist sysctl\n      labkit.cluster.sysctl:\n        name: net.ipv4.tcp_rmem\n"
                "        value: 4096 87380 6291456\n        sysctl_file: 90-labkit-test.conf\n",
            ),
            limit=HOST,
        )
        assert res.rc == 0, res.stdout[-3000:]
        assert sorted(res.result(HOST, "persist")["files"]) == [
            "/etc/modprobe.d/zz-dummy.conf",  # read after systemd.conf, which sets numdummies=0
            "/etc/modules-load.d/dummy.conf",
        ]
        assert "warnings" not in res.result(HOST, "persist")
        lab.reboot(HOST)
        # numdummies is not in sysfs (mode 0): the interfaces show the option was applied at boot
        assert sh(lab, f"grep -c '^dummy ' /proc/modules; {COUNT_DUMMIES}") == "1\n2"
        assert sh(lab, "sysctl -n net.ipv4.tcp_rmem").split() == ["4096", "87380", "6291456"]

        persist = kmod(
            "after boot",
            "        name: dummy\n        params: {numdummies: 2}\n        persistent: present\n        reload: true\n",
        )
        res = run_playbook(
            play(
                persist,
                kmod("forget", "        name: dummy\n        state: absent\n        persistent: absent\n"),
                kmod("forget again", "        name: dummy\n        state: absent\n        persistent: absent\n"),
            ),
            limit=HOST,
        )
        assert res.rc == 0, res.stdout[-3000:]
        # loaded at boot with kmod's own modprobe.d options: known, so a second run changes nothing
        after_boot = res.result(HOST, "after boot")
        assert after_boot["changed"] is False and after_boot["commands"] == []
        assert after_boot["params"]["numdummies"] == "2" and after_boot["unverified_params"] == []
        assert res.result(HOST, "forget")["changed"] and res.result(HOST, "forget again")["changed"] is False
        assert sh(lab, "ls /etc/modules-load.d/dummy.conf /etc/modprobe.d/zz-dummy.conf 2>/dev/null | wc -l") == "0"
    finally:
        lab.ssh(
            HOST,
            f"{CLEAN_DUMMY}; rm -f /etc/sysctl.d/90-labkit-test.conf; sysctl -qw net.ipv4.tcp_rmem='{rmem}'",
            check=False,
        )


def test_fixture_by_path_install_and_srcversion_reload(lab, run_playbook, fixture_builds):
    lab.ssh(HOST, CLEAN_FIXTURE)
    try:
        res = run_playbook(
            play(
                kmod(
                    "by path",
                    "        path: /root/lkf-rev1.ko\n        params: {level: 4, tag: 'two words', ports: [10, 20]}\n",
                ),
            ),
            limit=HOST,
        )
        assert res.rc == 0, res.stdout[-3000:]
        by_path = res.result(HOST, "by path")
        assert by_path["changed"] and by_path["name"] == "labkit_fixture"
        assert by_path["srcversion"] == fixture_builds["rev1"]
        assert by_path["vermagic"].split()[0] == lab.kernel_release
        assert by_path["params"]["tag"] == "two words" and by_path["params"]["ports"] == "10,20"
        assert sh(lab, "sysctl -n net.labkit_fixture.level") == "4"
        assert sh(lab, "cat /sys/module/labkit_fixture/srcversion") == fixture_builds["rev1"]

        install_rev2 = kmod(
            "install rev2",
            "        path: /root/lkf-rev2.ko\n        install: true\n        reload: true\n"
            "        params: {level: 4, tag: 'two words', ports: [10, 20]}\n",
        )
        res = run_playbook(
            play(
                kmod("rev2 without reload", "        path: /root/lkf-rev2.ko\n"),
                install_rev2,
                install_rev2.replace("install rev2", "install rev2 again"),
            ),
            limit=HOST,
            diff=True,
        )
        assert res.rc == 0, res.stdout[-3000:]
        stale = res.result(HOST, "rev2 without reload")
        assert stale["changed"] is False and stale["reload_reasons"] == ["srcversion"]
        installed = res.result(HOST, "install rev2")
        assert installed["changed"] and installed["installed"] and installed["reloaded"]
        assert installed["reload_reasons"] == ["srcversion"]
        assert installed["srcversion"] == fixture_builds["rev2"]
        assert installed["filename"] == f"/lib/modules/{lab.kernel_release}/updates/labkit_fixture.ko"
        again = res.result(HOST, "install rev2 again")
        assert again["changed"] is False and again["installed"] is False and again["commands"] == []
        assert sh(lab, "cat /sys/module/labkit_fixture/srcversion") == fixture_builds["rev2"]
        assert sh(lab, "cat /sys/module/labkit_fixture/parameters/rev") == "2"
        assert sh(lab, "modinfo -F srcversion labkit_fixture") == fixture_builds["rev2"]  # modprobe finds the copy
    finally:
        lab.ssh(HOST, CLEAN_FIXTURE, check=False)


def test_fixture_for_other_release_refused_with_vermagic(lab, run_playbook, fixture_builds):
    lab.ssh(HOST, CLEAN_FIXTURE)
    res = run_playbook(play(kmod("other release", "        path: /root/lkf-other.ko\n")), limit=HOST)
    assert res.failed(HOST) == 1
    msg = res.result(HOST, "other release")["msg"]
    assert f"{FAKE_RELEASE} SMP preempt mod_unload modversions" in msg
    assert f'kernel release: "{lab.kernel_release}"' in msg
    assert sh(lab, "grep -c '^labkit_fixture ' /proc/modules || true") == "0"  # insmod never ran


def test_sysctl_waits_for_fixture_key(lab, run_playbook, fixture_builds):
    """The key net.labkit_fixture.level exists only once the module is loaded (here ~12 s into the play)."""
    lab.ssh(HOST, CLEAN_FIXTURE)
    try:
        res = run_playbook(
            play(
                "    - name: not there yet\n      labkit.cluster.sysctl:\n        name: net.labkit_fixture.level\n"
                "        value: 6\n        persistent: false\n        wait_timeout: 1\n      ignore_errors: true\n",
                "    - name: load later\n      ansible.builtin.command: sh -c 'sleep 12; insmod /root/lkf-rev1.ko'\n"
                "      async: 120\n      poll: 0\n",
                "    - name: wait for key\n      labkit.cluster.sysctl:\n        name: net.labkit_fixture.level\n"
                "        value: 6\n        persistent: false\n        wait_timeout: 120\n",
            ),
            limit=HOST,
        )
        missing = res.result(HOST, "not there yet")
        assert "labkit_fixture" in missing["msg"] and "waited 1s" in missing["msg"]
        waited = res.result(HOST, "wait for key")
        assert waited.get("failed") is not True, res.stdout[-3000:]
        assert waited["changed"] and waited["previous_value"] == "1" and waited["value"] == "6"
        assert waited["waited"] > 0
        assert sh(lab, "sysctl -n net.labkit_fixture.level") == "6"
        assert sh(lab, "cat /sys/module/labkit_fixture/parameters/level") == "6"  # the sysctl is the parameter
    finally:
        lab.ssh(HOST, CLEAN_FIXTURE, check=False)
