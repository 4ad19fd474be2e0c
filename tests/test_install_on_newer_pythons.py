"""docs/installing.md's blocks as written, into a stock Airflow 3.3.2 on Python 3.12 and 3.13 (pyenv's interpreters,
each with the pip its venv brings): with ``[sdk-v1,sdk-v2]`` SDK v1 installs nothing there, and pip changes exactly
what the page lists for ``[sdk-v2]`` (tests/install_docs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.install_docs import (
    CASE_TIMEOUT,
    Stock,
    assert_documented,
    changed_packages,
    checkout_copy,
    interpreter,
    run_the_install_docs,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(CASE_TIMEOUT)]
NEWER_PYTHONS = ["3.12", "3.13"]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkout_copy(tmp_path_factory.mktemp("checkout"))


@pytest.mark.parametrize("python", NEWER_PYTHONS)
def test_the_install_docs_on_a_newer_python(python: str, checkout: Path, tmp_path: Path) -> None:
    before, after = run_the_install_docs(
        python=interpreter(python), stock=Stock("3.3.2"), extras="sdk-v1,sdk-v2", checkout=checkout, tmp_path=tmp_path
    )
    assert_documented(changed_packages(before, after), "sdk-v2")
