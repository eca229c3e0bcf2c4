"""Molecule scenarios on podman: `molecule test -s <scenario>` must exit 0.

Each scenario converges a role in a container of localhost/labkit-debian:bookworm (systemd as
PID 1), checks idempotence and verifies with testinfra over `podman exec`. The image is built
locally (no registry is reachable) by tests/podman/build_image.sh, which does nothing when the
image is up to date.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("LABKIT_CACHE", Path.home() / ".cache" / "labkit"))
BIN = Path(sys.executable).parent
MOLECULE_TIMEOUT = 1200
HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
# Images other than build_image.sh's default, by name: the packages they add.
EXTRA_IMAGES = {
    # qemu_host: Debian's QEMU, its cloud kernel for the guests, and what the labkit guest initramfs is made of
    "localhost/labkit-debian:bookworm-qemu": (
        "qemu-system-x86,linux-image-cloud-amd64,busybox-static,qemu-guest-agent,cpio,kmod,ndctl"
    ),
}

pytestmark = [pytest.mark.molecule, pytest.mark.slow]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_COLLECTIONS_PATH=f"{CACHE / 'collections'}{os.pathsep}{CACHE / 'peers'}",
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        CONTAINERS_CONF=str(ROOT / "tests" / "podman" / "containers.conf"),
        ANSIBLE_FORCE_COLOR="0",
        NO_COLOR="1",
        PY_COLORS="0",
    )
    # Molecule writes its own ansible.cfg for the scenario; ours must not override it.
    env.pop("ANSIBLE_CONFIG", None)
    return env


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)


def _platforms(scenario: str) -> list[dict]:
    return yaml.safe_load((ROOT / "molecule" / scenario / "molecule.yml").read_text()).get("platforms", [])


def _instances(scenario: str) -> list[str]:
    return [p["name"] for p in _platforms(scenario)]


def _build_extra_images(scenario: str) -> None:
    for image in {p["image"] for p in _platforms(scenario)} & set(EXTRA_IMAGES):
        env = {**_env(), "LABKIT_MOLECULE_IMAGE": image, "LABKIT_IMAGE_EXTRA_PACKAGES": EXTRA_IMAGES[image]}
        done = subprocess.run(
            [str(ROOT / "tests" / "podman" / "build_image.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, f"image {image} failed to build\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="session")
def molecule_image():
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: apt-get install podman runc (./labkit setup does it)")
    result = _run([str(ROOT / "tests" / "podman" / "build_image.sh")], timeout=900)
    assert result.returncode == 0, f"image build failed\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario, molecule_image):
    _build_extra_images(scenario)
    # A privileged scenario may reserve huge pages, which belong to the machine: give them back after.
    hugepages = HUGEPAGES.read_text() if HUGEPAGES.exists() else None
    cmd = [str(BIN / "molecule"), "test", "-s", scenario]
    try:
        result = _run(cmd, timeout=MOLECULE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd)} took longer than {MOLECULE_TIMEOUT} s\n{exc.stdout}")
    finally:
        # `molecule test` destroys its containers at the end even when a step fails, but not when
        # it is killed; remove them by name either way so that nothing is left running.
        for name in _instances(scenario):
            subprocess.run(["podman", "rm", "--force", "--ignore", name], env=_env(), capture_output=True, check=False)
        if hugepages is not None and HUGEPAGES.read_text() != hugepages:
            HUGEPAGES.write_text(hugepages)
    output = f"{result.stdout[-20000:]}\n{result.stderr[-20000:]}"
    assert result.returncode == 0, f"{' '.join(cmd)} exited {result.returncode}\n{output}"
