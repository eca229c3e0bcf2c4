"""Every relative link in the project's Markdown (README, docs/, roles' and plugins' READMEs) names a file
that exists, so a page that moves or a role that is renamed cannot leave dead links behind."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lint
LINK = re.compile(r"\]\(([^)\s]+)\)")
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("roles/*/README.md")])


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)  # code blocks hold no links
    return [link for link in LINK.findall(text) if not re.match(r"[a-z]+:|#", link)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    dead = [link for link in relative_links(page) if not (page.parent / link.split("#")[0]).exists()]
    assert not dead, f"{page.relative_to(ROOT)}: links to missing files: {dead}"


def test_the_check_sees_links():
    # the pattern must find the README's links, or every page would pass
    assert "docs/subsystems/README.md" in relative_links(ROOT / "README.md")
