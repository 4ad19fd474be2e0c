"""The Azure ML SDK v2 backend on azure-ai-ml, down to its HTTP calls: the fake workspace's ARM resources
(tests/azure/ml_service.py, every behaviour sourced), its Entra ID and run history, Azurite as the storage account,
and the job run by the local engine as the parallel runtime (tests/azure/job_runner.py). Nothing above HTTP is
mocked."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from azureml_parallel_r import status
from azureml_parallel_r.backends.azure import errors as azure_errors
from azureml_parallel_r.backends.azure.v2 import AzureMLV2Backend, SubmissionError
from azureml_parallel_r.backends.azure.v2_job import job_name
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.models import RunRequest
from azureml_parallel_r.output_checks import validate_outputs
from tests.azure.arm_resources import WORKSPACE_ID
from tests.azure.wire import Reply
from tests.azure.workspace import CONTAINER
from tests.backends.azure.cases import (
    DATE,
    INPUTS,
    KEY,
    TAGS,
    check_a_late_file_is_noted_not_counted,
    check_a_per_store_forecast_over_a_partitioned_table,
    check_a_repair_reruns_exactly_the_failed_files,
    check_changed_inputs_and_a_lost_file_list,
    check_the_run_report_reads_the_run,
    other_keys,
    register_samples,
    sample_request,
)
from tests.conftest import CONN_VARIABLE, SHIPPED
from tests.waiting import wait_for_end, wait_until

pytestmark = pytest.mark.integration
JOB_PUT = r"/workspaces/ws-parallel-r/jobs/[^/]+$"


@pytest.fixture
def backend(fake_azure, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AzureMLV2Backend:
    monkeypatch.setenv(CONN_VARIABLE, fake_azure.connection_value(engine="azureml_v2", r_script_dirs=[str(tmp_path)]))
    backend = AzureMLParallelRunHook().get_conn()
    assert isinstance(backend, AzureMLV2Backend)
    return backend


@pytest.fixture
def dataset(fake_azure, backend: AzureMLV2Backend, tmp_path: Path):
    return register_samples(fake_azure, backend, tmp_path / "inputs")


def _request(dataset, **settings) -> RunRequest:
    return sample_request(dataset, KEY, "r-parallel-v2", **settings)


# -- data assets --------------------------------------------------------------------------------------------------


def test_registering_creates_versions_and_reuses_any_version_of_the_same_folder_and_date(
    fake_azure, backend, dataset
) -> None:
    assert (dataset.version, dataset.file_count, dataset.reused) == (1, 9, False)
    (version,) = fake_azure.ml.data["r-script-inputs"].values()
    properties = version["properties"]
    assert properties["dataType"] == "uri_folder"
    assert properties["dataUri"] == f"azureml://datastores/workspaceblobstore/paths/{INPUTS}/"
    assert properties["tags"]["logical_date"] == DATE and properties["tags"]["file_count"] == "9"
    other_date = backend.register_file_dataset(INPUTS, name="r-script-inputs", tags={**TAGS, "logical_date": "x"})
    assert (other_date.version, other_date.reused) == (2, False)
    # a v2 version's tags are its own: the first date's version is found although it is not the latest
    again = backend.register_file_dataset(INPUTS, name="r-script-inputs", tags=TAGS)
    assert (again.version, again.reused) == (1, True)
    assert backend.list_dataset_files(dataset)[:2] == ["camera-a/img_0000.png", "camera-a/img_0001.png"]


def test_a_folder_whose_files_changed_gets_a_new_version_that_lists_them(fake_azure, backend, dataset, tmp_path):
    (tmp_path / "late").mkdir()
    (tmp_path / "late" / "late.png").write_bytes(b"added after registration")
    fake_azure.upload_inputs(tmp_path / "late", INPUTS)
    again = backend.register_file_dataset(INPUTS, name="r-script-inputs", tags=TAGS)
    assert (again.version, again.reused, again.file_count) == (2, False, 10)
    assert "late.png" not in backend.list_dataset_files(dataset) and "late.png" in backend.list_dataset_files(again)


def test_a_missing_date_folder_is_zero_files_and_registers_nothing(fake_azure, backend) -> None:
    missing = backend.register_file_dataset("r-script-inputs/2026-11-11", name="r-script-inputs", tags={})
    assert (missing.version, missing.file_count) == (0, 0)
    assert fake_azure.wire.calls_to("PUT", r"/data/") == []


def test_a_version_taken_by_a_concurrent_registration_moves_to_the_next(fake_azure, backend, dataset) -> None:
    """Two dates registering at once both compute the same next version; the service refuses the second (409)."""
    taken = fake_azure.wire.fault(
        "PUT",
        r"/data/r-script-inputs/versions/2$",
        reply=Reply(409, {"error": {"code": "UserError", "message": "exists"}}),
    )
    other = backend.register_file_dataset(INPUTS, name="r-script-inputs", tags={**TAGS, "logical_date": "2026-11-25"})
    assert taken.hits == 1 and other.version == 2
    assert len(fake_azure.wire.calls_to("PUT", r"/data/r-script-inputs/versions/2$")) == 2


# -- the job azure-ai-ml sends ------------------------------------------------------------------------------------


def test_what_azure_ai_ml_sends_for_the_parallel_job(fake_azure, backend, dataset) -> None:
    ref = backend.submit(
        _request(
            dataset,
            append_row_file_name="Rows.TXT",
            environment_variables={"R_MAX": "8"},
            allowed_failed_percent=10,
            process_count_per_node=3,
        )
    )
    (put,) = [c.json() for c in fake_azure.wire.calls_to("PUT", JOB_PUT)]
    assert ref.run_id == job_name(KEY) and fake_azure.wire.calls_to("PUT", JOB_PUT)[0].path.endswith(ref.run_id)
    job = put["properties"]
    assert job["jobType"] == "Pipeline" and job["experimentName"] == "r-parallel-v2"
    assert job["computeId"] == f"{WORKSPACE_ID}/computes/r-cluster"
    assert job["inputs"]["input_files"] == {
        "uri": f"{WORKSPACE_ID}/data/r-script-inputs/versions/1",
        "mode": "ReadOnlyMount",
        "jobInputType": "uri_folder",
    }
    (node,) = job["jobs"].values()
    assert node["type"] == "parallel" and node["resources"] == {"instance_count": 1}
    assert node["mini_batch_size"] == 4 and node["max_concurrency_per_instance"] == 3
    assert node["error_threshold"] == 5 and node["mini_batch_error_threshold"] == -1
    assert node["retry_settings"] == {"timeout": 4 * 300 + 60, "max_retries": 2}  # 3 tries = 2 retries
    assert node["environment_variables"] == {"R_MAX": "8"}
    # the output folder is concrete, named by the pipeline job; its results, failures and rows file are three
    # outputs of their own, none mounted inside another
    assert ref.output_path == f"r-script-outputs/{DATE}/{ref.run_id}"
    folder = f"azureml://datastores/workspaceblobstore/paths/{ref.output_path}/"
    assert node["outputs"] == {
        "results": {"uri": f"{folder}results/", "mode": "ReadWriteMount", "job_output_type": "uri_folder"},
        "failures": {"uri": f"{folder}failures/", "mode": "ReadWriteMount", "job_output_type": "uri_folder"},
        "rows": {"uri": f"{folder}rows.txt", "mode": "ReadWriteMount", "job_output_type": "uri_file"},
    }
    task = node["task"]
    assert task["entry_script"] == "entry/batch_wrapper.py" and task["append_row_to"] == "${{outputs.rows}}"
    assert task["program_arguments"] == (
        "--r-script r/process_file.r --r-mode worker --file-timeout 300 --input-root ${{inputs.input_files}} "
        "--r-arg=--thumbnail-size --r-arg=8 --results-dir ${{outputs.results}} --failures-dir ${{outputs.failures}} "
        "--error_threshold 5 "
        "--allowed_failed_percent 10"
    )
    # the code asset holds exactly the shipped files; the environment is built from the compute image's Dockerfile
    code = fake_azure.ml.codes[task["code"].split("/workspaces/ws-parallel-r/", 1)[1]]["properties"]["codeUri"]
    container, _, prefix = code.split(".blob.core.windows.net/", 1)[1].partition("/")
    files = fake_azure.service.blob_service().get_container_client(container).list_blobs(name_starts_with=prefix)
    assert sorted(b.name[len(prefix) + 1 :] for b in files) == SHIPPED
    environment = fake_azure.ml.environments[task["environment"].split("/workspaces/ws-parallel-r/", 1)[1]]
    context = environment["properties"]["build"]["contextUri"]
    dockerfile = fake_azure.read_blob(context.split(f"/{CONTAINER}/", 1)[1] + "Dockerfile").decode()
    assert "r-base-core" in dockerfile and "libfuse2" in dockerfile
    # the run key and the outputs' place are the job's tags, set with the PUT (no second call)
    assert {job["tags"][f"airflow_{k}"] for k in KEY} == set(KEY.values())
    assert job["tags"]["output_path"] == ref.output_path and job["tags"]["rows_file"] == "rows.txt"
    assert fake_azure.wire.calls_to("PATCH", r"/jobs/") == []
    wait_for_end(backend, ref.run_id)


def test_the_fake_refuses_a_write_mount_inside_another(fake_azure, backend, dataset, monkeypatch) -> None:
    """What nested write mounts do is documented nowhere, so the fake refuses them rather than guessing: the job
    the engine sends has none (above), and the layout it replaced (the rows file inside a mounted run folder) is
    refused."""
    from azure.ai.ml import Output

    from azureml_parallel_r.backends.azure import v2 as v2_module
    from azureml_parallel_r.backends.azure.v2_job import OUTPUT_NAME, STEP_NAME, pipeline_job

    def nested(request, **kwargs):
        job = pipeline_job(request, **kwargs)
        job.jobs[STEP_NAME].outputs[OUTPUT_NAME] = Output(type="uri_folder", mode="rw_mount", path=kwargs["output_uri"])
        return job

    monkeypatch.setattr(v2_module, "pipeline_job", nested)
    with pytest.raises(SubmissionError, match=r"output (rows|failures) .* is inside output results"):
        backend.submit(_request(dataset))
    assert fake_azure.ml.jobs == {}
    assert [problem for problem in fake_azure.wire.unrouted if "is inside output results" in problem]
    fake_azure.wire.unrouted.clear()  # recorded as not modelled, as it should be: this test wants that


def test_arguments_no_quoting_protects_are_refused_before_anything_is_created(fake_azure, backend, dataset) -> None:
    request = dataclasses.replace(_request(dataset), r_args=["$HOME"])
    with pytest.raises(ValueError, match=re.escape("holds '$', which no quoting protects")):
        backend.check_request(request)
    with pytest.raises(ValueError, match="which no quoting protects"):
        backend.submit(request)
    assert fake_azure.ml.jobs == {} and fake_azure.wire.calls_to("PUT", JOB_PUT) == []


def test_the_scripts_declared_r_packages_are_built_into_the_environment(fake_azure, backend, dataset) -> None:
    """The build context carries the declaration, and its hash is the anonymous environment's version: the same
    declaration is the same environment, another one a new environment."""

    def submitted_environment(request: RunRequest) -> tuple[str, str]:
        ref = backend.submit(request)
        task = next(iter(fake_azure.ml.jobs[ref.run_id]["properties"]["jobs"].values()))["task"]
        environment = fake_azure.ml.environments[task["environment"].split("/workspaces/ws-parallel-r/", 1)[1]]
        context = environment["properties"]["build"]["contextUri"]
        wait_for_end(backend, ref.run_id)
        return task["environment"], fake_azure.read_blob(context.split(f"/{CONTAINER}/", 1)[1] + "Dockerfile").decode()

    plain, plain_dockerfile = submitted_environment(_request(dataset))
    declared = dataclasses.replace(_request(dataset), r_packages=["jpeg>=0.1"], run_key={**KEY, "attempt": "2"})
    with_jpeg, dockerfile = submitted_environment(declared)
    assert "packagemanager.posit.co/cran/__linux__/jammy" in dockerfile and "packagemanager" not in plain_dockerfile
    assert '{\\"minimum\\":\\"0.1\\",\\"name\\":\\"jpeg\\"' in dockerfile  # the declaration, as JSON
    again, _ = submitted_environment(dataclasses.replace(declared, run_key={**KEY, "attempt": "3"}))
    assert plain != with_jpeg == again


# -- a run, its results and its faults ----------------------------------------------------------------------------


def test_a_job_runs_and_its_results_are_read_from_storage(fake_azure, backend, dataset) -> None:
    request = _request(dataset)
    ref = backend.submit(request)
    state = wait_for_end(backend, ref.run_id)
    assert state.status == status.FINISHED and state.message == "Finished (Azure ML: Completed)"
    assert state.started_at and state.ended_at and state.ended_at >= state.started_at  # from run history
    (step,) = fake_azure.jobs.started
    assert step["settings"]["run_max_try"] == 3 and step["settings"]["process_count_per_node"] == 2
    rows_blob = f"{ref.output_path}/parallel_run_step.txt"
    assert fake_azure.blob_names(rows_blob) == [rows_blob]
    results = backend.fetch_results(ref.run_id)
    assert len(results.rows) == 8 and list(results.failures) == ["camera-b/broken.png"]
    assert "results/camera-a/img_0000.png/thumbnail.png" in results.output_files
    assert results.logs["job_result.txt"].startswith("Finished: 8/9 files succeeded")
    assert "fetch_problems.txt" not in results.logs
    report = validate_outputs(backend.list_dataset_files(dataset), results, allowed_failures=1)
    assert report.passed, report.problems
    assert report.throughput["wall_seconds"] is not None
    location = backend.write_output_file(ref.run_id, "validation.json", b"{}")
    assert location == f"azureml://datastores/workspaceblobstore/paths/{ref.output_path}/validation.json"
    assert fake_azure.read_blob(f"{ref.output_path}/validation.json") == b"{}"
    check_the_run_report_reads_the_run(backend, request, ref)


def test_the_runtime_applies_the_failed_item_threshold_the_program_arguments_give(fake_azure, backend, dataset) -> None:
    """The documented --error_threshold reaches the runtime: with 0 the sample's one corrupt file fails the job."""
    ref = backend.submit(_request(dataset, error_threshold=0))
    assert wait_for_end(backend, ref.run_id).status == status.FAILED
    (step,) = fake_azure.jobs.started
    assert step["settings"]["error_threshold"] == 0
    assert "error_threshold" in backend.fetch_results(ref.run_id).logs["job_error.txt"]


