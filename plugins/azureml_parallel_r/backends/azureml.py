"""The Azure ML backend (SDK v1): a FileDataset, a pipeline with one ParallelRunStep, a PipelineRun.

Everything the step needs is built from real SDK objects by small functions (:func:`build_environment`,
:func:`stage_source_directory`, :func:`build_parallel_run_step`) that run offline; only the workspace
connection and the service calls (register, submit, status, cancel, download) reach the network, and
those are retried with backoff on transient errors.

The azureml SDK is imported lazily, inside these functions: importing this module is cheap.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from azureml_parallel_r import status as run_status
from azureml_parallel_r.backends.base import (
    RUN_ID_PLACEHOLDER,
    DatasetRef,
    ParallelRunBackend,
    RunRef,
    RunRequest,
    RunResults,
    RunState,
)

if TYPE_CHECKING:
    from azureml.core import Environment, Workspace
    from azureml.pipeline.steps import ParallelRunStep

T = TypeVar("T")
log = logging.getLogger(__name__)

INCLUDE_DIR = Path(__file__).resolve().parents[3] / "include"
SHIPPED_FOLDERS = ("entry", "r")
ENTRY_SCRIPT = "entry/batch_wrapper.py"
DOCKERFILE = INCLUDE_DIR / "environment" / "Dockerfile"
INPUT_NAME = "input_files"
OUTPUT_NAME = "r_outputs"
STEP_NAME = "r-parallel-run"
RUN_KEY_TAGS = ("dag_id", "run_id", "task_id")
RESULT_FILES_LISTED = 100_000

# PipelineRun (and step run) statuses -> the backend's five.
STATUS_MAP = {
    "NotStarted": run_status.NOT_STARTED,
    "Queued": run_status.NOT_STARTED,
    "Preparing": run_status.NOT_STARTED,
    "Provisioning": run_status.NOT_STARTED,
    "Starting": run_status.NOT_STARTED,
    "Running": run_status.RUNNING,
    "Finalizing": run_status.RUNNING,
    "CancelRequested": run_status.RUNNING,
    "Finished": run_status.FINISHED,
    "Completed": run_status.FINISHED,
    "Failed": run_status.FAILED,
    "NotResponding": run_status.FAILED,
    "Canceled": run_status.CANCELED,
    "Cancelled": run_status.CANCELED,
}


def map_status(azure_status: str) -> str:
    """Map a PipelineRun status string to one of :data:`azureml_parallel_r.status.ALL` (unknown: Running)."""
    return STATUS_MAP.get(azure_status, run_status.RUNNING)


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying: connection problems, timeouts, throttling and 5xx answers."""
    import requests

    if isinstance(error, requests.RequestException | ConnectionError | TimeoutError):
        return True
    text = str(error)
    return any(code in text for code in ("429", "500", "502", "503", "504", "Too Many Requests", "timed out"))


