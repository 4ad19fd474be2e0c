"""What a release needs besides the code (RELEASING.md): classifiers PyPI accepts that name the Pythons the install
tests run on, a dated CHANGELOG section for the package's version, and the Airflow range the tests cover."""

from __future__ import annotations

import re
import sys
import tomllib
from datetime import date

from trove_classifiers import classifiers as known_classifiers

from tests.conftest import REPO
from tests.test_install_on_newer_pythons import NEWER_PYTHONS

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# the install tests' Pythons: this one (tests/test_install_into_airflow.py) and the newer ones
TESTED_PYTHONS = {f"{sys.version_info.major}.{sys.version_info.minor}", *NEWER_PYTHONS}


def test_every_classifier_is_one_pypi_accepts() -> None:
    unknown = [c for c in PROJECT["classifiers"] if c not in known_classifiers]
    assert not unknown, unknown


def test_the_python_classifiers_and_requires_python_are_the_pythons_the_install_tests_run() -> None:
    named = {c.rsplit(" :: ", 1)[1] for c in PROJECT["classifiers"] if re.fullmatch(r".* :: Python :: 3\.\d+", c)}
    assert named == TESTED_PYTHONS
    assert PROJECT["requires-python"] == ">=3.11,<3.14"
    assert "Framework :: Apache Airflow" in PROJECT["classifiers"]
    assert "Framework :: Apache Airflow :: Provider" in PROJECT["classifiers"]


def test_the_packages_version_has_a_dated_changelog_section() -> None:
    from azureml_parallel_r import __version__

    found = re.search(rf"^## \[{re.escape(__version__)}\] - (\S+)$", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert found, f"CHANGELOG.md has no section for {__version__}"
    assert date.fromisoformat(found.group(1)) <= date.today(), f"{found.group(1)} is not a release date"


def test_releasing_says_how_to_build_and_check_both_distributions() -> None:
    steps = (REPO / "RELEASING.md").read_text()
    assert "uv build" in steps and "twine check --strict dist/*" in steps
