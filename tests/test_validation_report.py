"""The validation report: one typed value, written as JSON and read back the same."""

from __future__ import annotations

import json

from azureml_parallel_r.validation_report import ValidationCounts, ValidationReport

REPORT = ValidationReport(
    run_id="run-1",
    status="Finished",
    passed=False,
    problems=["1 input file(s) have no results, more than the 0 allowed: b.png"],
    notes=[],
    counts=ValidationCounts(input_files=2, succeeded=1, failed=1, rows=1, output_files=1),
    allowed_failures=0,
    failures=[{"relative_path": "b.png", "kind": "r_error", "error": "boom"}],
    durations={"files": 1},
    throughput={"wall_seconds": 1.0, "files_per_second": 1.0},
    all_failures=[{"relative_path": "b.png", "kind": "r_error", "error": "boom"}],
    output_path="r-script-outputs/2026-11-24/run-1",
)


def test_the_json_round_trips_without_the_complete_failure_list() -> None:
    data = json.loads(json.dumps(REPORT.to_dict()))
    assert "all_failures" not in data and "repair" not in data  # unset optional fields are left out
    assert ValidationReport.from_dict(data) == REPORT.with_changes(all_failures=[])


def test_a_report_of_an_earlier_version_reads_with_what_it_has() -> None:
    report = ValidationReport.from_dict({"passed": True, "counts": {"failed": 0, "unknown": 1}, "extra": 1})
    assert report.passed and report.counts == ValidationCounts() and report.failures == []


def test_the_summary_names_the_outcome_and_the_failed_files() -> None:
    text = REPORT.summary()
    assert text.startswith("Validation of pipeline run run-1 (Finished): FAILED - 1/2 files have results")
    assert "failed: b.png (r_error): boom" in text
