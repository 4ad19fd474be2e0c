"""ValidateParallelRunOutputsOperator: writes validation.json, returns it, fails readably, feeds the asset."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from airflow.sdk import Asset

from azureml_parallel_r.exceptions import OutputValidationError
from azureml_parallel_r.models import DatasetRef, RunRef, RunResults, RunState
from azureml_parallel_r.operators.validation import ValidateParallelRunOutputsOperator

RUN = RunRef("run-9", "u", "r-script-outputs/2026-11-24/run-9", "local").to_dict()
DATASET = DatasetRef("inputs", 1, "r-script-inputs/2026-11-24", 2).to_dict()
ASSET = Asset(name="outputs", uri="azureml-parallel-r://r-script-outputs")


def _results(paths: list[str]) -> RunResults:
    rows = [json.dumps({"relative_path": p, "outputs": [], "seconds": 1.0}) for p in paths]
    return RunResults(RunState("run-9", "Finished", started_at=1.0, ended_at=3.0), rows, dataset=DATASET_VERSION)


DATASET_VERSION = {"name": "inputs", "version": 1}  # what the run recorded when it was submitted


def test_passing_run_writes_the_report_and_updates_the_asset(backend: mock.Mock, context: dict) -> None:
    backend.list_dataset_files.return_value = ["a.png", "b.png"]
    backend.fetch_results.return_value = _results(["a.png", "b.png"])
    backend.write_output_file.return_value = "/store/r-script-outputs/2026-11-24/run-9/validation.json"
    op = ValidateParallelRunOutputsOperator(task_id="v", run=RUN, dataset=DATASET, outlets=[ASSET])
    report = op.execute(context)
    assert report["passed"] and report["counts"]["succeeded"] == 2
    run_id, name, content = backend.write_output_file.call_args.args
    assert (run_id, name) == ("run-9", "validation.json")
    assert json.loads(content)["output_path"] == "r-script-outputs/2026-11-24/run-9"
    event = context["outlet_events"][ASSET]
    assert event.extra == {
        "output_path": RUN["output_path"],
        "run_id": "run-9",
        "date": "2026-11-24",
        "output_paths": [RUN["output_path"]],
    }
    assert event.partition_keys == {"2026-11-24"}  # the run's date is the asset event's partition


def test_missing_results_fail_with_a_readable_report_after_writing_it(backend: mock.Mock, context: dict) -> None:
    backend.list_dataset_files.return_value = ["a.png", "b.png"]
    backend.fetch_results.return_value = _results(["a.png"])
    op = ValidateParallelRunOutputsOperator(task_id="v", run=RUN, dataset=DATASET, allowed_failures="0")
    with pytest.raises(OutputValidationError, match=r"FAILED - 1/2 files have results(.|\n)*b.png"):
        op.execute(context)
    # the complete failure list first, then the report that names it
    (_, first, failures), (_, second, content) = [c.args for c in backend.write_output_file.call_args_list]
    assert (first, second) == ("validation-failures.jsonl", "validation.json")
    assert [json.loads(line)["relative_path"] for line in failures.decode().splitlines()] == ["b.png"]
    assert json.loads(content)["failures_file"] == "validation-failures.jsonl"
    # the failed validation's report is in XCom too, for the run report and a repair run
    (push,) = context["ti"].xcom_push.call_args_list
    assert push.kwargs["key"] == "return_value" and push.kwargs["value"]["passed"] is False
    assert "all_failures" not in push.kwargs["value"]


def test_the_complete_failure_list_is_kept_beyond_the_reports_first_200(backend: mock.Mock, context: dict) -> None:
    files = [f"f{i:04d}.png" for i in range(250)]
    backend.list_dataset_files.return_value = files
    backend.fetch_results.return_value = _results([])
    op = ValidateParallelRunOutputsOperator(
        task_id="v", run=RUN, dataset={**DATASET, "file_count": 250}, allowed_failures=-1
    )
    report = op.execute(context)
    assert len(report["failures"]) == 200 and report["counts"]["failed"] == 250
    failures = backend.write_output_file.call_args_list[0].args[2].decode().splitlines()
    assert [json.loads(line)["relative_path"] for line in failures] == files


def test_a_run_over_another_dataset_version_fails_validation_whatever_its_rows_say(
    backend: mock.Mock, context: dict
) -> None:
    backend.list_dataset_files.return_value = ["a.png", "b.png"]
    backend.fetch_results.return_value = _results(["a.png", "b.png"])
    newer = {**DATASET, "version": 2}
    op = ValidateParallelRunOutputsOperator(task_id="v", run=RUN, dataset=newer)
    with pytest.raises(OutputValidationError, match="processed dataset inputs v1, not inputs v2"):
        op.execute(context)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"allowed_failures": "some"}, "allowed_failures must be a whole"),
        ({"run": "x"}, "run and dataset must be the submit and register"),
    ],
)
def test_bad_arguments_fail_without_retries(backend: mock.Mock, context: dict, kwargs: dict, message: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    op = ValidateParallelRunOutputsOperator(task_id="v", **{"run": RUN, "dataset": DATASET, **kwargs})
    with pytest.raises(AirflowFailException, match=message):
        op.execute(context)
    backend.fetch_results.assert_not_called()


def test_a_repair_says_what_became_of_the_failed_files_and_its_event_names_both_folders(backend, context) -> None:
    rerun_of = {
        "dag_run_id": "scheduled__2026-11-09",
        "run_id": "pipe-1",
        "date": "2026-11-09",
        "failed_files": 2,
        "output_path": "r-script-outputs/2026-11-09/p1",
    }
    backend.list_dataset_files.return_value = ["a.png", "b.png"]
    backend.fetch_results.return_value = _results(["a.png"])
    op = ValidateParallelRunOutputsOperator(
        task_id="v", run=RUN, dataset={**DATASET, "rerun_of": rerun_of}, allowed_failures=1, outlets=[ASSET]
    )
    report = op.execute(context)
    assert report["repair"] == {
        "repaired_dag_run_id": "scheduled__2026-11-09",
        "repaired_output_path": "r-script-outputs/2026-11-09/p1",
        "original_failures": 2,
        "now_succeeded": 1,
        "still_failing": 1,
        "date": "2026-11-09",
        "chain": ["scheduled__2026-11-09"],
    }
    assert [f["relative_path"] for f in report["failures"]] == ["b.png"]  # which remain
    event = context["outlet_events"][ASSET]
    assert event.extra["output_paths"] == ["r-script-outputs/2026-11-09/p1", RUN["output_path"]]
    assert event.extra["date"] == "2026-11-09" and event.partition_keys == {"2026-11-09"}


def test_a_repair_of_a_repair_publishes_the_first_runs_date_and_every_folder_of_the_chain(backend, context) -> None:
    """A (2026-11-20) fails b and c; B repairs A (triggered 2026-11-25) and fixes b; C repairs B and fixes c. C's event
    is for A's date, and names A's, B's and its own folder, A's first: a downstream DAG finds every file's results."""
    from azureml_parallel_r.repairs import repair_of

    record_a = {"run_id": "pa", "output_path": "r-script-outputs/2026-11-20/pa", "date": "2026-11-20"}
    rerun_of_b = repair_of("scheduled__2026-11-20", record_a, 2)
    record_b = {
        "run_id": "pb",
        "output_path": "r-script-outputs/2026-11-25/pb",
        "date": "2026-11-25",
        "rerun_of": rerun_of_b,
    }
    rerun_of_c = repair_of("manual__b", record_b, 1)
    assert rerun_of_c["date"] == "2026-11-20"
    backend.list_dataset_files.return_value = ["c.png"]
    backend.fetch_results.return_value = _results(["c.png"])
    context["dag_run"].logical_date = None  # a manual run of another day: its own date is not the event's
    op = ValidateParallelRunOutputsOperator(
        task_id="v", run=RUN, outlets=[ASSET], dataset={**DATASET, "file_count": 1, "rerun_of": rerun_of_c}
    )
    report = op.execute(context)
    event = context["outlet_events"][ASSET]
    assert event.extra["output_paths"] == [record_a["output_path"], record_b["output_path"], RUN["output_path"]]
    assert event.extra["date"] == "2026-11-20" and event.partition_keys == {"2026-11-20"}
    assert report["repair"]["chain"] == ["scheduled__2026-11-20", "manual__b"]
    assert report["repair"]["repaired_dag_run_id"] == "manual__b" and report["repair"]["original_failures"] == 1