def with_retries(call: Callable[[], T], what: str, *, attempts: int = 5, backoff: float = 2.0) -> T:
    """Run ``call``, retrying transient service errors with exponential backoff (2, 4, 8, ... s).

    :param call: the service call.
    :param what: what it does, for the log and the final error.
    :param attempts: tries in all.
    :param backoff: the first delay in seconds (doubles each time).
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = backoff * 2 ** (attempt - 1)
            log.warning("%s failed (%s), try %d of %d; retrying in %.0f s", what, exc, attempt, attempts, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class AzureMLSettings:
    """Where and how pipelines run in the workspace (from the connection's extra).

    :param compute_target: the compute cluster's name.
    :param datastore: the datastore holding inputs and outputs (default: the workspace default).
    :param environment_name: a registered environment to use (``name`` or ``name:version``); when unset,
        one is built from ``include/environment/Dockerfile``.
    :param experiment_name: default experiment.
    :param source_directory: the folder holding ``entry/`` and ``r/`` (default ``include/``).
    :param retry_backoff: first delay of the backoff on transient service errors, in seconds.
    """

    compute_target: str = "cpu-cluster"
    datastore: str | None = None
    environment_name: str | None = None
    experiment_name: str = "r-parallel-batch"
    source_directory: str = str(INCLUDE_DIR)
    retry_backoff: float = 2.0
    extra_environment_variables: dict[str, str] = field(default_factory=dict)


def stage_source_directory(source_directory: str = str(INCLUDE_DIR)) -> str:
    """Copy only what the compute needs (``entry/`` and ``r/``, no caches) into a new temporary folder.

    :param source_directory: the folder holding ``entry/`` and ``r/``.
    """
    staged = tempfile.mkdtemp(prefix="azureml-parallel-r-src-")
    for folder in SHIPPED_FOLDERS:
        origin = Path(source_directory) / folder
        if not origin.is_dir():
            raise ValueError(f"source directory {source_directory} has no {folder}/ folder")
        shutil.copytree(origin, Path(staged) / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    return staged


def build_environment(settings: AzureMLSettings, workspace: Workspace | None = None) -> Environment:
    """The step's environment: a registered one by name, or one built from ``include/environment/Dockerfile``
    (R, the R packages, Python, azureml-core and azureml-dataset-runtime[fuse])."""
    from azureml.core import Environment

    if settings.environment_name:
        if workspace is None:
            raise ValueError("a registered environment needs the workspace")
        name, _, version = settings.environment_name.partition(":")
        return with_retries(
            lambda: Environment.get(workspace, name, version or None),
            f"getting environment {settings.environment_name}",
        )
    environment = Environment("azureml-parallel-r")
    environment.docker.base_image = None
    environment.docker.base_dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    environment.python.user_managed_dependencies = True
    environment.python.interpreter_path = "python3"
    return environment


def build_parallel_run_step(
    request: RunRequest,
    *,
    dataset: Any,
    datastore: Any,
    environment: Environment,
    source_directory: str,
    compute_target: str,
    extra_environment_variables: dict[str, str] | None = None,
) -> tuple[ParallelRunStep, Any]:
    """Build the ParallelRunStep (and its OutputFileDatasetConfig) for ``request``; no network involved.

    :param request: what to run.
    :param dataset: the input FileDataset.
    :param datastore: the datastore of the outputs.
    :param environment: the step's environment.
    :param source_directory: the staged source directory (``entry/`` + ``r/``).
    :param compute_target: the compute cluster's name.
    :param extra_environment_variables: set for the entry script besides the request's own.
    """
    from azureml.data import OutputFileDatasetConfig
    from azureml.pipeline.steps import ParallelRunConfig, ParallelRunStep

    output = OutputFileDatasetConfig(name=OUTPUT_NAME, destination=(datastore, request.output_path))
    config = ParallelRunConfig(
        environment=environment,
        entry_script=ENTRY_SCRIPT,
        source_directory=source_directory,
        error_threshold=request.error_threshold,
        output_action="append_row",
        append_row_file_name=request.append_row_file_name,
        compute_target=compute_target,
        node_count=request.node_count,
        process_count_per_node=request.process_count_per_node,
        mini_batch_size=request.mini_batch_size,
        run_invocation_timeout=int(request.run_invocation_timeout),
        run_max_try=request.run_max_try,
        allowed_failed_count=request.allowed_failed_count,
        allowed_failed_percent=request.allowed_failed_percent,
        environment_variables={**(extra_environment_variables or {}), **request.environment_variables},
    )
    step = ParallelRunStep(
        name=STEP_NAME,
        parallel_run_config=config,
        inputs=[dataset.as_named_input(INPUT_NAME).as_mount()],
        output=output,
        arguments=request.entry_arguments(input_name=INPUT_NAME),
        allow_reuse=False,
    )
    return step, output


class AzureMLBackend(ParallelRunBackend):
    """Runs the pipelines in an Azure ML workspace.

    :param workspace_factory: returns the connected ``Workspace`` (built by the hook from the connection).
    :param settings: compute, datastore, environment and experiment.
    """

    engine = "azureml"

    def __init__(self, workspace_factory: Callable[[], Workspace], settings: AzureMLSettings) -> None:
        self._workspace_factory = workspace_factory
        self.settings = settings
        self._workspace: Workspace | None = None

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = with_retries(
                self._workspace_factory, "connecting to the workspace", backoff=self._backoff
            )
        return self._workspace

    @property
    def _backoff(self) -> float:
        return self.settings.retry_backoff

    def _retry(self, call: Callable[[], T], what: str) -> T:
        return with_retries(call, what, backoff=self._backoff)

    def datastore(self) -> Any:
        from azureml.core import Datastore

        if self.settings.datastore:
            return self._retry(lambda: Datastore.get(self.workspace, self.settings.datastore), "getting the datastore")
        return self._retry(self.workspace.get_default_datastore, "getting the default datastore")

    # -- datasets ---------------------------------------------------------------------------------------

    def register_file_dataset(self, path: str, *, name: str, tags: dict[str, str]) -> DatasetRef:
        from azureml.core import Dataset

        existing = self._find_dataset_version(name, path, tags.get("logical_date"))
        if existing is not None:
            return existing
        dataset = Dataset.File.from_files(path=(self.datastore(), f"{path.rstrip('/')}/**"), validate=False)
        files = self._retry(dataset.to_path, f"listing the files under {path}")
        if not files:
            return DatasetRef(name, 0, path, 0)
        registered = self._retry(
            lambda: dataset.register(
                self.workspace, name, tags={**tags, "file_count": str(len(files))}, create_new_version=True
            ),
            f"registering dataset {name}",
        )
        return DatasetRef(name, int(registered.version), path, len(files))

    def _find_dataset_version(self, name: str, path: str, logical_date: str | None) -> DatasetRef | None:
        """The most recent version registered for the same path and date (looks at the last 50 versions)."""
        from azureml.core import Dataset

        try:
            latest = self._retry(lambda: Dataset.get_by_name(self.workspace, name), f"getting dataset {name}")
        except Exception as exc:
            if is_transient(exc):
                raise
            return None  # not registered yet
        for version in range(int(latest.version), max(0, int(latest.version) - 50), -1):
            candidate = latest if version == int(latest.version) else self._retry(
                lambda v=version: Dataset.get_by_name(self.workspace, name, version=v), f"getting {name} v{version}"
            )  # fmt: skip
            tags = candidate.tags or {}
            if tags.get("path") == path and tags.get("logical_date") == logical_date:
                return DatasetRef(name, version, path, int(tags.get("file_count", 0)), reused=True)
        return None

    def list_dataset_files(self, dataset: DatasetRef) -> list[str]:
        from azureml.core import Dataset

        registered = self._retry(
            lambda: Dataset.get_by_name(self.workspace, dataset.name, version=dataset.version), "getting the dataset"
        )
        return sorted(path.lstrip("/") for path in self._retry(registered.to_path, "listing the dataset"))

    # -- runs -------------------------------------------------------------------------------------------

    def submit(self, request: RunRequest) -> RunRef:
        from azureml.core import Dataset, Experiment
        from azureml.pipeline.core import Pipeline

        workspace = self.workspace
        dataset = self._retry(
            lambda: Dataset.get_by_name(workspace, request.dataset.name, version=request.dataset.version),
            f"getting dataset {request.dataset.name} v{request.dataset.version}",
        )
        staged = stage_source_directory(self.settings.source_directory)
        try:
            step, _output = build_parallel_run_step(
                request,
                dataset=dataset,
                datastore=self.datastore(),
                environment=build_environment(self.settings, workspace),
                source_directory=staged,
                compute_target=self.settings.compute_target,
                extra_environment_variables=self.settings.extra_environment_variables,
            )
            pipeline = Pipeline(workspace=workspace, steps=[step], description="azureml-parallel-r")
            experiment = Experiment(workspace, request.experiment_name or self.settings.experiment_name)
            tags = {
                **request.tags,
                **{f"airflow_{k}": v for k, v in request.run_key.items()},
                "output_path": request.output_path,
            }
            run = self._retry(lambda: experiment.submit(pipeline, tags=tags), "submitting the pipeline")
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        return RunRef(
            run_id=run.id,
            url=run.get_portal_url(),
            output_path=request.output_path.replace(RUN_ID_PLACEHOLDER, run.id),
            engine=self.engine,
        )

    def find_run(self, run_key: dict[str, str], *, experiment_name: str = "") -> RunRef | None:
        from azureml.core import Experiment

        experiment = Experiment(self.workspace, experiment_name or self.settings.experiment_name)
        tags = {f"airflow_{k}": v for k, v in run_key.items() if k in RUN_KEY_TAGS}
        runs = self._retry(lambda: list(experiment.get_runs(type="azureml.PipelineRun", tags=tags)), "listing runs")
        for run in runs:  # newest first
            if map_status(run.get_status()) not in run_status.UNSUCCESSFUL:
                return RunRef(run.id, run.get_portal_url(), _output_path(run), self.engine, reattached=True)
        return None

    def _pipeline_run(self, run_id: str) -> Any:
        from azureml.core import Run

        return self._retry(lambda: Run.get(self.workspace, run_id), f"getting pipeline run {run_id}")

    def get_status(self, run_id: str) -> RunState:
        run = self._pipeline_run(run_id)
        azure_status = self._retry(run.get_status, f"reading the status of {run_id}")
        state = map_status(azure_status)
        message = azure_status if state == azure_status else f"{state} (Azure ML: {azure_status})"
        return RunState(run_id=run_id, status=state, message=message)

    def cancel(self, run_id: str) -> RunState:
        run = self._pipeline_run(run_id)
        if map_status(run.get_status()) not in run_status.TERMINAL:
            self._retry(run.cancel, f"canceling {run_id}")
        return self.get_status(run_id)

    def fetch_results(self, run_id: str) -> RunResults:
        """Download the rows, failure records and job logs, and list the result files (names only)."""
        from azureml.core import Dataset

        state = self.get_status(run_id)
        run = self._pipeline_run(run_id)
        output_path = _output_path(run)
        results = RunResults(state)
        with tempfile.TemporaryDirectory() as scratch:
            step_runs = [r for r in self._retry(lambda: list(run.get_children()), "listing step runs")]
            for step_run in step_runs:
                results.logs.update(self._download_logs(step_run, scratch))
            if output_path:
                datastore = self.datastore()
                outputs = Dataset.File.from_files(path=(datastore, f"{output_path}/**"), validate=False)
                names = [p.lstrip("/") for p in self._retry(outputs.to_path, "listing the outputs")]
                results.output_files = sorted(n for n in names if n.startswith("results/"))[:RESULT_FILES_LISTED]
                wanted = [(datastore, f"{output_path}/{n}") for n in names
                          if n == "parallel_run_step.txt" or n.startswith("failures/")]  # fmt: skip
                if wanted:  # the rows and failure records only, never the results themselves
                    small = Dataset.File.from_files(path=wanted, validate=False)
                    target = os.path.join(scratch, "outputs")
                    self._retry(lambda: small.download(target_path=target, overwrite=True), "downloading outputs")
                    results.rows, results.failures = _read_rows_and_failures(Path(target))
        return results

    def _download_logs(self, step_run: Any, scratch: str) -> dict[str, str]:
        """The step run's job logs: job_result.txt, job_error.txt and the tail of each user stderr log."""
        logs = {}
        names = self._retry(step_run.get_file_names, "listing step run files")
        for name in names:
            base = os.path.basename(name)
            if base in ("job_result.txt", "job_error.txt") or ("/user/" in name and "stderr" in name):
                target = os.path.join(scratch, "logs", name.replace("/", "__"))
                self._retry(
                    lambda n=name, t=target: step_run.download_file(n, output_file_path=t), f"downloading {name}"
                )
                with open(target, encoding="utf-8", errors="replace") as handle:
                    logs[base if base.startswith("job_") else name] = handle.read()[-8000:]
        return logs

    def write_output_file(self, run_id: str, name: str, content: bytes) -> str:
        output_path = _output_path(self._pipeline_run(run_id))
        with tempfile.TemporaryDirectory() as scratch:
            local = os.path.join(scratch, name)
            with open(local, "wb") as handle:
                handle.write(content)
            datastore = self.datastore()
            self._retry(
                lambda: datastore.upload_files([local], target_path=output_path, overwrite=True, show_progress=False),
                f"uploading {name}",
            )
        return f"azureml://datastores/{datastore.name}/paths/{output_path}/{name}"


def _output_path(run: Any) -> str:
    """The run's output folder on the datastore, from the ``output_path`` tag set at submission."""
    return (run.get_tags() or {}).get("output_path", "").replace(RUN_ID_PLACEHOLDER, run.id)


def _read_rows_and_failures(folder: Path) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Read the append_row file and the failure records from a downloaded output folder."""
    import json

    rows: list[str] = []
    failures: dict[str, dict[str, Any]] = {}
    for path in folder.rglob("parallel_run_step.txt"):
        rows.extend(path.read_text(encoding="utf-8").splitlines())
    for path in folder.rglob("*.json"):
        parts = path.relative_to(folder).parts
        if "failures" in parts:
            relative = "/".join(parts[parts.index("failures") + 1 :])[: -len(".json")]
            failures[relative] = json.loads(path.read_text(encoding="utf-8"))
    return rows, failures
