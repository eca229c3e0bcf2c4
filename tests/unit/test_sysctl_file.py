"""sysctl_file: key and value normalisation, provider hints, and sysctl.d editing that keeps the rest of a file."""

import pytest
from ansible_collections.labkit.cluster.plugins.module_utils import sysctl_file as sf


@pytest.mark.parametrize(
    ("key", "dotted"),
    [
        ("net.ipv4.tcp_rmem", "net.ipv4.tcp_rmem"),
        ("net/ipv4/tcp_rmem", "net.ipv4.tcp_rmem"),
        ("net/ipv4/conf/eth0.100/forwarding", "net.ipv4.conf.eth0/100.forwarding"),
        ("-net.ipv4.ip_forward", "net.ipv4.ip_forward"),
        ("  kernel.pid_max ", "kernel.pid_max"),
    ],
)
def test_normalize_key(key, dotted):
    assert sf.normalize_key(key) == dotted


def test_proc_path_handles_dots_in_interface_names():
    assert sf.key_to_proc_path("net/ipv4/conf/eth0.100/forwarding") == "/proc/sys/net/ipv4/conf/eth0.100/forwarding"
    assert sf.key_to_proc_path("net.ipv4.conf.eth0/100.forwarding") == "/proc/sys/net/ipv4/conf/eth0.100/forwarding"
    assert sf.key_to_proc_path("net.ipv4.tcp_rmem", root="") == "/net/ipv4/tcp_rmem"


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        ("4096\t87380   6291456", "4096 87380 6291456"),
        (" 4096 87380 6291456\n", "4096 87380 6291456"),
        (True, "1"),
        (False, "0"),
        (127, "127"),
        (None, ""),
    ],
)
def test_normalize_value(value, normal):
    assert sf.normalize_value(value) == normal


def test_bool_words_only_for_numeric_keys():
    assert sf.normalize_wanted("yes", "0") == "1"
    assert sf.normalize_wanted("Off", "1") == "0"
    assert sf.normalize_wanted("on", "cubic") == "on"
    assert sf.normalize_wanted("true", None) == "true"
    assert sf.normalize_wanted(True, None) == "1"


def test_provider_hints_for_lab_keys():
    assert sf.provider_hint("net.ipv4.tcp_estats") == "tcp_estats_nl"
    assert sf.provider_hint("net.dcpim.epoch") == "dcpim_module"
    assert sf.provider_hint("net/dcpim/epoch") == "dcpim_module"
    assert sf.provider_hint("net.labkit_fixture.level") == "labkit_fixture"
    assert sf.provider_hint("vm.swappiness") is None
    assert sf.provider_hint("net.dcpimx") is None


FILE = """# Lab tuning, written by hand
net.core.rmem_max=16777216

; older style comment
  net.ipv4.tcp_rmem   =   4096 131072 6291456
-net.ipv4.tcp_estats = 0
# net.ipv4.tcp_rmem = 1 2 3
vm.swappiness = 10"""


def test_get_returns_last_active_value():
    f = sf.SysctlFile(FILE + "\nnet.ipv4.tcp_rmem = 1 1 1\n")
    assert f.get("net.ipv4.tcp_rmem") == "1 1 1"
    assert f.get("net/ipv4/tcp_estats") == "0"
    assert f.get("kernel.pid_max") is None


def test_set_existing_key_keeps_everything_else():
    f = sf.SysctlFile(FILE)
    f.set("net.ipv4.tcp_rmem", "4096\t87380  6291456")
    out = f.render()
    assert "  net.ipv4.tcp_rmem   =   4096 87380 6291456\n" in out
    assert "# net.ipv4.tcp_rmem = 1 2 3\n" in out  # comments are not keys
    assert out.replace("4096 87380 6291456", "4096 131072 6291456") == FILE
    assert not out.endswith("\n")  # the missing final newline stays missing


def test_set_keeps_dash_prefix_and_slashed_match():
    f = sf.SysctlFile(FILE)
    f.set("net/ipv4/tcp_estats", 127)
    assert "-net.ipv4.tcp_estats = 127\n" in f.render()


