"""docs/installing.md's blocks as written, into a stock Airflow 3.3.2 on Python 3.11 with each extra: ``pip check``
clean, the packages pip changed exactly the page's list for that extra, and the example DAG green through ``airflow
dags test`` (tests/install_docs.py). Newer Pythons and older Airflows: the modules beside this one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.install_docs import (
    CASE_TIMEOUT,
    Stock,
    assert_documented,
    changed_packages,
    checkout_copy,
    docs_block,
    run_the_install_docs,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(CASE_TIMEOUT)]
STOCK = Stock("3.3.2")  # the Airflow a team already runs: what pip gives today, not our lock


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkout_copy(tmp_path_factory.mktemp("checkout"))


def test_the_docs_blocks_are_there_and_name_the_wheel_of_this_version() -> None:
    from azureml_parallel_r import __version__

    install = docs_block("install")
    assert f"dist/azureml_parallel_r-{__version__}-py3-none-any.whl[sdk-v2]" in install
    assert "pip wheel --no-deps --wheel-dir dist ." in install and "pip check" in install
    assert "uv " not in install, "a stock venv has no uv"
    first_run = docs_block("first-run")
    assert first_run.startswith("airflow db migrate"), "a new AIRFLOW_HOME has no metadata database before it"
    assert "airflow connections add azureml_parallel_r_default" in first_run


@pytest.mark.parametrize("extras", ["sdk-v2", "sdk-v1", "sdk-v1,sdk-v2"])
def test_the_install_docs_into_a_stock_airflow(extras: str, checkout: Path, tmp_path: Path) -> None:
    before, after = run_the_install_docs(
        python=sys.executable, stock=STOCK, extras=extras, checkout=checkout, tmp_path=tmp_path
    )
    assert_documented(changed_packages(before, after), extras)
    # Airflow and OpenTelemetry keep their minor versions
    assert after["opentelemetry-api"].split(".")[:2] == before["opentelemetry-api"].split(".")[:2]
