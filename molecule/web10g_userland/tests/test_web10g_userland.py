"""What labkit.cluster.web10g_userland leaves in a container, read over podman exec (testinfra)."""

import json

testinfra_hosts = ["podman://web10g-userland-bookworm"]
PREFIX = "/opt/web10g"


def test_tools_installed_under_the_prefix(host):
    for tool in ("web10g-listconns", "web10g-readvars"):
        assert host.file(f"{PREFIX}/bin/{tool}").mode & 0o111
    assert host.file(f"{PREFIX}/include/estats.h").is_file


def test_library_resolves_through_the_linker_cache(host):
    conf = host.file("/etc/ld.so.conf.d/labkit-web10g-userland.conf")
    assert f"{PREFIX}/lib" in conf.content_string.splitlines()
    assert f"libestats.so.0 (libc6,x86-64) => {PREFIX}/lib/libestats.so.0" in host.check_output("ldconfig -p")
    assert "not found" not in host.check_output(f"ldd {PREFIX}/bin/web10g-listconns")


def test_listconns_runs_without_the_kernel_module(host):
    result = host.run(f"{PREFIX}/bin/web10g-listconns")
    assert result.rc == 0, result.stderr
    assert result.stdout.startswith("# tcp_estats: family not registered")


def test_readvars_says_the_family_is_missing(host):
    result = host.run(f"{PREFIX}/bin/web10g-readvars")
    assert result.rc == 2
    assert "not registered" in result.stderr


def test_stamp_names_revision_and_options(host):
    stamp = json.loads(host.file(f"{PREFIX}/share/web10g-userland/stamp").content_string)
    assert stamp["prefix"] == PREFIX
    assert stamp["configure_args"] == []
    assert len(stamp["revision"]) == 40
