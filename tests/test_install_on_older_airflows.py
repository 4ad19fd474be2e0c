"""docs/installing.md's blocks as written, into Airflow 3.1 and 3.2 (the newest patch of each, on Python 3.11) with
``[sdk-v2]``: the install keeps Airflow and ``pip check`` clean, and the DAG runs green through the fallbacks of
``airflow_versions.py`` (tests/install_docs.py). 3.1.8 is a plain ``pip install``; 3.2.2 is installed as its
constraints file pins it (today's FastAPI breaks it, whatever is installed beside it: docs/installing.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.install_docs import CASE_TIMEOUT, Stock, changed_packages, checkout_copy, run_the_install_docs

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(CASE_TIMEOUT)]
OLDER = [Stock("3.1.8"), Stock("3.2.2", exclude_newer="2026-05-30T00:00:00Z")]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkout_copy(tmp_path_factory.mktemp("checkout"))


@pytest.mark.parametrize("stock", OLDER, ids=lambda stock: stock.airflow)
def test_the_install_docs_into_an_older_airflow(stock: Stock, checkout: Path, tmp_path: Path) -> None:
    before, after = run_the_install_docs(
        python=sys.executable, stock=stock, extras="sdk-v2", checkout=checkout, tmp_path=tmp_path
    )
    moved = {name for name, _, _ in changed_packages(before, after)}
    assert not moved & {"apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk"}, moved


def test_the_oldest_airflow_tested_is_the_one_the_package_requires() -> None:
    """The dependency's lower bound is the oldest minor installed here: no claim without its test."""
    import tomllib

    from packaging.requirements import Requirement

    from tests.conftest import REPO

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (airflow,) = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "apache-airflow"]
    oldest = min(OLDER, key=lambda stock: tuple(int(p) for p in stock.airflow.split(".")))
    floor = ".".join(oldest.airflow.split(".")[:2]) + ".0"
    assert f">={floor}" in str(airflow.specifier), (airflow, floor)
