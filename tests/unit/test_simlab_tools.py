"""simlab's hints for missing commands name packages that ./labkit setup installs."""

import re
from pathlib import Path

from simlab import tools

ROOT = Path(__file__).resolve().parents[2]


def apt_packages() -> set[str]:
    text = (ROOT / "labkit").read_text()
    block = re.search(r"^APT_PACKAGES=\((.*?)^\)", text, re.S | re.M).group(1)
    return {word for line in block.splitlines() for word in line.split("#")[0].split()}


def test_every_hinted_package_is_installed_by_labkit_setup():
    assert set(tools.PACKAGE_OF.values()) <= apt_packages()


def test_ovmf_for_uefi_guests_is_installed_by_labkit_setup():
    assert {"ovmf", "fdisk", "dosfstools", "mtools"} <= apt_packages()
