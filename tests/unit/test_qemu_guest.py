"""QEMU guests as data (plugins/module_utils/qemu_guest.py): what a definition may hold, what is refused
before any guest is touched (naming the field), and the command line a valid guest stands for. The
command lines are booted in real QEMU by tests/integration/test_qemu_guest_boot.py."""

import pytest
from ansible_collections.labkit.cluster.plugins.module_utils import qemu_guest as q

KERNEL = "/boot/vmlinuz-6.1.0-50-amd64"


def guest(**changes):
    value = {"name": "cxl1", "memory": "1G", "kernel": KERNEL}
    value.update(changes)
    return value


def argv(definition, regions=None, version=(7, 2), sockets=None):
    regions = q.validate_regions(regions or [])
    checked = q.validate_guest(definition, regions, version)
    dirs = {"run_dir": "/run/labkit/qemu/cxl1", "files_dir": "/var/lib/labkit/qemu/cxl1"}
    return q.qemu_argv(checked, regions, **dirs, qemu_version=version, ivshmem_sockets=sockets)


def refused(match, definition=None, regions=None, version=(7, 2)):
    with pytest.raises(q.GuestError, match=match):
        argv(definition or guest(), regions, version)


@pytest.mark.parametrize(
    ("text", "size"),
    [("256M", 256 << 20), ("4G", 4 << 30), ("2048 KiB", 2 << 20), ("1g", 1 << 30), (4096, 4096), ("512MB", 512 << 20)],
)
def test_sizes(text, size):
    assert q.parse_size(text, "size") == size


@pytest.mark.parametrize("text", ["", "-1M", "1.5G", "4X", "1G\n", True, None, [], "0"])
def test_bad_sizes_are_refused_naming_the_field(text):
    with pytest.raises(q.GuestError, match=r"^memory: "):
        q.parse_size(text, "memory")


def test_a_persistent_device_gets_bridge_port_memory_lsa_and_a_window():
    args = argv(guest(cxl={"devices": [{"name": "mem0", "size": "256M"}]}))
    joined = " ".join(args)
    assert "-machine q35,cxl=on" in joined
    assert "-device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.0" in joined
    assert "-device cxl-rp,port=0,bus=cxl.0,id=cxl-rp-mem0,chassis=0,slot=0" in joined
    files = "/var/lib/labkit/qemu/cxl1"
    assert f"memory-backend-file,id=cxl-mem0-mem,share=on,mem-path={files}/cxl-mem0.raw,size=256M" in joined
    assert f"memory-backend-file,id=cxl-mem0-lsa,share=on,mem-path={files}/cxl-mem0-lsa.raw,size=256M" in joined
    # QEMU 7.2 knows only `memdev` (persistent); 8.0 renamed it persistent-memdev
    assert "-device cxl-type3,bus=cxl-rp-mem0,id=cxl-mem0,memdev=cxl-mem0-mem,lsa=cxl-mem0-lsa" in joined
    assert args[-2:] == ["-M", "cxl-fmw.0.targets.0=cxl.0,cxl-fmw.0.size=256M"]
    assert "-m 1G,maxmem=1280M,slots=4" in joined


def test_qemu_8_gets_the_new_syntax_and_volatile_devices():
    devices = [{"name": "pm", "size": "256M"}, {"name": "vm", "kind": "volatile", "size": "512M"}]
    joined = " ".join(argv(guest(cxl={"devices": devices}), version=(8, 2)))
    assert "persistent-memdev=cxl-pm-mem,lsa=cxl-pm-lsa" in joined
    assert "memory-backend-ram,id=cxl-vm-mem,share=on,size=512M" in joined
    assert "cxl-type3,bus=cxl-rp-vm,id=cxl-vm,volatile-memdev=cxl-vm-mem" in joined
    assert joined.endswith("-M cxl-fmw.0.targets.0=cxl.0,cxl-fmw.0.size=768M")


def test_volatile_device_on_qemu_7_is_refused_naming_the_version():
    refused(
        r"cxl device vm is volatile, which needs QEMU >= 8\.0 \(volatile-memdev\); this host's QEMU is 7\.2",
        guest(cxl={"devices": [{"name": "vm", "kind": "volatile"}]}),
    )