def test_a_put_that_succeeded_but_whose_answer_was_lost_is_found_by_name_not_sent_again(
    fake_azure, backend, dataset
) -> None:
    lost = fake_azure.wire.fault("PUT", JOB_PUT, delivered=True)
    ref = backend.submit(_request(dataset))
    assert lost.hits == 1
    assert len(fake_azure.wire.calls_to("PUT", JOB_PUT)) == 1 and list(fake_azure.ml.jobs) == [ref.run_id]
    assert ref.output_path == f"r-script-outputs/{DATE}/{ref.run_id}"
    assert wait_for_end(backend, ref.run_id).status == status.FINISHED


def test_a_retried_task_finds_its_job_by_name_with_one_read(fake_azure, backend, dataset) -> None:
    ref = backend.submit(_request(dataset))
    before = len(fake_azure.wire.calls)
    found = backend.find_run(KEY)
    assert found is not None and found.reattached and found.run_id == ref.run_id and found.output_path
    assert [(c.method, c.path.rsplit("/", 1)[1]) for c in fake_azure.wire.calls[before:]] == [("GET", ref.run_id)]
    again = backend.submit(_request(dataset))  # submitting the same key again never creates a second job
    assert again.reattached and again.run_id == ref.run_id and len(fake_azure.ml.jobs) == 1
    # another Airflow (or this one after its database was reset: another token), or corrected inputs (another
    # dataset version): another key, so another job name
    assert all(backend.find_run(other) is None for other in other_keys(KEY))
    tags = fake_azure.ml.jobs[ref.run_id]["properties"]["tags"]
    assert (tags["dataset_name"], tags["dataset_version"]) == ("r-script-inputs", "1")
    wait_for_end(backend, ref.run_id)
    assert backend.fetch_results(ref.run_id).dataset == {"name": "r-script-inputs", "version": 1}


