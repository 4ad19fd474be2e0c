"""scripts/test.sh installs what the selected tests need: PostgreSQL and Chromium only for the system test."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600 + 120)]  # test.sh --plan: 600 s


@pytest.mark.parametrize(
    ("selection", "needs"),
    [
        (["-m", "not system"], "base --compose"),
        (["tests/engine"], "base"),
        (["tests/system"], "base --system"),
        (["tests/system/azure_ml"], "base"),
        ([], "base --system --compose"),
    ],
)
def test_the_test_script_asks_setup_only_for_what_the_selection_needs(selection: list[str], needs: str) -> None:
    done = subprocess.run(
        ["scripts/test.sh", "--plan", *selection], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"[test] the selected tests need: {needs}\n" in done.stderr
