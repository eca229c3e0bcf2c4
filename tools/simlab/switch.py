"""The lab's private L2 network: a learning switch over unix datagram sockets.

Each guest's lab NIC is a QEMU `dgram` netdev bound to its own socket file and sending to the
switch's socket. The switch learns which socket each MAC lives behind and forwards frames there;
broadcast, multicast and unknown destinations go to every other port. Nothing here touches an IP
address: the network exists only as files in the lab's run directory.

Run as: python -m simlab.switch SWITCH_SOCKET PEER_SOCKET...
"""

from __future__ import annotations

import os
import signal
import socket
import sys

MAX_FRAME = 65536


def serve(switch_path: str, peers: list[str]) -> None:
    if os.path.exists(switch_path):
        os.unlink(switch_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(switch_path)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    known = set(peers)
    where: dict[bytes, str] = {}  # MAC -> peer socket
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        frame, sender = sock.recvfrom(MAX_FRAME)
        if len(frame) < 14 or not sender:
            continue
        known.add(sender)
        destination, source = frame[0:6], frame[6:12]
        where[source] = sender
        if destination[0] & 1 == 0 and destination in where:
            targets = [where[destination]]
        else:
            targets = [peer for peer in known if peer != sender]
        for peer in targets:
            try:
                sock.sendto(frame, peer)
            except OSError:
                pass  # a guest that is down or rebooting drops the frame, as a cable would


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2:])
