"""The lab switch forwards real Ethernet frames between real unix datagram sockets."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"
BROADCAST = b"\xff" * 6


def _mac(n: int) -> bytes:
    return bytes([0x52, 0x54, 0, 0, 0, n])


def _frame(dst: bytes, src: bytes, payload: bytes) -> bytes:
    return dst + src + b"\x08\x00" + payload


@pytest.fixture
def switch(tmp_path):
    """A running switch with three ports; yields a send/receive helper per port."""
    hub = tmp_path / "switch.sock"
    ports = {}
    for n in (1, 2, 3):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(tmp_path / f"g{n}.sock"))
        sock.settimeout(0.5)
        ports[n] = sock
    proc = subprocess.Popen(
        [sys.executable, "-m", "simlab.switch", str(hub), *(str(tmp_path / f"g{n}.sock") for n in ports)],
        cwd=TOOLS,
    )
    deadline = time.monotonic() + 10
    while not hub.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "switch did not start"
        time.sleep(0.05)
    yield hub, ports
    proc.terminate()
    proc.wait(timeout=10)
    for sock in ports.values():
        sock.close()


def _received(sock) -> bytes | None:
    try:
        return sock.recv(65536)
    except TimeoutError:
        return None


def test_broadcast_reaches_every_other_port(switch):
    hub, ports = switch
    frame = _frame(BROADCAST, _mac(1), b"who-has")
    ports[1].sendto(frame, str(hub))
    assert _received(ports[2]) == frame
    assert _received(ports[3]) == frame
    assert _received(ports[1]) is None  # never echoed back to the sender


def test_learned_unicast_goes_only_to_its_port(switch):
    hub, ports = switch
    ports[2].sendto(_frame(BROADCAST, _mac(2), b"hello"), str(hub))  # the switch learns mac 2 -> g2
    _received(ports[1]), _received(ports[3])
    unicast = _frame(_mac(2), _mac(1), b"to-two")
    ports[1].sendto(unicast, str(hub))
    assert _received(ports[2]) == unicast
    assert _received(ports[3]) is None


def test_runt_frames_are_dropped(switch):
    hub, ports = switch
    ports[1].sendto(b"short", str(hub))
    assert _received(ports[2]) is None
