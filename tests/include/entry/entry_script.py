"""What the entry script's tests share: the arguments the real ParallelRunStep driver passes, and rows by input."""

from __future__ import annotations

import json

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