def test_two_host_bridges_are_interleaved_by_one_default_window():
    devices = [{"name": "a"}, {"name": "b", "host_bridge": 1}, {"name": "c", "host_bridge": 1}]
    joined = " ".join(argv(guest(cxl={"host_bridges": 2, "devices": devices})))
    assert "pxb-cxl,bus_nr=22,bus=pcie.0,id=cxl.1" in joined
    assert "cxl-rp,port=1,bus=cxl.1,id=cxl-rp-c,chassis=1,slot=1" in joined
    assert "cxl-fmw.0.targets.0=cxl.0,cxl-fmw.0.targets.1=cxl.1,cxl-fmw.0.size=1G" in joined


def test_windows_given_by_the_user():
    cxl = {
        "host_bridges": 2,
        "devices": [{"name": "a"}, {"name": "b", "host_bridge": 1}],
        "windows": [{"size": "4G", "targets": [0]}, {"size": "2G", "targets": [1], "interleave_granularity": "8k"}],
    }
    joined = " ".join(argv(guest(cxl=cxl)))
    assert (
        "cxl-fmw.0.targets.0=cxl.0,cxl-fmw.0.size=4G,cxl-fmw.1.targets.0=cxl.1,cxl-fmw.1.size=2G,"
        "cxl-fmw.1.interleave-granularity=8k"
    ) in joined


@pytest.mark.parametrize(
    ("cxl", "match"),
    [
        ({"devices": [{"kind": "type2"}]}, r"cxl\.devices\[0\]\.kind: 'type2' is not a CXL device kind"),
        ({"devices": [{"size": "300M"}]}, r"cxl\.devices\[0\]\.size: 300M must be a multiple of 256M"),
        ({"devices": [{"lsa_size": "1536K"}]}, r"cxl\.devices\[0\]\.lsa_size: 1536K must be a multiple of 1M"),
        ({"devices": [{"name": "m"}, {"name": "m"}]}, r"cxl\.devices\[1\]\.name: device m is declared twice"),
        ({"devices": [{"port": 3}, {"port": 3}]}, r"cxl\.devices\[1\]\.port: port 3 of host bridge 0 is used twice"),
        ({"devices": [{"host_bridge": 1}]}, r"cxl\.devices\[0\]\.host_bridge: 1 must be a whole number from 0 to 0"),
        (
            {"devices": [{"size": "1G"}], "windows": [{"size": "512M"}]},
            r"host bridge 0 has 1G of devices but its windows map only 512M",
        ),
        ({"devices": [{}], "windows": [{"size": "300M"}]}, r"windows\[0\]\.size: 300M must be a multiple of 256M"),
        ({"devices": [{}], "windows": [{"size": "1G", "targets": [0, 0]}]}, r"distinct host bridge numbers"),
        (
            {"devices": [{}], "windows": [{"size": "1G", "interleave_granularity": "3k"}]},
            r"interleave_granularity: '3k'",
        ),
        ({"devices": [{"kind": "volatile", "lsa_size": "1M"}]}, r"only persistent devices have a label storage area"),
        ({"devices": []}, r"cxl\.devices: give a list of at least one device"),
        ({"devices": [{"colour": "red"}]}, r"unknown key\(s\) colour"),
        ({"bridges": 2, "devices": [{}]}, r"unknown key\(s\) bridges"),
    ],
)
def test_bad_cxl_definitions_are_refused_naming_the_field(cxl, match):
    refused(match, guest(cxl=cxl), version=(8, 2))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"name": "../etc"}, r"^name: '\.\./etc' is not a name"),
        ({"name": "Cxl"}, r"^name: 'Cxl' is not a name"),
        ({"name": "a" * 40}, r"is not a name"),
        ({"kernel": "/boot/../etc/shadow"}, r"kernel: '/boot/\.\./etc/shadow' must be an absolute path without '\.\.'"),
        ({"kernel": "boot/vmlinuz"}, r"must be an absolute path"),
        ({"kernel": "/boot/vmlinuz,if=none"}, r"without '\.\.' or ','"),
        ({"initrd": "/boot/initrd\n-enable-kvm"}, r"contains a newline"),
        ({"append": "console=ttyS0\nrw"}, r"append: .* contains a newline"),
        ({"kernel": ""}, r"give a kernel \(and initrd\) to boot directly, or a disk"),
        ({"memory": "64M"}, r"memory 64M must be whole MiB and at least 128M"),
        ({"cpus": 0}, r"cpus: 0 must be a whole number from 1 to 64"),
        ({"cpus": "2"}, r"cpus: '2' must be a whole number"),
        ({"accel": "tcg,thread=multi"}, r"accel 'tcg,thread=multi' takes one value"),
        ({"ssh_port": 22}, r"ssh_port: 22 must be a whole number from 1024"),
        ({"disk_format": "vmdk", "disk": "/var/lib/disk.img"}, r"disk_format 'vmdk'"),
        ({"extra_args": "-enable-kvm"}, r"extra_args must be a list"),
        ({"ivshmem": ["shm9"]}, r"ivshmem\[0\] names region shm9, not one of the host's \(none\)"),
        ({"flavour": "x"}, r"^guest: unknown key\(s\) flavour"),
    ],
)
def test_bad_guests_are_refused_naming_the_field(changes, match):
    refused(match, guest(**changes))


