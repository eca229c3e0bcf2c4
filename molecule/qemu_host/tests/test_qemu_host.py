"""What qemu_host leaves on the QEMU host, after converge and the idempotence run (side_effect.yml then
changes one guest and checks that only it restarts)."""

import json
import time

UNITS = ("labkit-qemu-g-cxl.service", "labkit-qemu-g-plain.service")
# QMP over the guest's socket: greeting, capabilities negotiation, then the question.
QMP = """python3 - <<'EOF'
import json, socket
sock = socket.socket(socket.AF_UNIX)
sock.connect("/run/labkit/qemu/{name}/qmp.sock")
stream = sock.makefile("rw")
stream.readline()
for command in ("qmp_capabilities", "{command}"):
    stream.write(json.dumps({{"execute": command}}) + "\\n")
    stream.flush()
    reply = stream.readline()
print(reply)
EOF"""


def test_guests_run_as_enabled_services(host):
    for unit in UNITS:
        service = host.service(unit)
        assert service.is_running, unit
        assert service.is_enabled, unit


def test_no_guest_was_restarted_since_it_was_recorded(host):
    recorded = json.loads(host.file("/var/tmp/labkit-scenario-pids.json").content_string)
    for unit in UNITS:
        assert host.check_output(f"systemctl show --property=MainPID --value {unit}") == recorded[unit]


def test_qmp_says_each_guest_runs(host):
    for name in ("g-cxl", "g-plain"):
        reply = json.loads(host.check_output(QMP.format(name=name, command="query-status")))
        assert reply["return"]["status"] == "running", reply


def test_cxl_device_has_its_backing_files_and_arguments(host):
    unit = host.file("/etc/systemd/system/labkit-qemu-g-cxl.service").content_string
    assert "-machine q35,cxl=on" in unit
    assert "cxl-type3,bus=cxl-rp-mem0,id=cxl-mem0,memdev=cxl-mem0-mem,lsa=cxl-mem0-lsa" in unit
    assert host.file("/var/lib/labkit/qemu/g-cxl/cxl-mem0.raw").size == 256 << 20
    assert host.file("/var/lib/labkit/qemu/g-cxl/cxl-mem0-lsa.raw").size == 16 << 20
    assert "cxl=on" not in host.file("/etc/systemd/system/labkit-qemu-g-plain.service").content_string


def test_consoles_show_the_kernel_booting_with_its_command_line(host):
    for name in ("g-cxl", "g-plain"):
        log = host.file(f"/var/log/labkit/qemu/{name}.log")
        for _attempt in range(60):  # under TCG the kernel may still be on its way
            if "Command line: console=ttyS0" in log.content_string:
                break
            time.sleep(1)
        assert "Linux version" in log.content_string, log.content_string[-2000:]
        assert "Command line: console=ttyS0" in log.content_string, log.content_string[-2000:]


def test_both_guests_share_the_ivshmem_region_on_hugetlbfs(host):
    assert host.service("var-lib-labkit-hugepages.mount").is_running
    mount = host.mount_point("/var/lib/labkit/hugepages")
    assert mount.filesystem == "hugetlbfs" and "pagesize=2M" in mount.options, mount.options
    assert host.file("/var/lib/labkit/hugepages/shm0").size == 2 << 20
    total = host.check_output("awk '/^HugePages_Total:/ {print $2}' /proc/meminfo")
    assert int(total) >= 1
    for name in ("g-cxl", "g-plain"):
        unit = host.file(f"/etc/systemd/system/labkit-qemu-{name}.service").content_string
        assert "mem-path=/var/lib/labkit/hugepages/shm0,size=2M" in unit and "ivshmem-plain" in unit
        assert "Requires=var-lib-labkit-hugepages.mount" in unit
        reply = json.loads(host.check_output(QMP.format(name=name, command="query-pci")))
        devices = [dev for bus in reply["return"] for dev in bus["devices"]]
        assert any(dev["id"]["vendor"] == 0x1AF4 and dev["id"]["device"] == 0x1110 for dev in devices), devices
