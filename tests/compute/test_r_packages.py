"""The R packages a script declares, read the ways R users write them (azureml_parallel_r.compute.r_packages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azureml_parallel_r.compute.r_packages import DeclarationError, RPackage, declared_packages, parse_requirement


def test_renv_lock_description_and_a_plain_list_together(tmp_path: Path) -> None:
    script = tmp_path / "s.r"
    script.write_text("process_file <- function(input_path, output_dir, args) NULL\n")
    lock = {
        "R": {"Version": "4.2.2"},
        "Packages": {
            "data.table": {"Package": "data.table", "Version": "1.15.0", "Source": "Repository"},
            "jsonlite": {"Package": "jsonlite", "Version": "1.8.4"},
        },
    }
    (tmp_path / "renv.lock").write_text(json.dumps(lock))
    (tmp_path / "DESCRIPTION").write_text(
        "Package: mine\nDepends: R (>= 4.1),\n  methods\nImports: terra (>= 1.7-3), data.table,\n"
        "    sf (== 1.0-14)\nSuggests: testthat\n"
    )
    packages = declared_packages(str(script), ["png>=0.1", "magick"])
    assert packages == [
        RPackage("data.table", "1.15.0", None, "renv.lock"),
        RPackage("jsonlite", "1.8.4", None, "renv.lock"),
        RPackage("methods", None, None, "DESCRIPTION"),
        RPackage("terra", None, "1.7-3", "DESCRIPTION"),
        RPackage("sf", "1.0-14", None, "DESCRIPTION"),
        RPackage("png", None, "0.1", "r_packages"),
        RPackage("magick", None, None, "r_packages"),
    ]
    assert [p.requirement() for p in packages[:4]] == [
        "data.table==1.15.0",
        "jsonlite==1.8.4",
        "methods",
        "terra>=1.7-3",
    ]


def test_nothing_declared_is_an_empty_list(tmp_path: Path) -> None:
    assert declared_packages(str(tmp_path / "s.r")) == []


@pytest.mark.parametrize(
    ("files", "listed", "says"),
    [
        ({"renv.lock": "{not json"}, [], "renv.lock: not a readable renv lockfile"),
        ({"renv.lock": '{"R": {}}'}, [], "has none"),
        ({"DESCRIPTION": "Imports: terra (> 1.7)\n"}, [], "Imports entry 'terra (> 1.7)' is not"),
        ({}, ["terra >= "], "r_packages: 'terra >= ' is not an R package requirement"),
        ({}, ["rm -rf /"], "is not an R package requirement"),
    ],
)
def test_a_declaration_that_cannot_be_read_says_which_and_why(
    tmp_path: Path, files: dict, listed: list, says: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(DeclarationError, match=says.replace("(", r"\(").replace(")", r"\)")):
        declared_packages(str(tmp_path / "s.r"), listed)


def test_a_requirement_keeps_its_exact_version_or_minimum() -> None:
    assert parse_requirement("data.table==1.15.0") == RPackage("data.table", "1.15.0", None, "r_packages")
    assert parse_requirement(" terra >= 1.7-3 ", "conn") == RPackage("terra", None, "1.7-3", "conn")