def test_ivshmem_plain_and_doorbell():
    regions = [
        {"name": "shm0", "size": "4M", "path": "/dev/hugepages/labkit-shm0"},
        {"name": "bell", "doorbell": True, "vectors": 2},
    ]
    args = argv(guest(ivshmem=["shm0", "bell"]), regions, sockets={"bell": "/run/labkit/qemu/ivshmem-bell.sock"})
    joined = " ".join(args)
    assert "memory-backend-file,id=ivshmem-shm0,share=on,mem-path=/dev/hugepages/labkit-shm0,size=4M" in joined
    assert "-device ivshmem-plain,memdev=ivshmem-shm0" in joined
    assert "-chardev socket,path=/run/labkit/qemu/ivshmem-bell.sock,id=ivshmem-bell" in joined
    assert "-device ivshmem-doorbell,chardev=ivshmem-bell,vectors=2" in joined


@pytest.mark.parametrize(
    ("regions", "match"),
    [
        ([{"name": "a", "size": "3M"}], r"regions\[0\]\.size: 3M must be a multiple of 2M"),
        ([{"name": "a"}, {"name": "a"}], r"regions\[1\]\.name: region a is declared twice"),
        ([{"name": "a", "path": "/dev/hugepages/../x"}], r"regions\[0\]\.path"),
        ([{"name": "a", "doorbell": "yes"}], r"regions\[0\]\.doorbell: give true or false"),
        ([{"name": "a", "vectors": 0}], r"regions\[0\]\.vectors: 0 must be a whole number from 1 to 64"),
    ],
)
def test_bad_ivshmem_regions_are_refused(regions, match):
    with pytest.raises(q.GuestError, match=match):
        q.validate_regions(regions)


def test_a_guest_names_a_region_once():
    refused(r"ivshmem\[1\] names region a twice", guest(ivshmem=["a", "a"]), [{"name": "a", "path": "/dev/shm/a"}])


def test_console_qmp_and_agent_are_in_the_run_directory():
    joined = " ".join(argv(guest()))
    assert "-chardev file,id=console,path=/run/labkit/qemu/cxl1/console.log -serial chardev:console" in joined
    assert "-qmp unix:/run/labkit/qemu/cxl1/qmp.sock,server=on,wait=off" in joined
    assert "virtserialport,chardev=agent,name=org.qemu.guest_agent.0" in joined
    assert "cxl" not in joined.replace("cxl1", "")


def test_qemu_version():
    assert q.qemu_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)") == (7, 2)
    with pytest.raises(q.GuestError, match="cannot read the QEMU version"):
        q.qemu_version("qemu: command not found")


def test_cxl_comes_after_every_other_device():
    # QEMU places a device without a bus on the newest bus; a pxb-cxl takes only bridges
    regions = [{"name": "shm0", "path": "/dev/hugepages/shm0"}]
    args = argv(guest(cxl={"devices": [{}]}, ivshmem=["shm0"], ssh_port=2300), regions)
    first_cxl = args.index("pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.0")
    assert args.index("ivshmem-plain,memdev=ivshmem-shm0") < first_cxl
    assert max(i for i, arg in enumerate(args) if arg == "-nic") < first_cxl
