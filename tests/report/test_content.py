"""What the run report shows, from a DAG run's records (no Airflow database: the records are given)."""

from __future__ import annotations

from unittest import mock

import pytest

from azureml_parallel_r.report.content import summary
from azureml_parallel_r.report.sources import DagRunRecords

RECORD = {"run_id": "pipe-1", "conn_id": "c", "output_path": "r-script-outputs/2026-11-24/pipe-1"}
VALIDATION = {"passed": True, "counts": {"failed": 2}, "output_path": RECORD["output_path"]}


@pytest.mark.parametrize(
    ("state", "disabled"), [("running", True), ("queued", True), ("success", False), ("failed", False)]
)
def test_the_rerun_button_is_disabled_while_the_dag_run_goes_on(state: str, disabled: bool) -> None:
    """A repair of a run that has not ended is refused by the repair task; the button says so instead of offering it."""
    found = DagRunRecords(
        "d", "scheduled__2026-11-24", state, {"input_path": None}, record=RECORD, validation=VALIDATION
    )
    page = summary(found, backend_for=lambda _conn_id: mock.Mock())
    assert page["rerun"]["conf"] == {"input_path": None, "rerun_failed_of": "scheduled__2026-11-24"}
    assert ("disabled" in page["rerun"]) is disabled
    if disabled:
        assert page["rerun"]["disabled"] == f"the DAG run is {state}: rerun its failed files once it has ended"


def test_the_rerun_button_of_a_table_run_says_it_is_not_offered() -> None:
    """register_dataset refuses to rerun a table's failed partitions alone: the button says so instead of offering
    a run that would fail."""
    record = {**RECORD, "dataset": {"name": "oj", "version": 1, "kind": "table", "partition_keys": ["Store"]}}
    found = DagRunRecords("d", "scheduled__2026-11-24", "success", {}, record=record, validation=VALIDATION)
    page = summary(found, backend_for=lambda _conn_id: mock.Mock())
    assert page["rerun"]["disabled"] == "a table's failed partitions are not rerun alone yet: trigger its date again"


def test_a_dag_without_a_task_of_the_package_says_so_in_one_sentence() -> None:
    page = summary(DagRunRecords("other", "manual__1", "success", {}, uses_package=False), backend_for=mock.Mock())
    assert page["not_ours"].startswith("This DAG has no task of azureml-parallel-r") and not page["submitted"]


def test_a_run_that_never_submitted_shows_its_failing_tasks_error() -> None:
    found = DagRunRecords(
        "d",
        "manual__repair",
        "failed",
        {},
        task_states={"register_dataset": "failed", "submit_pipeline": "upstream_failed"},
        task_errors={"register_dataset": "RepairError: the DAG run it repairs is running"},
    )
    page = summary(found, backend_for=mock.Mock())
    assert not page["submitted"] and "not_ours" not in page
    assert page["task_errors"] == {"register_dataset": "RepairError: the DAG run it repairs is running"}
    assert page["task_states"]["submit_pipeline"] == "upstream_failed"


def test_progress_is_per_file_against_the_datasets_count_while_the_run_goes_on() -> None:
    from azureml_parallel_r.models import RunState

    record = {**RECORD, "engine": "local", "dataset": {"file_count": 1000}, "node_count": 1}
    state = RunState("pipe-1", "Running", counts={"succeeded_files": 10, "failed_files": 2}, started_at=0.0)
    engine = mock.Mock(**{"get_status.return_value": state, "count_output_files.return_value": 88})
    engine.storage_location.return_value = mock.Mock(container="", scheme="file", authority="vm", path="/d/out")
    page = summary(DagRunRecords("d", "r", "running", {}, record=record), backend_for=lambda _c: engine)
    progress = page["progress"]
    assert (progress["total_files"], progress["succeeded_files"], progress["failed_files"]) == (1000, 10, 2)
    assert progress["failure_records"] == 88  # failure records appear file by file, before mini-batches finish
    engine.count_output_files.assert_called_once_with(RECORD["output_path"], "failures")
    assert page["cost"]["kind"] == "cpu" and not page["cost"]["final"] and page["problems"] == []
