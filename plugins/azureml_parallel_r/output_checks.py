"""Output validation: every input file has results or is an allowed failure, and the rows agree.

Pure functions over :class:`~azureml_parallel_r.models.RunResults`, so they work for both engines.
"""

from __future__ import annotations

import fnmatch
import json
import re
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from azureml_parallel_r import status as run_status
from azureml_parallel_r.inputs import printable
from azureml_parallel_r.models import DatasetRef, RunResults

LISTED = 20


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _matcher(patterns: Sequence[str]) -> Callable[[str], bool]:
    """One compiled test for "matches any of the glob patterns" (``fnmatch`` semantics), linear in the paths."""
    if not patterns:
        return lambda _path: False
    return re.compile("|".join(f"(?:{fnmatch.translate(pattern)})" for pattern in patterns)).match


def _listed(items: Sequence[str]) -> str:
    """The first ``LISTED`` items, each on one line's worth of text (a crafted name cannot start a line of its own)."""
    return ", ".join(printable(item) for item in items[:LISTED]) + (" ..." if len(items) > LISTED else "")


def _parse_rows(lines: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    rows, bad = [], []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict) and isinstance(row.get("relative_path"), str):
            rows.append(row)
        else:
            bad.append(line[:200])  # shown through printable() by _listed
    return rows, bad


def _dataset_mismatch(dataset: DatasetRef, results: RunResults) -> str | None:
    """Why the run's results are not for ``dataset``, or None when the run recorded that very version."""
    recorded = results.dataset
    run_id = results.state.run_id
    if not recorded:
        return (f"pipeline run {run_id} records no input dataset, so its results cannot be shown to be for "
                f"{dataset.name} v{dataset.version}: submit the run again (clear submit_pipeline)")  # fmt: skip
    if (recorded.get("name"), recorded.get("version")) != (dataset.name, dataset.version):
        return (
            f"pipeline run {run_id} processed dataset {recorded.get('name')} v{recorded.get('version')}, not "
            f"{dataset.name} v{dataset.version} that this validation was given: its results are for other inputs; "
            "clear submit_pipeline to process this version"
        )
    return None


def validate_outputs(
    dataset_files: Sequence[str],
    results: RunResults,
    *,
    allowed_failures: int = 0,
    allowed_failure_patterns: Sequence[str] = (),
    dataset: DatasetRef | None = None,
) -> dict[str, Any]:
    """Check a run's outputs against its input files and return the report (``report["passed"]``).

    :param dataset_files: the dataset's files, relative to its root.
    :param results: what the run left behind.
    :param allowed_failures: how many files may fail (-1: any number).
    :param allowed_failure_patterns: glob patterns of files that may always fail (they do not count).
    :param dataset: the dataset version ``dataset_files`` belong to: the run must have been submitted over it (a run
        recorded over another version, or over none, processed other inputs, whatever its rows say).
    """
    state = results.state
    expected = set(dataset_files)
    rows, bad_rows = _parse_rows(results.rows)
    seen = Counter(row["relative_path"] for row in rows)
    # rows for files outside the dataset version: files added to the folder after it was registered, which an Azure
    # ML mount shows the job (it lists the folder when the job starts); reported, never counted
    late = sorted(set(seen) - expected)
    rows = [row for row in rows if row["relative_path"] in expected]
    duplicates = sorted(path for path, count in seen.items() if count > 1 and path in expected)
    present = set(results.output_files)
    missing_outputs = sorted(
        f"{printable(row['relative_path'])}: {printable(str(output))}"
        for row in rows
        for output in row.get("outputs") or []
        if output not in present
    )
    succeeded = set(seen) & expected
    failed = sorted(expected - succeeded)
    excusable = _matcher(allowed_failure_patterns)
    excused = {path for path in failed if excusable(path)}
    counted = [path for path in failed if path not in excused]
    unaccounted = [path for path in failed if path not in results.failures]

    problems = []
    mismatch = _dataset_mismatch(dataset, results) if dataset is not None else None
    if mismatch:
        problems.append(mismatch)
    if state.status != run_status.FINISHED:
        problems.append(f"the pipeline run is {state.status}, not Finished: {state.message}")
    if allowed_failures != -1 and len(counted) > allowed_failures:
        problems.append(
            f"{len(counted)} input file(s) have no results, more than the {allowed_failures} allowed: "
            + _listed(counted)
        )
    for label, items in (
        ("result rows that are not JSON objects with a relative_path", bad_rows),
        ("input files with more than one result row", duplicates),
        ("outputs listed in result rows but missing under results/", missing_outputs),
    ):
        if items:
            problems.append(f"{len(items)} {label}: " + _listed(items))
    version = f" {dataset.name} v{dataset.version}" if dataset is not None else ""
    notes = [
        f"{len(late)} result row(s) are for files that are not in the dataset{version} (added to the folder after "
        f"it was registered, and listed by the job's mount): not counted, not validated: " + _listed(late)
    ] if late else []  # fmt: skip

    seconds = [float(row["seconds"]) for row in rows if isinstance(row.get("seconds"), int | float)]
    wall = (state.ended_at - state.started_at) if state.started_at and state.ended_at else None
    return {
        "run_id": state.run_id,
        "status": state.status,
        "passed": not problems,
        "problems": problems,
        "notes": notes,
        "counts": {
            "input_files": len(expected),
            "succeeded": len(succeeded),
            "failed": len(failed),
            "failed_allowed_by_pattern": len(excused),
            "failed_without_failure_record": len(unaccounted),
            "rows": len(results.rows),
            "rows_not_in_dataset": len(late),
            "output_files": len(present),
        },
        "allowed_failures": allowed_failures,
        "failures": [
            {
                "relative_path": path,
                "kind": results.failures.get(path, {}).get("kind", "unprocessed"),
                "error": results.failures.get(path, {}).get("error", "no result and no failure record"),
                "attempt": results.failures.get(path, {}).get("attempt"),
                "allowed_by_pattern": path in excused,
            }
            for path in failed[:200]
        ],
        "durations": {
            "files": len(seconds),
            "total_seconds": round(sum(seconds), 3),
            "mean_seconds": round(statistics.fmean(seconds), 4) if seconds else None,
            "p50_seconds": round(_percentile(seconds, 0.5), 4) if seconds else None,
            "p95_seconds": round(_percentile(seconds, 0.95), 4) if seconds else None,
            "max_seconds": round(max(seconds), 4) if seconds else None,
        },
        "throughput": {
            "wall_seconds": round(wall, 3) if wall else None,
            "files_per_second": round(len(succeeded) / wall, 2) if wall else None,
        },
    }


def format_report(report: dict[str, Any]) -> str:
    """A readable summary of a validation report for the task log and the failure message."""
    counts = report["counts"]
    head = (
        f"Validation of pipeline run {report['run_id']} ({report['status']}): "
        f"{'PASSED' if report['passed'] else 'FAILED'} - {counts['succeeded']}/{counts['input_files']} files "
        f"have results, {counts['failed']} failed (allowed: "
        f"{'any' if report['allowed_failures'] == -1 else report['allowed_failures']})"
    )
    lines = [head, *(f"- {problem}" for problem in report["problems"])]
    lines += [f"- note: {note}" for note in report.get("notes", [])]
    for failure in report["failures"][:LISTED]:
        lines.append(f"  failed: {printable(failure['relative_path'])} ({failure['kind']}): "
                     f"{printable(str(failure['error']))}")  # fmt: skip
    return "\n".join(lines)
