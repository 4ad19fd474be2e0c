"""Output validation over RunResults: counts, allowed failures, row checks, durations."""

from __future__ import annotations

import json

from azureml_parallel_r.models import DatasetRef, RunResults, RunState
from azureml_parallel_r.output_checks import validate_outputs

FILES = ["a.png", "b.png", "sub/c.png"]


def _row(path: str, seconds: float = 0.5, outputs: list[str] | None = None) -> str:
    outputs = [f"results/{path}/stats.json"] if outputs is None else outputs
    return json.dumps({"relative_path": path, "outputs": outputs, "seconds": seconds, "value": 1})


def _results(rows: list[str], *, status: str = "Finished", failures=None, outputs=None) -> RunResults:
    state = RunState("run-1", status, "why", started_at=100.0, ended_at=110.0)
    present = [f"results/{p}/stats.json" for p in FILES] if outputs is None else outputs
    return RunResults(state, rows, failures or {}, present)


def test_every_file_with_results_passes_with_statistics() -> None:
    report = validate_outputs(FILES, _results([_row(p, s) for p, s in zip(FILES, [1, 2, 3], strict=True)]))
    assert report.passed and report.problems == []
    assert report.counts.succeeded == 3 and report.counts.failed == 0
    assert report.durations["total_seconds"] == 6 and report.durations["p50_seconds"] == 2
    assert report.throughput == {"wall_seconds": 10.0, "files_per_second": 0.3}
    assert "PASSED - 3/3 files have results" in report.summary()


def test_failures_within_the_allowance_pass_and_are_listed() -> None:
    failures = {"b.png": {"kind": "r_error", "error": "not a PNG", "attempt": 3}}
    report = validate_outputs(
        FILES, _results([_row("a.png"), _row("sub/c.png")], failures=failures), allowed_failures=1
    )
    assert report.passed
    assert (
        report.failures
        == report.all_failures
        == [
            {
                "relative_path": "b.png",
                "kind": "r_error",
                "error": "not a PNG",
                "call": None,
                "warnings": [],
                "stderr_tail": "",
                "attempt": 3,
                "seconds": None,
                "log": None,
                "allowed_by_pattern": False,
            }
        ]
    )


def test_a_failure_keeps_its_call_warnings_and_the_end_of_its_stderr() -> None:
    record = {
        "kind": "r_error",
        "error": "boom",
        "call": "readPNG(path)",
        "warnings": ["w1"],
        "attempt": 1,
        "stderr_tail": "x" * 5000 + "last line",
    }
    (failure,) = validate_outputs(
        FILES, _results([_row("a.png"), _row("sub/c.png")], failures={"b.png": record}), allowed_failures=1
    ).failures
    assert (failure["call"], failure["warnings"]) == ("readPNG(path)", ["w1"])
    assert len(failure["stderr_tail"]) == 4000 and failure["stderr_tail"].endswith("last line")


def test_durations_are_kept_as_a_log_binned_histogram_and_the_slowest_files() -> None:
    from azureml_parallel_r.run_durations import duration_histogram

    histogram = duration_histogram([0.0, 0.012, 0.012, 0.5, 3.0])
    assert sum(histogram["counts"]) == 5 and len(histogram["edges_seconds"]) == len(histogram["counts"]) + 1
    edges = histogram["edges_seconds"]
    assert edges[0] <= 0.012 < edges[1] and edges[-2] <= 3.0 < edges[-1]
    assert histogram["counts"][0] == 3  # the zero counts in the first bin
    assert duration_histogram([]) == {"edges_seconds": [], "counts": []}
    rows = [_row(path) for path in FILES]
    report = validate_outputs(FILES, _results(rows))
    assert [s["relative_path"] for s in report.durations["slowest"]] == sorted(FILES, reverse=True)[:20]
    assert sum(report.durations["histogram"]["counts"]) == len(FILES)


def test_too_many_failures_fail_with_the_file_names() -> None:
    report = validate_outputs(FILES, _results([_row("a.png")]), allowed_failures=1)
    assert not report.passed
    assert "2 input file(s) have no results, more than the 1 allowed: b.png, sub/c.png" in report.problems[0]
    assert report.counts.failed_without_failure_record == 2
    assert report.failures[0]["kind"] == "unprocessed"


def test_minus_one_allows_any_number_and_patterns_excuse_files() -> None:
    assert validate_outputs(FILES, _results([]), allowed_failures=-1).passed
    report = validate_outputs(FILES, _results([_row("a.png")]), allowed_failure_patterns=["*b.png", "sub/*"])
    assert report.passed and report.counts.failed_allowed_by_pattern == 2


