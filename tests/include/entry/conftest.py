"""The entry script's tests: ``entry`` runs init() as the runtime does, shutdown() afterwards."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.include.entry.entry_script import RUNTIME_ARGS, batch_wrapper


@pytest.fixture
def entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Return a function that runs init() with the given arguments; shutdown() runs afterwards."""
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(tmp_path / "output"))

    def start(*args: str) -> Path:
        if "--input-root" not in args and "--input-name" not in args:
            args = ("--input-root", str(tmp_path / "inputs"), *args)
        monkeypatch.setattr(sys, "argv", ["batch_wrapper.py", *RUNTIME_ARGS, *args])
        batch_wrapper.init()
        return tmp_path / "output"

    yield start
    batch_wrapper.shutdown()
