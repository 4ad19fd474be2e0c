"""What the tests of both Azure ML engines share: the date and folder they run on, sample inputs registered as a
dataset, a run request over them, and the late-file case."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from azureml_parallel_r.backends.base import ParallelRunBackend
from azureml_parallel_r.examples.samples import make_sample_inputs, write_png
from azureml_parallel_r.models import DatasetRef, RunRequest
from azureml_parallel_r.run_settings import ParallelRunSettings
from tests.waiting import wait_for_end

DATE = "2026-11-24"
INPUTS = f"r-script-inputs/{DATE}"
TAGS = {"logical_date": DATE, "path": INPUTS}
KEY = {  # a submission's run key, as the submit task makes it
    "dag_id": "r_parallel_batch",
    "dag_run_id": f"scheduled__{DATE}T00:00:00+00:00",
    "task_id": "submit_pipeline",
    "dataset": "r-script-inputs:1",
    "attempt": "1",
    "submission": "0a1b2c3d4e5f6a7b",
}


def register_samples(fake_azure: Any, backend: ParallelRunBackend, folder: Path) -> DatasetRef:
    """Nine sample inputs (one of them a corrupt PNG) uploaded under :data:`INPUTS` and registered."""
    make_sample_inputs(str(folder), images=4)
    fake_azure.upload_inputs(folder, INPUTS)
    return backend.register_file_dataset(INPUTS, name="r-script-inputs", tags=TAGS)


def sample_request(
    dataset: DatasetRef, run_key: dict[str, str], experiment_name: str = "", **settings: Any
) -> RunRequest:
    """A run of the example R script over ``dataset``: 4 files per mini-batch, 5 failures tolerated."""
    return RunRequest(
        dataset=dataset,
        output_path=f"r-script-outputs/{DATE}/{{run-id}}",
        run_key=run_key,
        r_args=["--thumbnail-size", "8"],
        settings=ParallelRunSettings(**{"mini_batch_size": 4, "error_threshold": 5, **settings}),
        experiment_name=experiment_name,
    )


def other_keys(key: dict[str, str]) -> list[dict[str, str]]:
    """Keys of other submissions that share every part of ``key`` but one: a second Airflow over the same workspace
    (or this one after its database was reset: another submission token), and another version of the inputs."""
    return [{**key, "submission": "another-airflow"}, {**key, "dataset": "r-script-inputs:99"}]


def check_a_late_file_is_noted_not_counted(
    fake_azure: Any, backend: ParallelRunBackend, dataset: DatasetRef, request: RunRequest, folder: Path
) -> None:
    """A PNG uploaded to the dataset's folder after it was registered: the job's mount lists the folder when the job
    starts, so it is processed; validation names it in a note and validates exactly the registered files."""
    from azureml_parallel_r.output_checks import validate_outputs

    write_png(str(folder / "late" / "late.png"))
    fake_azure.upload_inputs(folder / "late", INPUTS)
    ref = backend.submit(request)
    wait_for_end(backend, ref.run_id)
    results = backend.fetch_results(ref.run_id)
    assert any(json.loads(row)["relative_path"] == "late.png" for row in results.rows)
    report = validate_outputs(backend.list_dataset_files(dataset), results, allowed_failures=1, dataset=dataset)
    assert report.passed, report.problems
    assert report.counts.input_files == 9 and report.counts.rows_not_in_dataset == 1
    assert "late.png" in report.notes[0]


def check_changed_inputs_and_a_lost_file_list(
    fake_azure: Any, backend: ParallelRunBackend, dataset: DatasetRef, request: RunRequest, folder: Path
) -> None:
    """Two blobs written again after registration (one appended to, one rewritten at the same size: a new ETag): the
    job reads what is there when it runs, so validation counts both failed (``input_changed``) whatever their rows
    say; and once the version's file list is gone, nothing stands in for it."""
    import pytest

    from azureml_parallel_r.backends.azure.storage import dataset_files_blob
    from azureml_parallel_r.models import DatasetFilesMissingError
    from azureml_parallel_r.output_checks import validate_outputs

    changed = folder.parent / "changed"
    grown = changed / "camera-a" / "img_0000.png"
    write_png(str(grown))
    grown.write_bytes(grown.read_bytes() + b"appended after registration")
    same_size = changed / "camera-a" / "img_0001.png"
    same_size.parent.mkdir(parents=True, exist_ok=True)
    same_size.write_bytes((folder / "camera-a" / "img_0001.png").read_bytes())  # the same bytes: a new ETag only
    fake_azure.upload_inputs(changed, INPUTS)
    registered = backend.registered_files(dataset)
    found = backend.changed_files(dataset, registered)
    assert sorted(found) == ["camera-a/img_0000.png", "camera-a/img_0001.png"]
    assert "its size changed from" in found["camera-a/img_0000.png"]
    assert "modified after it was registered" in found["camera-a/img_0001.png"]
    ref = backend.submit(request)
    wait_for_end(backend, ref.run_id)
    results = backend.fetch_results(ref.run_id)
    report = validate_outputs(registered.files, results, allowed_failures=5, dataset=dataset, changed=found)
    kinds = {failure["relative_path"]: failure["kind"] for failure in report.all_failures}
    assert kinds["camera-a/img_0000.png"] == kinds["camera-a/img_0001.png"] == "input_changed"
    assert report.counts.succeeded == 6 and report.counts.failed == 3  # and the corrupt sample

    backend._output_store().container.delete_blob(dataset_files_blob(dataset.name, dataset.version))
    with pytest.raises(DatasetFilesMissingError, match=r"file list of dataset r-script-inputs v1 .* is gone"):
        backend.list_dataset_files(dataset)


