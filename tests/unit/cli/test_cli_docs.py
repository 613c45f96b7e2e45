"""README carries the staff walkthrough as docs/staff-walkthrough.md has it (the page the walkthrough test runs),
so the two cannot drift apart."""

import re

from services.common.runtime.config import REPO_ROOT


def walkthrough_as_in_readme() -> str:
    """The page below its title, its sections one level down, its links relative to the repository root."""
    page = (REPO_ROOT / "docs" / "staff-walkthrough.md").read_text(encoding="utf-8")
    body = page.split("\n", 1)[1].strip()
    body = re.sub(r"^## ", "### ", body, flags=re.M)
    return re.sub(r"\]\((?!https?:|#|/)([^)]+)\)", r"](docs/\1)", body)


def test_readme_carries_the_walkthrough_as_written():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert walkthrough_as_in_readme() in readme, "README's walkthrough differs from docs/staff-walkthrough.md"
