"""Running external commands and checking the system has them."""

from __future__ import annotations

import shutil
import socket
import subprocess

from simlab.errors import SimlabError

# Which Debian package provides each command simlab runs, for the error message.
PACKAGE_OF = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "mmdebstrap": "mmdebstrap",
    "mkfs.ext4": "e2fsprogs",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "sfdisk": "fdisk",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "openssl": "openssl",
}


def require(*commands: str) -> None:
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        packages = sorted({PACKAGE_OF.get(c, c) for c in missing})
        raise SimlabError(
            f"missing system commands {missing}: install them with "
            f"`apt-get install {' '.join(packages)}` (or run ./labkit setup)"
        )


def run(argv: list[str], what: str | None = None, timeout: int = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run argv; on failure raise SimlabError with the command's own output tail."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    except subprocess.TimeoutExpired:
        raise SimlabError(f"{what or argv[0]} did not finish within {timeout} s") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise SimlabError(f"{what or argv[0]} failed (rc={proc.returncode}):\n{tail}")
    return proc


def port_in_use(port: int) -> bool:
    """True when something already listens on (or holds) 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
