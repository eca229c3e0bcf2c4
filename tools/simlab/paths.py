"""Where simlab keeps its cache (images, keys, certificates) and its running labs."""

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("LABKIT_CACHE", Path.home() / ".cache" / "labkit"))


def images_dir() -> Path:
    return cache_dir() / "images"


def run_dir() -> Path:
    return cache_dir() / "run"


def ssh_key() -> Path:
    return cache_dir() / "ssh" / "id_ed25519"


def tls_dir() -> Path:
    return cache_dir() / "tls"
