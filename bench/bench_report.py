"""What the run report costs for a large run: 100,000 files of which 10,000 failed.

    .venv/bin/python bench/bench_report.py [--files 100000] [--failures 10000] [--rounds 3]

Synthesises the run's results (result rows, and failure records with an R error, a call, a warning and a 600-byte
R output tail each, as a failing R script leaves them), then measures, each a median of ``--rounds``:

- validation as the DAG's task does it (``validate_outputs``), and the sizes of what it writes: ``validation.json``
  (the first 200 failures) and ``validation-failures.jsonl`` (every one);
- the report's first page of failed files served cold (the list read through the backend's storage, parsed, and
  a page of 50 encoded as the app answers it), served again (the parsed list kept), and filtered by a text;
- the downloads of every failed file, as CSV and as JSON Lines (the parsed list kept);
- the peak memory of each (tracemalloc: Python's allocations).

Nothing asserts; the figures go to docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from azureml_parallel_r.backends.results import FolderStore
from azureml_parallel_r.models import RunResults, RunState
from azureml_parallel_r.output_checks import FAILURES_NAME, failures_jsonl, validate_outputs
from azureml_parallel_r.report.failures import FailureLists, failure_page, failures_csv
from azureml_parallel_r.report.failures import failures_jsonl as failures_jsonl_download
from azureml_parallel_r.report.sources import DagRunRecords

TAIL = ("Error in readPNG(input_path) : file is not in PNG format\n" + "R says more about what it read here. " * 15)[
    :600
]


def synthetic_run(files: int, failures: int) -> tuple[list[str], RunResults]:
    names = [f"camera-{i % 17:02d}/day-{i % 31:02d}/img_{i:07d}.png" for i in range(files)]
    failed = set(names[:: max(1, files // failures)][:failures])
    rows = [
        json.dumps({"relative_path": n, "outputs": [f"results/{n}/stats.json"], "seconds": 0.001 + (i % 97) / 1000})
        for i, n in enumerate(names)
        if n not in failed
    ]
    records = {
        n: {
            "kind": "r_error",
            "error": f"cannot read PNG image '{n}': file is not in PNG format",
            "call": "readPNG(input_path)",
            "warnings": ["closing unused connection 3"],
            "stderr_tail": TAIL,
            "attempt": 3,
        }
        for n in failed
    }
    outputs = [f"results/{n}/stats.json" for n in names if n not in failed]
    state = RunState("run-1", "Finished", started_at=0.0, ended_at=600.0)
    return names, RunResults(state, rows, records, outputs, dataset={"name": "d", "version": 1})


class FolderBackend:
    """The local backend's read of an output file, over a folder."""

    def __init__(self, root: Path) -> None:
        self.store = FolderStore(str(root))

    def read_output_text(self, output_path: str, name: str) -> str | None:
        return self.store.read_text(f"{output_path}/{name}")


def measured(action: Any) -> tuple[float, float, Any]:
    """(seconds, peak MiB of Python allocations, result) of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--failures", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    names, results = synthetic_run(args.files, args.failures)
    figures: dict[str, list[tuple[float, float]]] = {}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        (root / "out").mkdir()
        backend = FolderBackend(root)
        for _ in range(args.rounds):
            seconds, peak, report = measured(lambda: validate_outputs(names, results, allowed_failures=-1))
            figures.setdefault("validate_outputs", []).append((seconds, peak))
            content = failures_jsonl(report.all_failures)
            (root / "out" / FAILURES_NAME).write_bytes(content)
            report = report.with_changes(failures_file=FAILURES_NAME)
            sizes = {
                "validation.json": len(json.dumps(report.to_dict(), indent=1).encode()),
                FAILURES_NAME: len(content),
            }
            found = DagRunRecords(
                "dag", "run", "success", {}, record={"conn_id": "c", "output_path": "out"}, validation=report.to_dict()
            )
            lists = FailureLists()

            def first_page(text: str = "", lists: FailureLists = lists, found: DagRunRecords = found) -> bytes:
                failures = lists.get(found, backend_for=lambda _conn: backend)
                return json.dumps(failure_page(failures, limit=50, text=text)).encode()

            def download(write: Any, lists: FailureLists = lists, found: DagRunRecords = found) -> bytes:
                failures = lists.get(found, backend_for=lambda _conn: backend)
                return "".join(write(failures)).encode()

            for name, action in (
                ("first page, cold", first_page),
                ("first page, again", first_page),
                ("page filtered by text", lambda: first_page("day-07/img_00")),
                ("download CSV", lambda: download(failures_csv)),
                ("download JSON Lines", lambda: download(failures_jsonl_download)),
            ):
                seconds, peak, page = measured(action)
                figures.setdefault(name, []).append((seconds, peak))
                sizes[f"{name} (bytes)"] = len(page)
    print(f"{args.files} files, {args.failures} failed; medians of {args.rounds} rounds; {platform.platform()}")
    print(f"{'step':28} {'seconds':>8} {'peak MiB':>9}")
    for name, values in figures.items():
        print(
            f"{name:28} {statistics.median(v[0] for v in values):8.3f} {statistics.median(v[1] for v in values):9.1f}"
        )
    for name, size in sizes.items():
        print(f"size of {name}: {size / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