def test_a_failed_job_is_not_reattached_and_the_next_submission_takes_the_next_name(
    fake_azure, backend, dataset
) -> None:
    for name in fake_azure.blob_names(INPUTS):  # the inputs vanish after registration: mounting fails
        fake_azure.service.blob_service().get_container_client(CONTAINER).delete_blob(name)
    first = backend.submit(_request(dataset))
    assert wait_for_end(backend, first.run_id).status == status.FAILED
    assert backend.find_run(KEY) is None
    fake_azure.upload_inputs(Path(fake_azure.workdir).parent / "inputs", INPUTS)
    second = backend.submit(_request(dataset))
    assert second.run_id == f"{first.run_id}-2" and not second.reattached
    assert second.output_path == f"r-script-outputs/{DATE}/{second.run_id}"
    assert wait_for_end(backend, second.run_id).status == status.FINISHED


def test_a_job_that_fails_before_writing_anything_reports_the_step_error(fake_azure, backend, dataset) -> None:
    for name in fake_azure.blob_names(INPUTS):
        fake_azure.service.blob_service().get_container_client(CONTAINER).delete_blob(name)
    ref = backend.submit(_request(dataset))
    assert wait_for_end(backend, ref.run_id).status == status.FAILED
    results = backend.fetch_results(ref.run_id)
    assert results.rows == [] and results.failures == {} and results.output_files == []
    assert "StreamAccess.NotFound" in results.logs["step_error.txt"]
    summary = results.failure_summary()
    assert f"Pipeline run {ref.run_id} is Failed" in summary and "StreamAccess.NotFound" in summary