def test_without_the_registered_file_list_validation_fails_and_a_retry_fails_again(backend, context) -> None:
    """Never the folder's current files in their place: with the inputs archived, a retry would PASS with 0/0 files."""
    from azureml_parallel_r.exceptions import OutputValidationError
    from azureml_parallel_r.models import DatasetFilesMissingError

    backend.registered_files.side_effect = DatasetFilesMissingError(
        "the registered file list of dataset inputs v1 (somewhere) is gone"
    )
    backend.fetch_results.return_value = _results([])
    op = ValidateParallelRunOutputsOperator(task_id="v", run=RUN, dataset=DATASET, allowed_failures=-1)
    for _try in range(2):
        with pytest.raises(OutputValidationError, match=r"registered file list of dataset inputs v1 .* is gone"):
            op.execute(context)
    report = json.loads(backend.write_output_file.call_args_list[-1].args[2])
    assert not report["passed"] and report["counts"]["input_files"] == 0


def test_files_counted_unlike_the_registered_count_fail_validation(backend, context) -> None:
    backend.list_dataset_files.return_value = ["a.png"]
    backend.fetch_results.return_value = _results(["a.png"])
    op = ValidateParallelRunOutputsOperator(task_id="v", run=RUN, dataset=DATASET, allowed_failures=-1)
    with pytest.raises(Exception, match="holds 1 items, but the version was registered with 2"):
        op.execute(context)


def test_a_file_whose_input_changed_after_registration_is_a_failure_of_its_own_kind(backend, context) -> None:
    backend.list_dataset_files.return_value = ["a.png", "b.png"]
    backend.fetch_results.return_value = _results(["a.png", "b.png"])
    backend.changed_files.return_value = {"b.png": "its size changed from 3 to 9 bytes after it was registered"}
    op = ValidateParallelRunOutputsOperator(task_id="v", run=RUN, dataset=DATASET, allowed_failures=0)
    with pytest.raises(Exception, match=r"1 input file.s. have no results, more than the 0 allowed: b.png"):
        op.execute(context)
    report = json.loads(backend.write_output_file.call_args_list[-1].args[2])
    assert report["counts"]["succeeded"] == 1 and report["failures"][0]["kind"] == "input_changed"
    assert "size changed from 3 to 9" in report["failures"][0]["error"]