def check_the_run_report_reads_the_run(backend: ParallelRunBackend, request: RunRequest, ref: Any) -> None:
    """The run report of a finished run over the samples, read through the engine as the report app reads it: the
    workspace, the run's link and output location, its status before validation, and the complete failure list
    that validation wrote to the datastore."""
    from azureml_parallel_r.output_checks import FAILURES_NAME, failures_jsonl, validate_outputs
    from azureml_parallel_r.report.content import summary
    from azureml_parallel_r.report.failures import FailureLists, failure_page
    from azureml_parallel_r.report.records import run_record
    from azureml_parallel_r.report.sources import DagRunRecords

    found = DagRunRecords(
        "r_parallel_batch",
        "manual__x",
        "running",
        {},
        record=run_record(request, ref, "azure_conn", DATE),
        submit_task_id="submit",
    )
    engine = lambda conn_id: backend if conn_id == "azure_conn" else None  # noqa: E731
    before = summary(found, backend_for=engine)
    assert before["problems"] == [] and before["progress"]["status"] == "Finished"
    assert before["run"]["workspace"].startswith("azureml://subscriptions/")
    assert before["run"]["output_location"].endswith(f"/{ref.output_path}")
    assert before["run"]["run_url"] and before["run"]["run_url"].startswith("https://")
    # what it cost: the cluster's VM size read from the workspace, priced from the package's table
    cost = before["cost"]
    assert cost["kind"] == "node_hours" and cost["vm_size"].casefold() == "standard_d4s_v3"
    assert cost["price_per_hour"] == 0.192 and cost["node_hours"] is not None and cost["total"] is not None
    report = validate_outputs(
        backend.list_dataset_files(request.dataset), backend.fetch_results(ref.run_id), allowed_failures=-1
    )
    backend.write_output_file(ref.run_id, FAILURES_NAME, failures_jsonl(report.all_failures))
    found.validation = report.with_changes(output_path=ref.output_path, failures_file=FAILURES_NAME).to_dict()
    page = failure_page(FailureLists().get(found, backend_for=engine))
    assert [(item["relative_path"], item["kind"]) for item in page["items"]] == [("camera-b/broken.png", "r_error")]
    # its R log, as the step's "Outputs + logs" in studio names it (the runtime's entry-script log folder)
    assert re.fullmatch(r"user/entry_script_log/[^/]+/r/process\d{3}\.txt", page["items"][0]["log"])
    assert (
        "stderr_tail" in page["items"][0] and summary(found, backend_for=engine)["validation"]["counts"]["failed"] == 1
    )