def test_throttled_status_reads_wait_as_the_service_asks(fake_azure, backend, dataset, monkeypatch) -> None:
    ref = backend.submit(_request(dataset))
    wait_for_end(backend, ref.run_id)
    slept: list[float] = []
    monkeypatch.setattr(azure_errors.time, "sleep", slept.append)
    throttled = fake_azure.wire.fault(
        "GET",
        rf"/jobs/{ref.run_id}$",
        times=2,
        reply=Reply(429, {"error": {"code": "TooManyRequests"}}, headers={"Retry-After": "7"}),
    )
    assert backend.get_status(ref.run_id).status == status.FINISHED
    assert throttled.hits == 2 and slept == [7.0, 7.0]  # azure-core's retries are off: one layer, as asked


def test_transient_errors_before_the_put_are_retried_and_one_job_is_created(fake_azure, backend, dataset) -> None:
    """The whole submission is retried (each try reads the job's name first): the compute read before it, and a
    503 where azure-ai-ml uploads the code."""
    compute = fake_azure.wire.fault("GET", r"/computes/r-cluster$", reply=Reply(503, {}, {"Retry-After": "0"}))
    upload = fake_azure.wire.fault("POST", r"/startPendingUpload$", reply=Reply(503, {}, {"Retry-After": "0"}))
    ref = backend.submit(_request(dataset))
    assert (compute.hits, upload.hits) == (1, 1) and list(fake_azure.ml.jobs) == [ref.run_id]
    assert len(fake_azure.wire.calls_to("PUT", JOB_PUT)) == 1
    wait_for_end(backend, ref.run_id)


