"""The Azure ML backend, offline: real SDK objects are built; only network calls are mocked."""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import pytest

from azureml_parallel_r import status
from azureml_parallel_r.backends import azureml as backend_module
from azureml_parallel_r.backends.azureml import (
    INPUT_NAME,
    AzureMLBackend,
    AzureMLSettings,
    build_environment,
    build_parallel_run_step,
    map_status,
    stage_source_directory,
    with_retries,
)
from azureml_parallel_r.backends.base import DatasetRef, RunRequest
from tests.conftest import INCLUDE

pytestmark = pytest.mark.filterwarnings("ignore")
DATASET = DatasetRef("r-script-inputs", 3, "r-script-inputs/2026-11-24", 12)
KEY = {"dag_id": "r_parallel_batch", "run_id": "scheduled__2026-11-24T00:00:00+00:00", "task_id": "submit_pipeline"}


@pytest.fixture(scope="module")
def workspace():
    from azureml.core import Workspace
    from azureml.core.authentication import ServicePrincipalAuthentication

    auth = ServicePrincipalAuthentication("tenant", "client-id", "not-a-real-secret")
    return Workspace("00000000-0000-0000-0000-000000000000", "rg", "ws", auth=auth, _disable_service_check=True)


@pytest.fixture(scope="module")
def datastore(workspace):
    from azureml.data.azure_storage_datastore import AzureBlobDatastore

    return AzureBlobDatastore(workspace, "workspaceblobstore", "container", "account")


@pytest.fixture(scope="module")
def file_dataset(datastore):
    from azureml.core import Dataset

    return Dataset.File.from_files(path=(datastore, "r-script-inputs/2026-11-24/**"), validate=False)


def _request(**kwargs) -> RunRequest:
    values = {
        "dataset": DATASET,
        "output_path": "r-script-outputs/2026-11-24/{run-id}",
        "run_key": KEY,
        "r_args": ["--thumbnail-size", "-64"],
        "mini_batch_size": 7,
        "node_count": 3,
        "process_count_per_node": 4,
        "error_threshold": 5,
        "allowed_failed_count": 2,
        "allowed_failed_percent": 12.5,
        "run_invocation_timeout": 900,
        "run_max_try": 4,
        "append_row_file_name": "rows.txt",
        "environment_variables": {"R_MAX_VSIZE": "8Gb"},
        "file_timeout": 120,
    }
    return RunRequest(**{**values, **kwargs})


@pytest.fixture
def step_and_output(file_dataset, datastore, tmp_path):
    staged = stage_source_directory()
    step, output = build_parallel_run_step(
        _request(),
        dataset=file_dataset,
        datastore=datastore,
        environment=build_environment(AzureMLSettings()),
        source_directory=staged,
        compute_target="cpu-cluster",
        extra_environment_variables={"FROM_CONNECTION": "1", "R_MAX_VSIZE": "overridden"},
    )
    return step, output, staged


def test_parallel_run_config_carries_every_knob(step_and_output) -> None:
    step, _output, staged = step_and_output
    config = step._parallel_run_config
    assert (config.entry_script, config.source_directory) == ("entry/batch_wrapper.py", staged)
    assert (config.mini_batch_size, config.node_count, config.process_count_per_node) == (7, 3, 4)
    assert (config.error_threshold, config.allowed_failed_count, config.allowed_failed_percent) == (5, 2, 12.5)
    assert (config.run_invocation_timeout, config.run_max_try) == (900, 4)
    assert (config.output_action, config.append_row_file_name) == ("append_row", "rows.txt")
    assert config.compute_target == "cpu-cluster"
    assert config.environment_variables == {"FROM_CONNECTION": "1", "R_MAX_VSIZE": "8Gb"}
    assert config.environment.name == "azureml-parallel-r"


def test_step_input_is_the_mounted_named_dataset_and_output_follows_the_layout(step_and_output, datastore) -> None:
    step, output, _staged = step_and_output
    (step_input,) = step._pystep_inputs
    assert step_input.name == INPUT_NAME and step_input.mode == "mount"
    assert output.destination == (datastore, "r-script-outputs/2026-11-24/{run-id}")
    assert step._allow_reuse is False
    ours = ["--r-script", "r/process_file.r", "--r-mode", "worker", "--file-timeout", "120",
            "--input-name", INPUT_NAME, "--r-arg=--thumbnail-size", "--r-arg=-64"]  # fmt: skip
    argv = list(step._arguments)
    start = argv.index("--r-script")
    assert argv[start : start + len(ours)] == ours


