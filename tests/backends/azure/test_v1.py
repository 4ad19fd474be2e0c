"""The Azure ML backend on the real SDKs, down to their HTTP calls: a fake of the workspace's services
(tests/azure, every behaviour sourced) and Azurite as the storage account. Nothing above HTTP is mocked but
the pipeline service's client, which is the SDK's own in-memory DryRunServiceCaller, extended to run steps."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import pytest

from azureml_parallel_r import status
from azureml_parallel_r.backends.azure.v1 import AzureMLBackend, SubmissionError
from azureml_parallel_r.backends.azure.v1_step import image_pip_packages
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.models import RunRequest
from azureml_parallel_r.output_checks import validate_outputs
from tests.azure.wire import Reply
from tests.azure.workspace import CONTAINER, list_blobs_page
from tests.backends.azure.cases import (
    DATE,
    INPUTS,
    KEY,
    check_a_late_file_is_noted_not_counted,
    check_a_per_store_forecast_over_a_partitioned_table,
    check_a_repair_reruns_exactly_the_failed_files,
    check_changed_inputs_and_a_lost_file_list,
    check_the_run_report_reads_the_run,
    other_keys,
    register_samples,
    sample_request,
)
from tests.conftest import SHIPPED
from tests.waiting import wait_for_end, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def backend(fake_azure) -> AzureMLBackend:
    backend = AzureMLParallelRunHook().get_conn()
    assert isinstance(backend, AzureMLBackend)
    return backend


@pytest.fixture
def dataset(fake_azure, backend: AzureMLBackend, tmp_path: Path):
    return register_samples(fake_azure, backend, tmp_path / "inputs")


def _request(dataset, **settings) -> RunRequest:
    return sample_request(dataset, KEY, **settings)


def test_registering_lists_the_folder_in_storage_and_reuses_the_latest_version(fake_azure, backend, dataset) -> None:
    assert (dataset.version, dataset.file_count, dataset.reused) == (1, 9, False)
    again = backend.register_file_dataset(INPUTS, name="r-script-inputs", tags={"logical_date": DATE, "path": INPUTS})
    assert (again.version, again.reused) == (1, True)
    other_date = backend.register_file_dataset(
        INPUTS, name="r-script-inputs", tags={"logical_date": "2026-11-25", "path": INPUTS}
    )
    assert (other_date.version, other_date.reused) == (2, False)
    assert backend.list_dataset_files(dataset)[:2] == ["camera-a/img_0000.png", "camera-a/img_0001.png"]


def test_a_missing_or_empty_date_folder_is_zero_files_and_registers_nothing(fake_azure, backend) -> None:
    """The dataflow raises NotFound for such a folder; the backend lists storage instead and skips."""
    missing = backend.register_file_dataset("r-script-inputs/2026-11-11", name="r-script-inputs", tags={})
    assert (missing.version, missing.file_count) == (0, 0)
    assert fake_azure.wire.calls_to("POST", r"/datasets$") == []


def test_what_the_sdk_sends_for_the_parallel_run_step(fake_azure, backend, dataset) -> None:
    ref = backend.submit(
        _request(dataset, append_row_file_name="Rows.TXT", environment_variables={"R_MAX": "8"}, logging_level="DEBUG")
    )
    (submitted,) = fake_azure.pipelines.submitted
    (node,) = submitted["graph"]["ModuleNodes"]
    module = submitted["modules"][node["ModuleId"]]
    argv = [arg["Value"] for arg in module["StructuredInterface"]["Arguments"]]
    parameters = {p["Name"]: p.get("Value") for p in node["ModuleParameters"]}
    assert (module["StepType"], parameters["Target"], parameters["Script"]) == (
        "ParallelRunStep",
        "r-cluster",
        "driver/amlbi_main.py",
    )
    # the driver gets the input by name only; the entry script finds its mount the way the runtime does
    assert argv[argv.index("--input_fds_0") + 1] == "input_files"
    assert argv[argv.index("--input-name") + 1] == "input_files" and "--input-root" not in argv
    assert argv[argv.index("--append_row_file_name") + 1] == "Rows.TXT"
    assert argv[argv.index("--mini_batch_size") + 1] == "4"
    assert argv[argv.index("--logging_level") + 1] == "DEBUG"  # the run's, as ParallelRunConfig passes it
    assert argv[argv.index("--run_invocation_timeout") + 1] == str(4 * 300 + 60)
    assert "--r-arg=--thumbnail-size" in argv and "--r-arg=8" in argv
    # the output folder is concrete and recorded: no {run-id} for the service to fill with the step run's id
    (output,) = node["ModuleOutputSettings"]
    assert output["DatasetOutputOptions"]["PathOnDatastore"] == ref.output_path
    assert ref.output_path.startswith(f"r-script-outputs/{DATE}/") and "{" not in ref.output_path
    runconfig = json.loads(node["Runconfig"])
    assert runconfig["environmentVariables"] == {"R_MAX": "8"}
    dockerfile = runconfig["environment"]["docker"]["baseDockerfile"]
    assert "libfuse2" in dockerfile and 'python3 -c "import azureml.core, azureml.dataprep, fuse' in dockerfile
    # what the image's pip installs is declared for the SDK (not built by the service: user-managed), so the SDK
    # does not warn that the step "requires azureml-core" and "azureml-dataset-runtime[fuse]"
    python = runconfig["environment"]["python"]
    pip = next(d for d in python["condaDependencies"]["dependencies"] if isinstance(d, dict))["pip"]
    assert python["userManagedDependencies"] is True
    assert (
        pip
        == image_pip_packages(dockerfile)
        == [
            "azureml-core==1.61.0.post4",
            "azureml-dataset-runtime[pandas,fuse]==1.62.0",
            "azureml-telemetry==1.62.0",
            "mltable==1.6.3",
            "setuptools<81",
        ]
    )
    # the snapshot holds exactly the entry script, its helpers and the R code
    (snapshot,) = fake_azure.service.snapshots.values()
    assert sorted(snapshot["files"]) == SHIPPED
    # the run key is in the description (stored at creation) and in the tags (set right after)
    run = fake_azure.service.runs[ref.run_id]["dto"]
    assert json.loads(run["description"].split(" ", 1)[1])["run_key"] == KEY
    assert {run["tags"][f"airflow_{k}"] for k in KEY} == set(KEY.values())
    wait_for_end(backend, ref.run_id)


def test_a_submission_of_the_shipped_image_raises_no_package_warnings(fake_azure, backend, dataset) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend.submit(_request(dataset))
    assert not [str(w.message) for w in caught if "ParallelRunStep requires" in str(w.message)]


def test_the_scripts_declared_r_packages_are_built_into_the_environment(fake_azure, backend, dataset) -> None:
    """The environment definition the SDK sends carries the declaration, and its name a hash of the image: the same
    declaration is the same environment, another one a new environment."""

    def submitted_environment(request: RunRequest) -> dict:
        ref = backend.submit(request)
        node = fake_azure.pipelines.submitted[-1]["graph"]["ModuleNodes"][0]
        wait_for_end(backend, ref.run_id)
        return json.loads(node["Runconfig"])["environment"]

    plain = submitted_environment(_request(dataset))
    declared = dataclasses.replace(_request(dataset), r_packages=["jpeg>=0.1"], run_key={**KEY, "attempt": "2"})
    with_jpeg = submitted_environment(declared)
    again = submitted_environment(dataclasses.replace(declared, run_key={**KEY, "attempt": "3"}))
    assert plain["name"] == "parallel-r-batch" and with_jpeg["name"].startswith("parallel-r-batch-")
    # the SDK reserves "Microsoft" and "AzureML" for curated environments; the interpreter is the image's own
    assert not plain["name"].lower().startswith(("microsoft", "azureml"))
    assert plain["python"]["interpreterPath"] == "/opt/miniconda/bin/python"
    assert (
        with_jpeg["name"] == again["name"]
        and with_jpeg["docker"]["baseDockerfile"] == again["docker"]["baseDockerfile"]
    )
    dockerfile = with_jpeg["docker"]["baseDockerfile"]
    assert "packagemanager.posit.co/cran/__linux__/jammy" in dockerfile and '\\"name\\":\\"jpeg\\"' in dockerfile
    assert "packagemanager" not in plain["docker"]["baseDockerfile"]


def test_a_run_executes_and_its_results_are_read_from_storage(fake_azure, backend, dataset) -> None:
    request = _request(dataset, append_row_file_name="Rows.TXT")
    ref = backend.submit(request)
    state = wait_for_end(backend, ref.run_id)
    assert state.status == status.FINISHED
    assert state.started_at and state.ended_at and state.ended_at >= state.started_at  # from the run's details
    (step,) = fake_azure.runner.started
    # the runtime wrote the rows under the lower-cased name; the backend read that one
    assert fake_azure.blob_names(f"{ref.output_path}/rows.txt") == [f"{ref.output_path}/rows.txt"]
    assert step["destination"] == ref.output_path
    results = backend.fetch_results(ref.run_id)
    assert len(results.rows) == 8 and list(results.failures) == ["camera-b/broken.png"]
    assert "results/camera-a/img_0000.png/thumbnail.png" in results.output_files
    assert results.logs["job_result.txt"].startswith("Finished: 8/9 files succeeded")
    # the R session's log went to the runtime's log_dir (uploaded with the job's logs), named after EntryScript's
    # agent_name, "The process name in pattern processNNN" (Troubleshooting the ParallelRunStep)
    step_files = (
        fake_azure.service.blob_service()
        .get_container_client("azureml")
        .list_blobs(name_starts_with=f"ExperimentRun/dcid.{step['step_run_id']}/logs/user/entry_script_log/")
    )
    r_logs = [b.name.rsplit("/", 2)[1:] for b in step_files if "/r/" in b.name]
    assert r_logs and all(folder == "r" and re.fullmatch(r"process\d{3}\.txt", name) for folder, name in r_logs)
    report = validate_outputs(backend.list_dataset_files(dataset), results, allowed_failures=1)
    assert report.passed, report.problems
    assert report.throughput["wall_seconds"] is not None
    location = backend.write_output_file(ref.run_id, "validation.json", b"{}")
    assert location.endswith(f"/paths/{ref.output_path}/validation.json")
    assert fake_azure.read_blob(f"{ref.output_path}/validation.json") == b"{}"
    check_the_run_report_reads_the_run(backend, request, ref)


def test_a_step_that_fails_before_writing_anything_still_reports_its_error_log(fake_azure, backend, dataset) -> None:
    for name in fake_azure.blob_names(INPUTS):  # the inputs vanish after registration: mounting fails
        fake_azure.service.blob_service().get_container_client(CONTAINER).delete_blob(name)
    ref = backend.submit(_request(dataset))
    assert wait_for_end(backend, ref.run_id).status == status.FAILED
    results = backend.fetch_results(ref.run_id)
    assert results.rows == [] and results.failures == {} and results.output_files == []
    assert "NotFound" in results.logs["job_error.txt"]
    assert "job_error.txt" in results.failure_summary() and "NotFound" in results.failure_summary()


def test_a_run_is_reattached_only_by_its_own_key_and_records_its_dataset_version(fake_azure, backend, dataset) -> None:
    """Another Airflow over the same workspace, or this one after its database was reset, runs the same DAG run id and
    try number with a submission token of its own; corrected inputs are another dataset version: neither finds the
    run. The run records the version it processes, for validation."""
    ref = backend.submit(_request(dataset))
    assert backend.find_run(KEY).run_id == ref.run_id
    assert all(backend.find_run(other) is None for other in other_keys(KEY))
    tags = fake_azure.service.runs[ref.run_id]["dto"]["tags"]
    assert (tags["dataset_name"], tags["dataset_version"]) == ("r-script-inputs", "1")
    wait_for_end(backend, ref.run_id)
    assert backend.fetch_results(ref.run_id).dataset == {"name": "r-script-inputs", "version": 1}


def test_a_failed_tag_update_leaves_a_run_that_reattach_finds(fake_azure, backend, dataset) -> None:
    """Experiment.submit creates the run, then tags it in a second call; when that call fails, the key in the
    description (stored at creation) still finds the run, and no second pipeline is submitted."""
    fake_azure.wire.fault("PATCH", r"/runs/[^/]+$", times=100, reply=Reply(400, {"error": {"message": "nope"}}))
    ref = backend.submit(_request(dataset))
    assert fake_azure.service.runs[ref.run_id]["dto"]["tags"] == {}
    found = backend.find_run(KEY)
    assert found is not None and found.run_id == ref.run_id and found.output_path == ref.output_path
    assert all(backend.find_run(other) is None for other in other_keys(KEY))
    assert len(fake_azure.pipelines.submitted) == 1
    wait_for_end(backend, ref.run_id)
    assert backend.fetch_results(ref.run_id).dataset == {"name": "r-script-inputs", "version": 1}


def test_an_error_after_the_run_exists_returns_that_run_instead_of_submitting_again(
    fake_azure, backend, dataset
) -> None:
    # the run-history read that Experiment.submit makes right after creating the run fails for good
    fake_azure.wire.fault("GET", r"/experiments/r-parallel-batch/runs/[^/]+$", times=1000, reply=Reply(404, {}))
    ref = backend.submit(_request(dataset))
    assert len(fake_azure.pipelines.submitted) == 1
    assert ref.reattached and ref.run_id == fake_azure.pipelines.submitted[0]["pipeline_run_id"]
    fake_azure.wire.faults.clear()
    wait_for_end(backend, ref.run_id)


def test_a_submission_that_created_nothing_is_a_clear_error(fake_azure, backend, dataset) -> None:
    fake_azure.wire.fault("POST", r"/snapshots/getblob$", times=1000, reply=Reply(400, {"error": {"message": "no"}}))
    with pytest.raises(SubmissionError, match="no run with this task's key exists, so nothing is left running"):
        backend.submit(_request(dataset))
    assert fake_azure.pipelines.submitted == []


def test_throttled_and_unavailable_storage_reads_are_retried_as_asked(fake_azure, backend, dataset) -> None:
    ref = backend.submit(_request(dataset))
    wait_for_end(backend, ref.run_id)
    fake_azure.wire.fault(
        "GET", r"^/azureml-blobstore-parallel-r$", times=2, reply=Reply(429, {}, headers={"Retry-After": "0"})
    )
    fake_azure.wire.fault("GET", r"/rows\.txt$|/parallel_run_step\.txt$", times=1, reply=Reply(503, {}))
    results = backend.fetch_results(ref.run_id)
    assert len(results.rows) == 8 and "fetch_problems.txt" not in results.logs
    assert all(fault.hits == fault.times for fault in fake_azure.wire.faults)


def test_each_part_of_the_results_fails_alone(fake_azure, backend, dataset) -> None:
    ref = backend.submit(_request(dataset))
    wait_for_end(backend, ref.run_id)
    fake_azure.wire.fault("GET", r"/failures/", times=1000, reply=Reply(403, {}))
    results = backend.fetch_results(ref.run_id)
    assert len(results.rows) == 8 and results.output_files and results.logs["job_result.txt"]
    assert "the failure records" in results.logs["fetch_problems.txt"]


def test_cancel_stops_the_running_step(fake_azure, backend, dataset, write_r_script) -> None:
    script = write_r_script("process_file <- function(input_path, output_dir, args) Sys.sleep(600)\n", "hang.r")
    request = dataclasses.replace(_request(dataset), r_script=str(script))
    ref = backend.submit(request)
    wait_until(lambda: bool(fake_azure.runner.started), timeout=120, what="the step to start")
    assert backend.cancel(ref.run_id).status in (status.RUNNING, status.CANCELED)
    assert wait_for_end(backend, ref.run_id).status == status.CANCELED


def test_a_run_that_does_not_respond_for_a_while_is_still_waited_for(fake_azure, backend, dataset, write_r_script):
    """azureml-core keeps waiting through NotResponding and Paused (RunStatus.get_running_statuses): so does the
    v1 engine, where the v2 engine ends on them as azure-ai-ml does."""
    script = write_r_script("process_file <- function(input_path, output_dir, args) Sys.sleep(600)\n", "hang.r")
    ref = backend.submit(dataclasses.replace(_request(dataset), r_script=str(script)))
    wait_until(lambda: bool(fake_azure.runner.started), timeout=120, what="the step to start")
    for azure_status in ("NotResponding", "Paused"):
        fake_azure.pipelines.report_status(ref.run_id, azure_status)
        state = backend.get_status(ref.run_id)
        assert (state.status, state.message) == (status.RUNNING, f"Running (Azure ML: {azure_status})")
    backend.cancel(ref.run_id)
    assert wait_for_end(backend, ref.run_id).status == status.CANCELED


def test_throttled_and_unavailable_status_reads_are_retried(fake_azure, backend, dataset) -> None:
    ref = backend.submit(_request(dataset))
    wait_for_end(backend, ref.run_id)
    run_read = rf"/history/v1\.0/.*/runs/{ref.run_id}$"
    throttled = fake_azure.wire.fault("GET", run_read, times=1, reply=Reply(429, {}, headers={"Retry-After": "0"}))
    unavailable = fake_azure.wire.fault("GET", run_read, times=1, reply=Reply(503, {}, headers={"Retry-After": "0"}))
    assert backend.get_status(ref.run_id).status == status.FINISHED
    assert (throttled.hits, unavailable.hits) == (1, 1)


@pytest.mark.slow  # a scale test: 100,000 blobs through Azurite
def test_a_listing_of_100000_result_blobs_is_read_page_by_page_and_counted_whole(fake_azure, backend, dataset) -> None:
    ref = backend.submit(_request(dataset))
    wait_for_end(backend, ref.run_id)
    results_prefix = f"{ref.output_path}/results/"
    real = fake_azure.blob_names(results_prefix)
    # the bulk under a file that succeeded (files under results/ that belong to no input would fail validation)
    bulk = [f"{results_prefix}camera-a/img_0000.png/bulk/{i:06d}.json" for i in range(100_000 - len(real))]
    names = sorted(real + bulk)
    listing = fake_azure.wire.fault(
        "GET",
        rf"^/{CONTAINER}$",
        times=10_000,
        handler=lambda call: (
            list_blobs_page(call, names, CONTAINER)
            if call.query.get("prefix", [""])[0] == results_prefix
            else fake_azure.service.list_blobs_reply(call)
        ),
    )
    results = backend.fetch_results(ref.run_id)
    assert len(results.output_files) == 100_000 and "fetch_problems.txt" not in results.logs
    pages = [
        c for c in fake_azure.wire.calls_to("GET", rf"^/{CONTAINER}$") if c.query.get("prefix") == [results_prefix]
    ]
    assert len(pages) == 20 and listing.hits >= 20
    report = validate_outputs(backend.list_dataset_files(dataset), results, allowed_failures=1)
    assert report.counts.output_files == 100_000 and report.passed, report.problems


def test_a_folder_whose_files_changed_gets_a_new_version_that_lists_them(fake_azure, backend, dataset, tmp_path):
    (tmp_path / "late").mkdir()
    (tmp_path / "late" / "late.png").write_bytes(b"added after registration")
    fake_azure.upload_inputs(tmp_path / "late", INPUTS)
    again = backend.register_file_dataset(INPUTS, name="r-script-inputs", tags={"logical_date": DATE, "path": INPUTS})
    assert (again.version, again.reused, again.file_count) == (2, False, 10)
    assert "late.png" not in backend.list_dataset_files(dataset) and "late.png" in backend.list_dataset_files(again)


def test_a_file_added_after_registration_is_reported_by_validation_not_counted(
    fake_azure, backend, dataset, tmp_path
) -> None:
    check_a_late_file_is_noted_not_counted(fake_azure, backend, dataset, _request(dataset), tmp_path)


def test_inputs_written_again_after_registration_fail_validation_and_a_lost_list_is_not_replaced(
    fake_azure, backend, dataset, tmp_path
) -> None:
    check_changed_inputs_and_a_lost_file_list(fake_azure, backend, dataset, _request(dataset), tmp_path / "inputs")


def test_a_repair_run_reruns_exactly_the_failed_files_with_their_paths(fake_azure, backend, dataset, tmp_path) -> None:
    check_a_repair_reruns_exactly_the_failed_files(fake_azure, backend, tmp_path / "inputs", {**KEY, "submission": "r"})


def test_a_per_store_forecast_runs_over_a_tabular_dataset_with_partition_keys(fake_azure, backend, tmp_path) -> None:
    """A table is a TabularDataset built from its MLTable file (delimited files, the keys from the folder names), a
    direct input of a ParallelRunStep with ParallelRunConfig(partition_keys=...), and each partition's DataFrame
    reaches R."""
    check_a_per_store_forecast_over_a_partitioned_table(fake_azure, backend, tmp_path / "oj", KEY)
    (step,) = fake_azure.runner.started
    argv = step["argv"]
    assert json.loads(argv[argv.index("--partition_keys") + 1]) == ["Store", "Brand"]
    assert "--input_ds_0" in argv and "--input_fds_0" not in argv