def test_a_missing_compute_cluster_is_said_before_anything_is_submitted(fake_azure, backend, dataset) -> None:
    backend.settings = dataclasses.replace(backend.settings, compute_target="no-such-cluster")
    with pytest.raises(SubmissionError, match="no compute cluster 'no-such-cluster': create it or fix the conn"):
        backend.submit(_request(dataset))
    assert fake_azure.ml.jobs == {} and fake_azure.wire.calls_to("POST", r"/startPendingUpload$") == []


def test_a_submission_that_created_nothing_is_a_clear_error(fake_azure, backend, dataset) -> None:
    refused = Reply(400, {"error": {"code": "UserError", "message": "bad spec"}})
    fake_azure.wire.fault("PUT", r"/components/", times=100, reply=refused)
    with pytest.raises(SubmissionError, match=r"no job with that name exists, so nothing is left running.*bad spec"):
        backend.submit(_request(dataset))
    assert fake_azure.ml.jobs == {}


def test_cancel_stops_the_running_job(fake_azure, backend, dataset, write_r_script) -> None:
    script = write_r_script("process_file <- function(input_path, output_dir, args) Sys.sleep(600)\n", "hang.r")
    ref = backend.submit(dataclasses.replace(_request(dataset), r_script=str(script)))
    wait_until(lambda: bool(fake_azure.jobs.started), timeout=120, what="the step to start")
    assert backend.cancel(ref.run_id).status == status.CANCELED  # begin_cancel waits for the operation's end
    assert [c.method for c in fake_azure.wire.calls_to("POST", rf"/jobs/{ref.run_id}/cancel$")] == ["POST"]
    results = backend.fetch_results(ref.run_id)
    assert results.state.status == status.CANCELED and results.rows == []