def test_row_problems_are_reported() -> None:
    rows = [_row("a.png"), _row("a.png"), _row("zzz.png"), "not json", _row("b.png", outputs=["results/b.png/x"])]
    report = validate_outputs(FILES, _results(rows), allowed_failures=-1)
    text = "\n".join(report.problems)
    assert not report.passed
    assert "1 result rows that are not JSON objects" in text
    assert "1 input files with more than one result row: a.png" in text
    assert "missing under results/: b.png: results/b.png/x" in text
    assert "zzz.png" not in text, "a row for a file outside the dataset is a note, not a problem"


def test_a_run_that_did_not_finish_fails_validation() -> None:
    report = validate_outputs(FILES, _results([_row(p) for p in FILES], status="Failed"))
    assert not report.passed and "the pipeline run is Failed, not Finished: why" in report.problems


def test_a_run_recorded_over_another_dataset_version_or_none_is_refused() -> None:
    """A reattached run, or a run of another deployment, over an earlier version of the inputs: its rows match the
    file names, but its results are for other files."""
    rows = [_row(p) for p in FILES]
    given = DatasetRef("r-script-inputs", 2, "r-script-inputs/2026-11-24", 3)
    results = _results(rows)
    results.dataset = {"name": "r-script-inputs", "version": 1}
    report = validate_outputs(FILES, results, dataset=given)
    assert not report.passed
    assert report.problems == [
        "pipeline run run-1 processed dataset r-script-inputs v1, not r-script-inputs v2 that this validation was "
        "given: its results are for other inputs; clear submit_pipeline to process this version"
    ]
    results.dataset = None
    assert "records no input dataset" in validate_outputs(FILES, results, dataset=given).problems[0]
    results.dataset = {"name": "r-script-inputs", "version": 2}
    assert validate_outputs(FILES, results, dataset=given).passed


def test_rows_for_files_added_after_registration_are_reported_and_not_counted() -> None:
    """An Azure ML mount lists the folder when the job starts, so a file added after the dataset version was
    registered may be processed: it is named in a note, never counted or validated, and does not fail the run."""
    rows = [_row(p) for p in FILES] + [_row("late.png", outputs=["results/late.png/missing.json"])]
    results = _results(rows)
    results.dataset = {"name": "inputs", "version": 3}
    report = validate_outputs(FILES, results, dataset=DatasetRef("inputs", 3, "in", 3))
    assert report.passed, report.problems
    assert report.counts.succeeded == 3 and report.counts.rows_not_in_dataset == 1
    (note,) = report.notes
    assert note.startswith("1 result row(s) are for files that are not in the dataset inputs v3") and "late.png" in note
    assert "- note: 1 result row(s)" in report.summary()


def test_a_name_or_error_with_line_breaks_stays_on_its_line_in_the_report() -> None:
    """A crafted file name cannot forge a line of the task log."""
    forged = "x.png\n[2026-12-01 10:00:00] INFO - Validation PASSED"
    files = [forged, "a.png"]
    failures = {forged: {"kind": "r_error", "error": "cannot read 'x.png\nINFO forged'", "attempt": 1}}
    report = validate_outputs(
        files, RunResults(RunState("run-1", "Finished"), [_row("a.png")], failures, []), allowed_failures=0
    )
    text = report.summary()
    assert all(not line.startswith(("[2026", "INFO")) for line in text.splitlines())
    assert "'x.png\\n[2026-12-01 10:00:00] INFO - Validation PASSED'" in text


def test_the_files_without_rows_are_those_validation_counts_as_failed() -> None:
    from azureml_parallel_r.output_checks import failed_files as files_without_rows

    rows = [_row("a.png"), "not json", _row("late.png"), _row("a.png")]
    assert files_without_rows(FILES, rows) == sorted(set(FILES) - {"a.png"})
    report = validate_outputs(FILES, _results(rows), allowed_failures=-1)
    assert files_without_rows(FILES, rows) == [failure["relative_path"] for failure in report.all_failures]


def test_files_under_results_that_belong_to_no_input_fail_validation_but_a_late_files_are_a_note() -> None:
    """An R script that writes into the output folder itself (its path is in AZUREML_BI_OUTPUT_PATH) leaves results
    for nothing registered; a file added after registration (processed by an Azure ML mount) only gets a note."""
    rows = [_row(p) for p in FILES] + [_row("late.png")]
    outputs = [f"results/{p}/stats.json" for p in [*FILES, "late.png"]]
    report = validate_outputs(FILES, _results(rows, outputs=outputs))
    assert report.passed, report.problems
    stray = validate_outputs(FILES, _results(rows, outputs=[*outputs, "results/stray-by-r.txt", "results/x/y.csv"]))
    assert not stray.passed
    assert (
        "2 files under results/ that belong to no input file of the dataset (written there by the R script itself"
        in stray.problems[0]
    )
    assert "results/stray-by-r.txt, results/x/y.csv" in stray.problems[0]