def test_the_driver_argv_of_the_real_step_is_accepted_by_the_entry_script(
    step_and_output, tmp_path, monkeypatch
) -> None:
    import batch_wrapper

    step, _output, _staged = step_and_output
    argv = [str(arg) if isinstance(arg, str | int | float) else "/mnt/azureml/placeholder" for arg in
            step._generate_main_file_args()]  # fmt: skip
    assert "--scoring_module_name" in argv and "--output" in argv and "--client_sdk_version" in argv
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(tmp_path / "out"))
    monkeypatch.setenv(f"AZUREML_DATAREFERENCE_{INPUT_NAME}", "/mnt/azureml/input_files")
    config = batch_wrapper.parse_config(argv)
    assert config.r_script.endswith("include/r/process_file.r")
    assert config.r_args == ("--thumbnail-size", "-64") and config.file_timeout == 120
    assert config.output_dir == str(tmp_path / "out"), "the runtime's --output must not be taken for --output-dir"
    assert config.input_root == "/mnt/azureml/input_files"


def test_staged_source_directory_holds_exactly_what_the_compute_needs() -> None:
    staged = Path(stage_source_directory())
    shipped = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
    expected = sorted(
        str(p.relative_to(INCLUDE)) for folder in ("entry", "r") for p in (INCLUDE / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
    )  # fmt: skip
    assert shipped == expected
    assert "entry/batch_wrapper.py" in shipped and "r/worker.R" in shipped and "r/process_file.r" in shipped
    assert not any(name.startswith(("environment", "plugins")) for name in shipped)
    size = sum(p.stat().st_size for p in staged.rglob("*") if p.is_file())
    print(f"staged source directory: {len(shipped)} files, {size} bytes")
    assert size < 200_000


def test_environment_built_from_the_dockerfile() -> None:
    environment = build_environment(AzureMLSettings())
    dockerfile = environment.docker.base_dockerfile
    for needed in (
        "r-base-core",
        "r-cran-png",
        "r-cran-jpeg",
        "r-cran-jsonlite",
        "azureml-core==",
        "azureml-dataset-runtime[fuse]",
    ):
        assert needed in dockerfile
    assert environment.python.user_managed_dependencies is True


def test_a_registered_environment_is_used_by_name(workspace) -> None:
    from azureml.core import Environment

    with mock.patch.object(Environment, "get", autospec=True, return_value="registered") as get:
        assert build_environment(AzureMLSettings(environment_name="r-env:7"), workspace) == "registered"
    get.assert_called_once_with(workspace, "r-env", "7")


@pytest.mark.parametrize(
    ("azure", "ours"),
    [("NotStarted", "NotStarted"), ("Queued", "NotStarted"), ("Preparing", "NotStarted"), ("Running", "Running"),
     ("Finalizing", "Running"), ("CancelRequested", "Running"), ("Finished", "Finished"), ("Completed", "Finished"),
     ("Failed", "Failed"), ("Canceled", "Canceled"), ("Cancelled", "Canceled"), ("SomethingNew", "Running")],
)  # fmt: skip
def test_status_mapping(azure: str, ours: str) -> None:
    assert map_status(azure) == ours


def test_transient_errors_are_retried_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    sleeps: list[float] = []
    monkeypatch.setattr(backend_module.time, "sleep", sleeps.append)
    call = mock.Mock(side_effect=[requests.ConnectionError("reset"), Exception("503 Service Unavailable"), "ok"])
    assert with_retries(call, "reading", backoff=1.0) == "ok"
    assert sleeps == [1.0, 2.0]


def test_permanent_errors_are_not_retried_and_retries_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module.time, "sleep", lambda _s: None)
    permanent = mock.Mock(side_effect=ValueError("bad request: no such compute"))
    with pytest.raises(ValueError, match="no such compute"):
        with_retries(permanent, "submitting")
    assert permanent.call_count == 1
    flaky = mock.Mock(side_effect=TimeoutError("timed out"))
    with pytest.raises(TimeoutError):
        with_retries(flaky, "reading", attempts=3)
    assert flaky.call_count == 3