def test_set_same_value_is_no_change():
    f = sf.SysctlFile(FILE)
    f.set("net.ipv4.tcp_rmem", "4096 131072   6291456")
    assert f.render() == FILE


def test_set_new_key_appends_with_newline():
    f = sf.SysctlFile(FILE)
    f.set("net.ipv4.ip_forward", "1")
    assert f.render() == FILE + "\nnet.ipv4.ip_forward = 1\n"
    empty = sf.SysctlFile(None)
    empty.set("a.b", "2")
    assert empty.render() == "a.b = 2\n"


def test_set_updates_every_duplicate_line():
    f = sf.SysctlFile("a.b = 1\nc.d = 2\na.b=3\n")
    f.set("a.b", "5")
    assert f.render() == "a.b = 5\nc.d = 2\na.b=5\n"


def test_remove_drops_only_that_keys_lines():
    f = sf.SysctlFile(FILE + "\n")
    f.remove("net.ipv4.tcp_rmem")
    out = f.render()
    assert "net.ipv4.tcp_rmem   =" not in out
    assert "# net.ipv4.tcp_rmem = 1 2 3\n" in out
    assert "; older style comment\n" in out
    assert "vm.swappiness = 10\n" in out
    assert len(out.splitlines()) == len(FILE.splitlines()) - 1


def test_crlf_lines_are_kept():
    f = sf.SysctlFile("a.b = 1\r\nc.d = 2\r\n")
    f.set("a.b", "3")
    assert f.render() == "a.b = 3\r\nc.d = 2\r\n"


@pytest.mark.parametrize(
    ("key", "components"),
    [
        ("net.ipv4.ip_forward", ["net", "ipv4", "ip_forward"]),
        ("net/ipv4/conf/eth0.100/forwarding", ["net", "ipv4", "conf", "eth0.100", "forwarding"]),
        ("net.ipv4.conf.eth0/100.forwarding", ["net", "ipv4", "conf", "eth0.100", "forwarding"]),
        ("net.ipv4.conf.br-lab_1.rp_filter", ["net", "ipv4", "conf", "br-lab_1", "rp_filter"]),
    ],
)
def test_check_key_accepts_kernel_names(key, components):
    assert sf.check_key(key) == components


@pytest.mark.parametrize(
    "key",
    ["", "net/../x", "net.//.x", "net/./x", "net..x", "net.", "/net/x", "-net.x", "a=b", "a b", "a\nb", "a\x00b"],
)
def test_check_key_refuses(key):
    with pytest.raises(sf.InvalidInput):
        sf.check_key(key)


def test_safe_proc_path_stays_under_proc_sys(tmp_path):
    (tmp_path / "sys" / "net").mkdir(parents=True)
    (tmp_path / "sys" / "net" / "out").symlink_to(tmp_path)
    assert sf.safe_proc_path("net.ipv4.x", root=str(tmp_path / "sys")) == str(tmp_path / "sys" / "net" / "ipv4" / "x")
    with pytest.raises(sf.InvalidInput, match="outside"):
        sf.safe_proc_path("net.out.x", root=str(tmp_path / "sys"))


def test_netns_keys_and_names():
    sf.check_netns_key("net.ipv4.ip_forward")
    with pytest.raises(sf.InvalidInput, match="host-wide"):
        sf.check_netns_key("kernel.pid_max")
    sf.check_netns_name("lab-red")
    for name in ("", "../x", "..", "-x", "a b"):
        with pytest.raises(sf.InvalidInput):
            sf.check_netns_name(name)


@pytest.mark.parametrize("value", ["4096\t87380 6291456", 1, True, 1.5, "cubic", ""])
def test_check_value_accepts_one_line(value):
    sf.check_value(value)


@pytest.mark.parametrize("value", ["1\n2", "1\r", "\x00", [1], {"a": 1}, None])
def test_check_value_refuses(value):
    with pytest.raises(sf.InvalidInput):
        sf.check_value(value)
