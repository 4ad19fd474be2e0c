"""The documentation holds together: the README is a page that links every doc, every relative link and anchor
leads somewhere, and the reference is what scripts/generate_reference.py writes from the docstrings, which document
every parameter."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = [
    *(REPO / name for name in ("README.md", "CONTRIBUTING.md", "RELEASING.md", "CHANGELOG.md")),
    *sorted((REPO / "docs").glob("*.md")),
]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
GENERATOR = REPO / "scripts" / "generate_reference.py"


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation but hyphens and spaces dropped, spaces as
    hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return [a or b for a, b in LINK.findall(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_and_anchor_leads_somewhere(page: Path) -> None:
    broken = []
    for target in _links(page):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no {resolved.relative_to(REPO) if resolved.is_relative_to(REPO) else resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: {resolved.name} has no heading #{anchor}")
    assert not broken, broken


def test_the_readme_is_a_page_that_links_every_doc() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150, "the README is what the project is, the two commands, a tour and links"
    linked = set(_links(REPO / "README.md"))
    docs = {f"docs/{page.name}" for page in (REPO / "docs").glob("*.md")}
    assert docs <= linked, sorted(docs - linked)
    assert {"CONTRIBUTING.md", "RELEASING.md", "CHANGELOG.md", "docs/images/run-report.png"} <= linked


def test_the_reference_is_generated_from_the_docstrings() -> None:
    done = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_every_parameter_of_the_public_classes_has_a_param_line() -> None:
    sys.path.insert(0, str(GENERATOR.parent))
    try:
        import generate_reference
    finally:
        sys.path.remove(str(GENERATOR.parent))
    missing = []
    for _, path in generate_reference.CLASSES:
        cls = generate_reference.load(path)
        _, _, documented = generate_reference.split_docstring(cls)
        missing += [
            f"{cls.__name__}.{name}" for name, _, _ in generate_reference.parameters(cls) if name not in documented
        ]
    assert not missing, f"no :param line for {missing}"


def _airflow_rows(text: str, heading: str) -> set[str]:
    """The Airflow minors in the first column of the first table under ``heading``."""
    lines = text[text.index(heading) :].splitlines()[1:]
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("|")) :]
    rows = table[2 : next((i for i, line in enumerate(table) if not line.startswith("|")), len(table))]
    return {found.group(1) for row in rows if (found := re.match(r"\|\s*\**(\d+\.\d+)", row))}


def test_both_version_tables_name_exactly_the_airflow_minors_the_install_tests_run() -> None:
    from tests.test_install_into_airflow import STOCK
    from tests.test_install_on_older_airflows import OLDER

    tested = {".".join(stock.airflow.split(".")[:2]) for stock in (STOCK, *OLDER)}
    readme = _airflow_rows((REPO / "README.md").read_text(), "## Where it runs")
    installing = _airflow_rows((REPO / "docs" / "installing.md").read_text(), "## Airflow and Python versions")
    assert readme == tested
    assert installing - {"3.0"} == tested  # 3.0: the row that says it is not supported