# -- the backend, with the network boundary mocked -----------------------------------------------------------


@pytest.fixture
def backend(workspace, datastore, monkeypatch: pytest.MonkeyPatch) -> AzureMLBackend:
    from azureml.core import Workspace

    monkeypatch.setattr(backend_module.time, "sleep", lambda _s: None)
    monkeypatch.setattr(Workspace, "get_default_datastore", lambda self: datastore)
    return AzureMLBackend(lambda: workspace, AzureMLSettings(compute_target="gpu-or-cpu", retry_backoff=0))


def _pipeline_run(run_id: str, azure_status: str, tags: dict | None = None) -> mock.Mock:
    run = mock.Mock(id=run_id)
    run.get_status.return_value = azure_status
    run.get_tags.return_value = tags or {"output_path": "r-script-outputs/2026-11-24/{run-id}"}
    run.get_portal_url.return_value = f"https://ml.azure.com/runs/{run_id}"
    return run


def test_submit_builds_the_pipeline_and_tags_the_run(backend, file_dataset, workspace) -> None:
    from azureml.core import Dataset
    from azureml.pipeline.steps import ParallelRunStep

    run = _pipeline_run("pipeline-run-1", "NotStarted")
    with (
        mock.patch.object(Dataset, "get_by_name", return_value=file_dataset) as get_by_name,
        mock.patch("azureml.pipeline.core.Pipeline", autospec=True) as pipeline_class,
        mock.patch("azureml.core.Experiment", autospec=True) as experiment_class,
    ):
        experiment_class.return_value.submit.return_value = run
        ref = backend.submit(_request())
    get_by_name.assert_called_once_with(workspace, "r-script-inputs", version=3)
    (step,) = pipeline_class.call_args.kwargs["steps"]
    assert isinstance(step, ParallelRunStep) and step._parallel_run_config.compute_target == "gpu-or-cpu"
    assert not os.path.exists(step._parallel_run_config.source_directory), "the staged copy is removed after submit"
    experiment_class.assert_called_once_with(workspace, "r-parallel-batch")
    tags = experiment_class.return_value.submit.call_args.kwargs["tags"]
    assert {tags[f"airflow_{k}"] for k in KEY} == set(KEY.values())
    assert tags["output_path"] == "r-script-outputs/2026-11-24/{run-id}"
    assert ref.run_id == "pipeline-run-1" and ref.url == "https://ml.azure.com/runs/pipeline-run-1"
    assert ref.output_path == "r-script-outputs/2026-11-24/pipeline-run-1" and ref.engine == "azureml"


def test_find_run_reattaches_to_a_live_run_and_skips_failed_ones(backend) -> None:
    with mock.patch("azureml.core.Experiment", autospec=True) as experiment_class:
        experiment_class.return_value.get_runs.return_value = iter(
            [_pipeline_run("failed-one", "Failed"), _pipeline_run("live-one", "Running")]
        )
        ref = backend.find_run(KEY)
        backend.find_run(KEY, experiment_name="nightly-r")
    assert [c.args[1] for c in experiment_class.call_args_list] == ["r-parallel-batch", "nightly-r"]
    kwargs = experiment_class.return_value.get_runs.call_args.kwargs
    assert kwargs["type"] == "azureml.PipelineRun"
    assert kwargs["tags"] == {f"airflow_{k}": v for k, v in KEY.items()}
    assert ref is not None and ref.run_id == "live-one" and ref.reattached
    assert ref.output_path == "r-script-outputs/2026-11-24/live-one"


def test_status_and_cancel(backend) -> None:
    import requests

    run = _pipeline_run("r1", "Running")
    run.get_status.side_effect = [requests.ConnectionError("blip"), "Running", "Running", "Canceled"]
    with mock.patch("azureml.core.Run.get", return_value=run):
        assert backend.get_status("r1").status == status.RUNNING
        assert backend.cancel("r1").status == status.CANCELED
    run.cancel.assert_called_once_with()


