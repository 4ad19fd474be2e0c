"""What the entry script's tests share: the entry script itself, imported from its file the way the runtime imports it
(``include/entry`` is not a package), the arguments the real ParallelRunStep driver passes, and rows by input."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ENTRY_SCRIPT = Path(__file__).resolve().parents[3] / "include" / "entry" / "batch_wrapper.py"


def _load_entry_script() -> ModuleType:
    if "batch_wrapper" not in sys.modules:
        spec = importlib.util.spec_from_file_location("batch_wrapper", ENTRY_SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["batch_wrapper"] = module
        spec.loader.exec_module(module)
    return sys.modules["batch_wrapper"]


batch_wrapper = _load_entry_script()

RUNTIME_ARGS = [
    "--client_sdk_version",
    "1.62.0",
    "--scoring_module_name",
    "entry/batch_wrapper.py",
    "--mini_batch_size",
    "10",
    "--output",
    "/somewhere",
    "--error_threshold",
    "-1",
]


def rows_by_path(rows: list[str]) -> dict[str, dict]:
    parsed = [json.loads(row) for row in rows]
    return {row["relative_path"]: row for row in parsed}
