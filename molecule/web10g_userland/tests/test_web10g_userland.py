"""What labkit.cluster.web10g_userland leaves in a container, read over podman exec (testinfra).

The source is the real upstream web10g-userland at the role's default pin. The container has no web10g
kernel (no tcp_estats_nl, no `tcp_estats` generic netlink family). Upstream's library does not check
that the family exists (it ignores the kernel's ENOENT when it resolves the family), so the tools do not
say so: they run, exit 0 and report nothing (no connections, every variable 0). The tests pin that
behaviour down and read the absence of the family from `genl` itself.
"""

import json

testinfra_hosts = ["podman://web10g-userland-bookworm"]
PREFIX = "/opt/web10g"
PIN = "80da7cba6f7c88b9664e96146bd4f547fabf224c"
TOOLS = (
    "web10g-deltavars",
    "web10g-getmib",
    "web10g-listconninfo",
    "web10g-listconns",
    "web10g-logger",
    "web10g-readvars",
    "web10g-record_read",
    "web10g-record_write",
    "web10g-watchvars",
    "web10g-writevar",
)


def test_the_ten_tools_and_estats_config_are_installed(host):
    installed = set(host.check_output(f"ls {PREFIX}/bin").split())
    assert installed >= {*TOOLS, "estats-config"}
    assert sorted(name for name in installed if name.startswith("web10g-")) == sorted(TOOLS)
    for tool in (*TOOLS, "estats-config"):
        assert host.file(f"{PREFIX}/bin/{tool}").mode & 0o111, tool
    assert host.file(f"{PREFIX}/include/estats/estats.h").is_file


def test_library_resolves_through_the_linker_cache(host):
    conf = host.file("/etc/ld.so.conf.d/labkit-web10g-userland.conf")
    assert f"{PREFIX}/lib" in conf.content_string.splitlines()
    assert f"libestats.so.1 (libc6,x86-64) => {PREFIX}/lib/libestats.so.1" in host.check_output("ldconfig -p")
    for tool in TOOLS:
        linked = host.check_output(f"ldd {PREFIX}/bin/{tool}")
        assert f"libestats.so.1 => {PREFIX}/lib/libestats.so.1" in linked, tool
        assert "not found" not in linked, tool


def test_estats_config_names_the_prefix(host):
    assert host.check_output(f"{PREFIX}/bin/estats-config --prefix") == PREFIX
    assert host.check_output(f"{PREFIX}/bin/estats-config --libs") == f"-L{PREFIX}/lib -lestats"
    assert host.check_output(f"{PREFIX}/bin/estats-config --cflags") == f"-I{PREFIX}/include"


def test_the_tcp_estats_family_is_not_registered(host):
    result = host.run("genl ctrl get name tcp_estats")
    assert result.rc != 0
    assert "No such file or directory" in result.stderr


def test_listconns_runs_and_lists_nothing_without_the_family(host):
    result = host.run(f"{PREFIX}/bin/web10g-listconns")
    assert result.rc == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines[0].split() == ["CID", "LocalAddr", "LocalPort", "RemAddr", "RemPort"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 2, result.stdout


def test_readvars_reads_only_zeros_without_the_family(host):
    usage = host.run(f"{PREFIX}/bin/web10g-readvars")
    assert usage.rc == 1
    assert "readvars cid [-m mask]" in usage.stdout
    result = host.run(f"{PREFIX}/bin/web10g-readvars 1")
    assert result.rc == 0, result.stderr
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert {"SegsOut", "SmoothedRTT", "CurCwnd"} <= values.keys()
    assert set(values.values()) == {"0"}


def test_getmib_runs(host):
    result = host.run(f"{PREFIX}/bin/web10g-getmib")
    assert result.rc == 0, result.stderr
    assert result.stdout.startswith("TCP Extended Statistics (RFC 4898)")


def test_the_build_regenerated_the_missing_makefile_in(host):
    log = host.file("/var/lib/labkit/web10g_userland/src/build.log").content_string
    assert "regenerating the build system: configure is there but its template Makefile.in is not" in log


def test_stamp_names_the_pinned_revision_and_options(host):
    stamp = json.loads(host.file(f"{PREFIX}/share/web10g-userland/stamp").content_string)
    assert stamp == {"configure_args": [], "prefix": PREFIX, "revision": PIN}
