"""What an Azure ML run records about itself, and its state as both Azure engines report it."""

from __future__ import annotations

from datetime import UTC, datetime

from azureml_parallel_r.backends.azure.runs import azure_state, job_log_name, recorded_dataset, run_tags
from azureml_parallel_r.models import DatasetRef, RunRequest


def test_a_status_is_mapped_and_the_services_own_word_kept() -> None:
    running = azure_state("job-1", "Preparing", "v2")
    assert (running.status, running.message, running.started_at) == (
        "NotStarted",
        "NotStarted (Azure ML: Preparing)",
        None,
    )
    done = azure_state(
        "job-1", "Completed", "v2", started="2026-11-24T10:00:00.5Z", ended=datetime(2026, 11, 24, 10, 1, tzinfo=UTC)
    )
    assert done.status == "Finished" and done.ended_at - done.started_at == 59.5
    assert azure_state("run-1", "Finished", "v1").message == "Finished"


def test_a_run_is_tagged_with_its_key_its_dataset_and_where_its_outputs_are() -> None:
    request = RunRequest(
        dataset=DatasetRef("in", 3, "r-script-inputs/d", 9),
        output_path="out/{run-id}",
        run_key={"dag_id": "d", "dag_run_id": "r", "task_id": "t"},
        tags={"team": "a"},
    )
    tags = run_tags(request, "out/x", "rows.txt")
    assert tags == {
        "team": "a",
        "airflow_dag_id": "d",
        "airflow_dag_run_id": "r",
        "airflow_task_id": "t",
        "dataset_name": "in",
        "dataset_version": "3",
        "output_path": "out/x",
        "rows_file": "rows.txt",
    }
    assert recorded_dataset(tags) == {"name": "in", "version": 3}
    assert recorded_dataset({}) is None and recorded_dataset({"dataset_name": "in", "dataset_version": "x"}) is None


def test_which_files_of_a_job_are_its_logs() -> None:
    assert job_log_name("logs/job_result.txt") == "job_result.txt"
    assert job_log_name("logs/user/stderr/node000/process000.stderr.txt") == (
        "logs/user/stderr/node000/process000.stderr.txt"
    )
    assert job_log_name("logs/sys/mini_batches.jsonl") is None
