"""docs/architecture.md's Layout names every module, so a new one cannot go unlisted."""

from __future__ import annotations

from tests.conftest import REPO

PACKAGE = REPO / "plugins" / "azureml_parallel_r"


def _layout() -> str:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    start = text.index("\n## Layout\n")
    opening = text.index("```\n", start)
    return text[opening : text.index("```\n", opening + 4)]


def test_every_module_and_shipped_file_is_named_in_the_layout() -> None:
    layout = _layout()
    modules = [p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" and "shim" not in p.parts]
    shipped = [*(REPO / "include").rglob("*.py"), *(REPO / "include").rglob("*.r"), *PACKAGE.rglob("*.R")]
    scripts = [p for p in (REPO / "scripts").iterdir() if p.suffix == ".sh"]
    missing = sorted(str(p.relative_to(REPO)) for p in (*modules, *shipped, *scripts) if p.name not in layout)
    assert not missing, f"docs/architecture.md's Layout does not name: {missing}"


def test_every_folder_of_the_package_has_a_line_of_its_own() -> None:
    layout = _layout()
    folders = [p for p in PACKAGE.iterdir() if p.is_dir() and p.name not in ("__pycache__",)]
    missing = sorted(p.name for p in folders if f"{p.name}/" not in layout and p.name != "shipped")
    assert not missing and "shipped" in layout, missing