def check_a_repair_reruns_exactly_the_failed_files(
    fake_azure: Any, backend: ParallelRunBackend, folder: Path, run_key: dict[str, str]
) -> None:
    """A repair run's dataset on blob storage: the failed sample, fixed in its folder, is copied with its relative
    path to a staging folder registered as any input folder; a run over it files the result under the same path."""
    write_png(str(folder / "camera-b" / "broken.png"))
    fake_azure.upload_inputs(folder, INPUTS)
    tags = {**TAGS, "dag_run_id": "manual__repair", "rerun_failed_of": "scheduled__x"}
    subset = backend.register_file_subset(INPUTS, ["camera-b/broken.png"], name="r-script-inputs", tags=tags)
    assert subset.file_count == 1 and subset.path.startswith(f"r-script-reruns/{DATE}/")
    assert fake_azure.blob_names(subset.path + "/") == [f"{subset.path}/camera-b/broken.png"]
    assert fake_azure.read_blob(f"{subset.path}/camera-b/broken.png") == fake_azure.read_blob(
        f"{INPUTS}/camera-b/broken.png"
    )
    assert backend.list_dataset_files(subset) == ["camera-b/broken.png"]
    again = backend.register_file_subset(INPUTS, ["camera-b/broken.png"], name="r-script-inputs", tags=tags)
    assert (again.path, again.version, again.reused) == (subset.path, subset.version, True)  # a retried task
    ref = backend.submit(sample_request(subset, {**run_key, "dataset": f"r-script-inputs:{subset.version}"}))
    assert wait_for_end(backend, ref.run_id).status == "Finished"
    results = backend.fetch_results(ref.run_id)
    assert [json.loads(row)["relative_path"] for row in results.rows] == ["camera-b/broken.png"]
    assert "results/camera-b/broken.png/thumbnail.png" in results.output_files and results.failures == {}


def check_a_per_store_forecast_over_a_partitioned_table(
    fake_azure: Any, backend: ParallelRunBackend, folder: Path, run_key: dict[str, str], experiment_name: str = ""
) -> tuple[DatasetRef, Any]:
    """An OJ-sales-shaped table, partitioned as Microsoft's partition sample writes it, registered as a table with
    partition keys Store and Brand (its 9 partitions recorded from the folder names) and run with the per-store
    forecast: one R model per partition, the partition too short to fit failing alone, and validation accounting for
    every partition. Returns the dataset and the run's results."""
    from azureml_parallel_r.examples.samples import make_oj_sales_table
    from azureml_parallel_r.output_checks import validate_outputs

    make_oj_sales_table(str(folder), stores=3, weeks=30)
    fake_azure.upload_inputs(folder, INPUTS)
    dataset = backend.register_table_dataset(INPUTS, name="oj-sales", tags=TAGS, partition_keys=["Store", "Brand"])
    assert (dataset.kind, dataset.partition_keys, dataset.partitions) == ("table", ["Store", "Brand"], 9)
    again = backend.register_table_dataset(INPUTS, name="oj-sales", tags=TAGS, partition_keys=["Store", "Brand"])
    assert again.reused and again.version == dataset.version and again.partitions == 9
    request = RunRequest(
        dataset=dataset,
        output_path=f"r-script-outputs/{DATE}/{{run-id}}",
        run_key=run_key,
        r_script="r/forecast_per_store.r",
        r_args=["--horizon", "4"],
        settings=ParallelRunSettings(error_threshold=-1),
        experiment_name=experiment_name,
    )
    ref = backend.submit(request)
    state = wait_for_end(backend, ref.run_id)
    results = backend.fetch_results(ref.run_id)
    assert state.status == "Finished", (state.message, results.logs)
    registered = backend.registered_files(dataset)
    assert registered.partitions is not None and len(registered.partitions) == 9
    report = validate_outputs(registered.items, results, allowed_failures=1, dataset=dataset)
    assert report.passed, report.problems
    assert (report.counts.input_files, report.counts.succeeded, report.counts.failed) == (9, 8, 1)
    assert list(results.failures) == ["Store=1004/Brand=tropicana"]
    assert "results/Store=1000/Brand=dominicks/forecast.csv" in results.output_files
    return dataset, results