def test_fetch_results_downloads_rows_failures_and_job_logs(backend, tmp_path) -> None:
    from azureml.core import Dataset

    run = _pipeline_run("r1", "Failed")
    step_run = mock.Mock()
    stderr_log = "logs/user/stderr/10.0.0.4/process000.stderr.txt"
    step_run.get_file_names.return_value = [
        "logs/job_result.txt",
        "logs/job_error.txt",
        stderr_log,
        "logs/sys/other.txt",
    ]

    def download_file(name: str, output_file_path: str) -> None:
        Path(output_file_path).parent.mkdir(parents=True, exist_ok=True)
        Path(output_file_path).write_text(f"content of {name}")

    step_run.download_file.side_effect = download_file
    run.get_children.return_value = [step_run]
    listing = mock.Mock()
    listing.to_path.return_value = ["/parallel_run_step.txt", "/failures/cam/x.png.json", "/results/a.png/stats.json"]
    small = mock.Mock()

    def download(target_path: str, overwrite: bool) -> None:
        (Path(target_path) / "failures" / "cam").mkdir(parents=True)
        (Path(target_path) / "parallel_run_step.txt").write_text('{"relative_path": "a.png"}\n')
        (Path(target_path) / "failures" / "cam" / "x.png.json").write_text(json.dumps({"error": "not a PNG"}))

    small.download.side_effect = download
    with (
        mock.patch("azureml.core.Run.get", return_value=run),
        mock.patch.object(Dataset.File, "from_files", side_effect=[listing, small]) as from_files,
    ):
        results = backend.fetch_results("r1")
    assert results.state.status == status.FAILED
    assert results.rows == ['{"relative_path": "a.png"}'] and results.failures == {"cam/x.png": {"error": "not a PNG"}}
    assert results.output_files == ["results/a.png/stats.json"]
    assert results.logs["job_error.txt"] == "content of logs/job_error.txt"
    assert (
        "logs/user/stderr/10.0.0.4/process000.stderr.txt" in results.logs and "logs/sys/other.txt" not in results.logs
    )
    downloaded = [path for _store, path in from_files.call_args_list[1].kwargs["path"]]
    prefix = "r-script-outputs/2026-11-24/r1"
    expected = [f"{prefix}/parallel_run_step.txt", f"{prefix}/failures/cam/x.png.json"]
    assert downloaded == expected, "the rows and failure records only, never the results themselves"


def test_register_reuses_the_version_for_the_same_path_and_date(backend, file_dataset) -> None:
    from azureml.core import Dataset
    from azureml.data import FileDataset

    tags = {"logical_date": "2026-11-24", "path": "r-script-inputs/2026-11-24"}
    with (
        mock.patch.object(Dataset, "get_by_name", side_effect=Exception("UserErrorException: not found")),
        mock.patch.object(FileDataset, "to_path", return_value=["/a.png", "/b/c.png"]),
        mock.patch.object(FileDataset, "register", return_value=mock.Mock(version=4)) as register,
    ):
        created = backend.register_file_dataset("r-script-inputs/2026-11-24", name="r-script-inputs", tags=tags)
    assert (created.version, created.file_count, created.reused) == (4, 2, False)
    assert register.call_args.kwargs["create_new_version"] is True
    assert register.call_args.kwargs["tags"] == {**tags, "file_count": "2"}
    existing = mock.Mock(version=4, tags={**tags, "file_count": "2"})
    with mock.patch.object(Dataset, "get_by_name", return_value=existing):
        again = backend.register_file_dataset("r-script-inputs/2026-11-24", name="r-script-inputs", tags=tags)
    assert (again.version, again.file_count, again.reused) == (4, 2, True)


def test_register_an_empty_folder_registers_nothing(backend) -> None:
    from azureml.core import Dataset
    from azureml.data import FileDataset

    with (
        mock.patch.object(Dataset, "get_by_name", side_effect=Exception("not found")),
        mock.patch.object(FileDataset, "to_path", return_value=[]),
        mock.patch.object(FileDataset, "register") as register,
    ):
        empty = backend.register_file_dataset("r-script-inputs/2026-11-30", name="n", tags={"logical_date": "x"})
    assert empty.file_count == 0 and not register.called
