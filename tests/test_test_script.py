"""scripts/test.sh installs what the selected tests need: PostgreSQL and Chromium only for the system test."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900 + 120)]  # test.sh: 900 s at most


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


def test_the_fast_tier_runs_as_the_readme_says() -> None:
    """The README's ``scripts/test.sh --fast``, as written: lint, types and the unit tier, nothing marked slow."""
    assert "scripts/test.sh --fast" in (REPO / "README.md").read_text(encoding="utf-8")
    done = subprocess.run(
        ["scripts/test.sh", "--fast", "-p", "no:cacheprovider", "--collect-only", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    selected = [line for line in done.stdout.splitlines() if "::" in line]
    slow = ("tests/system/test_airflow_stack.py", "tests/test_packaging.py", "tests/test_install_into_airflow.py")
    assert selected and not any(line.startswith(slow) for line in selected)