def test_each_part_of_the_results_fails_alone(fake_azure, backend, dataset) -> None:
    ref = backend.submit(_request(dataset))
    wait_for_end(backend, ref.run_id)
    fake_azure.wire.fault("GET", r"^/azureml$", times=1000, reply=Reply(403, {}))  # the artifact store's listing
    results = backend.fetch_results(ref.run_id)
    assert len(results.rows) == 8 and results.output_files and list(results.failures) == ["camera-b/broken.png"]
    assert "the job logs" in results.logs["fetch_problems.txt"]
    assert json.loads(results.rows[0])["relative_path"]


@pytest.mark.parametrize(
    ("environment_name", "expected"), [("r-env:3", "r-env/versions/3"), ("r-env", "r-env/versions/4")]
)
def test_a_registered_environment_named_in_the_connection_is_used(
    fake_azure, backend, dataset, environment_name, expected
) -> None:
    from tests.azure.arm_resources import resource

    for version in ("3", "4"):
        path = f"environments/r-env/versions/{version}"
        fake_azure.ml.environments[path] = resource("environments/versions", path, {"image": "r-image:1"})
    backend.settings = dataclasses.replace(backend.settings, environment_name=environment_name)
    ref = backend.submit(_request(dataset))
    (put,) = [c.json() for c in fake_azure.wire.calls_to("PUT", JOB_PUT)]
    (node,) = put["properties"]["jobs"].values()
    assert node["task"]["environment"] == f"azureml:{WORKSPACE_ID}/environments/{expected}"
    assert fake_azure.wire.calls_to("PUT", r"/environments/") == []  # nothing built
    wait_for_end(backend, ref.run_id)


