"""README.md and docs/: every relative link leads to a file of this repository, and every
``#anchor`` to a heading of the page it names (GitHub's anchors: lower case, punctuation
dropped, spaces as hyphens)."""

import re
from pathlib import Path

import pytest

from local.processes import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def prose(page: Path) -> str:
    """The page without its fenced code blocks, where brackets are not links."""
    return re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes for the page's headings."""
    found: set[str] = set()
    for heading in re.findall(r"^#+ (.+)$", prose(page), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        numbered, n = slug, 0
        while numbered in found:
            n += 1
            numbered = f"{slug}-{n}"
        found.add(numbered)
    return found


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page)) if not re.match(r"^[a-z]+:", t)]


def test_there_are_pages_and_links() -> None:
    assert len(PAGES) > 5
    assert all(links(page) for page in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_inside_the_repository(page: Path) -> None:
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.is_relative_to(ROOT), f"{page.name}: {target} leads outside"
        assert resolved.exists(), f"{page.name}: {target}: no such file"
        if anchor:
            assert resolved.suffix == ".md", f"{page.name}: {target}: an anchor into a non-page"
            assert anchor in anchors(resolved), f"{page.name}: {target}: no such heading"
