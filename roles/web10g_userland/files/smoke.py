"""web10g_userland smoke test: a TCP connection on the loopback, read back with the web10g tools.

smoke.py PREFIX PORT -- prints JSON (mask, the listconns line of the connection, the variable count);
exits 1 with the reason on stderr when the tools do not see what they should.
"""

import json
import socket
import subprocess
import sys

prefix, port = sys.argv[1], int(sys.argv[2])
with open("/proc/sys/net/ipv4/tcp_estats") as handle:
    mask = int(handle.read())
if mask == 0:
    sys.exit("net.ipv4.tcp_estats is 0: no tables are collected (set web10g_dlkm_sysctl_value)")
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(1)
client = socket.create_connection(("127.0.0.1", port))
peer = server.accept()[0]
client.sendall(b"labkit web10g smoke test")
peer.recv(64)
local_port = client.getsockname()[1]
listconns = subprocess.run([f"{prefix}/bin/web10g-listconns"], capture_output=True, text=True, check=False)
readvars = subprocess.run([f"{prefix}/bin/web10g-readvars"], capture_output=True, text=True, check=False)
client.close()
peer.close()
server.close()
wanted = f"127.0.0.1:{local_port} 127.0.0.1:{port}"
lines = [line for line in listconns.stdout.splitlines() if line.strip() == wanted]
if listconns.returncode != 0 or not lines:
    sys.exit(
        f"web10g-listconns (rc {listconns.returncode}) does not list {wanted}:\n{listconns.stdout}{listconns.stderr}"
    )
if readvars.returncode != 0 or f"mask 0x{mask:02x}" not in readvars.stdout:
    output = readvars.stdout + readvars.stderr
    sys.exit(f"web10g-readvars (rc {readvars.returncode}) does not report mask 0x{mask:02x}:\n{output}")
variables = [line for line in readvars.stdout.splitlines()[1:] if line.strip()]
print(
    json.dumps(
        {"mask": mask, "connection": wanted, "header": listconns.stdout.splitlines()[0], "variables": len(variables)}
    )
)