def test_an_environment_that_is_not_registered_fails_the_submission_clearly(fake_azure, backend, dataset) -> None:
    backend.settings = dataclasses.replace(backend.settings, environment_name="missing-env:1")
    with pytest.raises(SubmissionError, match=r"environment .*missing-env/versions/1 does not exist"):
        backend.submit(_request(dataset))
    assert fake_azure.ml.jobs == {}


def test_a_file_added_after_registration_is_reported_by_validation_not_counted(
    fake_azure, backend, dataset, tmp_path
) -> None:
    check_a_late_file_is_noted_not_counted(fake_azure, backend, dataset, _request(dataset), tmp_path)


def test_inputs_written_again_after_registration_fail_validation_and_a_lost_list_is_not_replaced(
    fake_azure, backend, dataset, tmp_path
) -> None:
    check_changed_inputs_and_a_lost_file_list(fake_azure, backend, dataset, _request(dataset), tmp_path / "inputs")


@pytest.mark.parametrize(
    ("path", "location"),
    [
        (
            "azureml://datastores/workspaceartifactstore/paths/ExperimentRun/dcid.step-1/",
            ("workspaceartifactstore", "ExperimentRun/dcid.step-1"),
        ),
        (
            "azureml://subscriptions/s/resourcegroups/r/workspaces/w/datastores/logstore/paths/jobs/step-1",
            ("logstore", "jobs/step-1"),
        ),
        (None, ("workspaceartifactstore", "ExperimentRun/dcid.step-1")),
        ("https://account.blob.core.windows.net/c/x", ("workspaceartifactstore", "ExperimentRun/dcid.step-1")),
    ],
)
def test_a_step_jobs_logs_are_found_as_azure_ai_ml_finds_them(path: str | None, location: tuple[str, str]) -> None:
    """job.outputs["default"] first, ExperimentRun/dcid.<job> on workspaceartifactstore only when the job reports
    no default output (or one in a form that is not a datastore URI): JobOperations._get_named_output_uri."""
    from azure.ai.ml import Output
    from azure.ai.ml.entities import CommandJob

    from azureml_parallel_r.backends.azure.v2_job import default_output_location

    job = CommandJob(name="step-1", command="echo", environment="azureml:env:1")
    if path:
        job.outputs = {"default": Output(type="uri_folder", path=path)}
    assert default_output_location(job) == location
    reported_none = CommandJob(name="step-1", command="echo", environment="azureml:env:1")
    reported_none.outputs = {"default": None}
    assert default_output_location(reported_none) == ("workspaceartifactstore", "ExperimentRun/dcid.step-1")


def test_a_repair_run_reruns_exactly_the_failed_files_with_their_paths(fake_azure, backend, dataset, tmp_path) -> None:
    check_a_repair_reruns_exactly_the_failed_files(fake_azure, backend, tmp_path / "inputs", {**KEY, "submission": "r"})


def test_a_per_store_forecast_runs_over_an_mltable_input_with_partition_keys(fake_azure, backend, tmp_path) -> None:
    """A table is an mltable data asset, bound as an mltable input in direct mode with the node's partition_keys
    (how-to-use-parallel-job-in-pipeline; azureml-examples 1a_oj_sales_prediction), and the runtime hands each
    partition's DataFrame to R."""
    check_a_per_store_forecast_over_a_partitioned_table(fake_azure, backend, tmp_path / "oj", KEY, "r-parallel-v2")
    (data,) = fake_azure.wire.calls_to("PUT", r"/data/oj-sales/versions/")
    assert data.json()["properties"]["dataType"] == "mltable"
    (job,) = fake_azure.ml.job_puts
    node = job["properties"]["jobs"]["r_parallel_batch"]
    assert json.loads(node["partition_keys"]) == ["Store", "Brand"]
    assert job["properties"]["inputs"]["input_files"]["jobInputType"] == "mltable"
    assert job["properties"]["inputs"]["input_files"]["mode"] == "Direct"
    (step,) = fake_azure.jobs.started
    assert "--input-kind" in step["argv"] and "--input-root" not in step["argv"]
