"""The Azure ML backend (SDK v1): a FileDataset, a pipeline with one ParallelRunStep, a PipelineRun.

The control plane goes through azureml-core and azureml-pipeline (register, submit, status, cancel, step
logs); the data plane (listing inputs, reading a run's rows, failure records and result names, writing
``validation.json``) goes straight to the datastore's blob container with azure-storage-blob, paged, with
the datastore's own account, container and credential. What the SDK and the service really do, and how the
backend meets it (each point is checked by ``tests/backends/test_azureml.py`` at the wire):

- A FileDataset over a missing or empty folder makes the dataflow raise NotFound rather than return no
  files, so the input folder is listed with the blob client: a missing or empty folder is 0 files.
- ``{run-id}`` in an ``OutputFileDatasetConfig`` destination is filled in by the service with the id of the
  run that produces the output, the step run (azureml/data/output_dataset_config.py). The backend picks a
  concrete folder before submitting instead (``{run-id}`` becomes a submission id) and records it in the
  run's description and tags, so it never has to guess where the outputs are.
- ``Experiment.submit(pipeline, tags=...)`` creates the run, then sets its tags in a second call
  (azureml/core/experiment.py, ``submit``). The run key therefore also goes into the pipeline's description,
  which the service stores with the run when it creates it; reattach looks at tags, then descriptions.
  Submission is never retried blindly: after any error, the run is looked up by its key first.
- The runtime lower-cases ``append_row_file_name``: the name read back is the lower-cased one.
- Transient errors are recognised by exception type and HTTP status (408, 429, 5xx, connection and read
  errors), never by message text, and ``Retry-After`` is honoured; :func:`with_retries` is the backend's one
  retry layer: the blob client's own retries are off. Below it, azureml-core's REST clients keep a retry loop
  of their own that cannot be switched off from outside the SDK (azureml/_restclient/clientbase.py,
  ``_execute_func_internal``: 3 retries of 408/429/5xx, after ``AZUREML_DEFAULT_BACKOFF`` seconds (32) for a
  429, without reading ``Retry-After``); an error that outlasts it reaches :func:`with_retries`.

The azureml SDK and azure-storage-blob are imported lazily, inside these functions: importing this module is
cheap.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
    error_text,
    failure_key,
    listing_fingerprint,
    split_rows,
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
RUN_KEY_TAGS = ("dag_id", "run_id", "task_id", "attempt")
DESCRIPTION_PREFIX = "azureml-parallel-r "
DESCRIPTIONS_SCANNED = 100
LOG_TAIL_CHARS = 8000
JOB_LOGS = ("logs/job_error.txt", "logs/job_result.txt")

# PipelineRun (and step run) statuses of SDK v1, and the v2 job statuses (azure-ai-ml's JobStatus, shared by
# both Azure engines) -> the backend's five. azure-ai-ml ends its own wait on Completed, Failed, Canceled,
# NotResponding and Paused (RunHistoryConstants.TERMINAL_STATUSES, azure/ai/ml/operations/_run_history_constants.py):
# a paused job does not go on by itself, so it is an unsuccessful end here too; Unknown is still running.
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
    "Paused": run_status.FAILED,
    "Unknown": run_status.RUNNING,
}


def map_status(azure_status: str) -> str:
    """Map a PipelineRun status string to one of :data:`azureml_parallel_r.status.ALL` (unknown: Running)."""
    return STATUS_MAP.get(azure_status, run_status.RUNNING)


# -- transient errors and the one retry layer ------------------------------------------------------------


def _error_chain(error: BaseException) -> list[BaseException]:
    """The error and what it wraps (azureml's ``inner_exception``, ``raise ... from``), where a status or a
    transport error may sit."""
    return [e for e in (error, getattr(error, "inner_exception", None), error.__cause__) if e is not None]


def http_status(error: BaseException) -> int | None:
    """The HTTP status behind an SDK or transport exception, if it carries one."""
    for candidate in _error_chain(error):
        response = getattr(candidate, "response", None)
        for value in (getattr(candidate, "status_code", None), getattr(response, "status_code", None),
                      getattr(response, "status", None)):  # fmt: skip
            if isinstance(value, int):
                return value
    return None


def retry_after(error: BaseException) -> float | None:
    """Seconds the service asked to wait (``Retry-After``: delta-seconds or an HTTP date), if it did."""
    for candidate in _error_chain(error):
        headers = getattr(getattr(candidate, "response", None), "headers", None)
        value = headers.get("Retry-After") if headers is not None else None
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            return max(0.0, (parsed - datetime.now(UTC)).total_seconds())
    return None


def describe_error(error: BaseException) -> str:
    """``Type (HTTP status): message`` for any exception (see :func:`error_text`)."""
    status = http_status(error)
    text = error_text(error)
    return text.replace(type(error).__name__, f"{type(error).__name__} (HTTP {status})", 1) if status else text


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying, by type and HTTP status as azure-core's RetryPolicy decides: 408, 429
    and 5xx answers, connection and read errors, timeouts. Never by the text of a message."""
    import requests
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    status = http_status(error)
    if status is not None:
        return status in (408, 429) or 500 <= status <= 599
    transient = (requests.ConnectionError, requests.Timeout, ServiceRequestError, ServiceResponseError,
                 ConnectionError, TimeoutError)  # fmt: skip
    return any(isinstance(e, transient) for e in _error_chain(error))


def with_retries(
    call: Callable[[], T],
    what: str,
    *,
    attempts: int = 5,
    backoff: float = 2.0,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run ``call``, retrying transient service errors: exponential backoff (2, 4, 8, ... s), or what the
    service's ``Retry-After`` asks when that is longer.

    :param call: the service call.
    :param what: what it does, for the log and the final error.
    :param attempts: tries in all.
    :param backoff: the first delay in seconds (doubles each time).
    :param sleep: how to wait (default ``time.sleep``, looked up at each wait; tests pass a recorder).
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = max(backoff * 2 ** (attempt - 1), retry_after(exc) or 0.0)
            log.warning("%s failed (%s), try %d of %d; retrying in %.0f s", what, describe_error(exc), attempt,
                        attempts, delay)  # fmt: skip
            (sleep or time.sleep)(delay)
    raise AssertionError("unreachable")


# -- what the run records about itself --------------------------------------------------------------------


def submission_id() -> str:
    """A new id for a submission's output folder, chosen before the run exists (time-ordered, unique)."""
    return f"{datetime.now(UTC):%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:8]}"


def run_description(run_key: dict[str, str], output_path: str, rows_file: str) -> str:
    """The pipeline's description: the run key and where the outputs go, stored with the run at creation."""
    record = {"run_key": {k: run_key[k] for k in RUN_KEY_TAGS if k in run_key}, "output_path": output_path,
              "rows_file": rows_file}  # fmt: skip
    return DESCRIPTION_PREFIX + json.dumps(record, sort_keys=True, separators=(",", ":"))


def parse_description(description: str | None) -> dict[str, Any]:
    """The record :func:`run_description` wrote, or ``{}`` for any other description."""
    if not description or not description.startswith(DESCRIPTION_PREFIX):
        return {}
    try:
        record = json.loads(description[len(DESCRIPTION_PREFIX) :])
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


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
    :param extra_environment_variables: set for the entry script besides the request's own.
    :param r_script_dirs: folders besides the source directory that R scripts may come from (they must exist
        on the compute nodes too, e.g. in the image; scripts in the source directory ship with the step).
    """

    compute_target: str = "cpu-cluster"
    datastore: str | None = None
    environment_name: str | None = None
    experiment_name: str = "r-parallel-batch"
    source_directory: str = str(INCLUDE_DIR)
    retry_backoff: float = 2.0
    extra_environment_variables: dict[str, str] = field(default_factory=dict)
    r_script_dirs: tuple[str, ...] = ()


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
            backoff=settings.retry_backoff,
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
    output_path: str,
    extra_environment_variables: dict[str, str] | None = None,
) -> tuple[ParallelRunStep, Any]:
    """Build the ParallelRunStep (and its OutputFileDatasetConfig) for ``request``; no network involved.

    :param request: what to run.
    :param dataset: the input FileDataset.
    :param datastore: the datastore of the outputs.
    :param environment: the step's environment.
    :param source_directory: the staged source directory (``entry/`` + ``r/``).
    :param compute_target: the compute cluster's name.
    :param output_path: the concrete output folder on the datastore (no ``{run-id}`` left in it).
    :param extra_environment_variables: set for the entry script besides the request's own.
    """
    from azureml.data import OutputFileDatasetConfig
    from azureml.pipeline.steps import ParallelRunConfig, ParallelRunStep

    settings = request.settings
    output = OutputFileDatasetConfig(name=OUTPUT_NAME, destination=(datastore, output_path))
    config = ParallelRunConfig(
        environment=environment,
        entry_script=ENTRY_SCRIPT,
        source_directory=source_directory,
        error_threshold=settings.error_threshold,
        output_action=settings.output_action,
        append_row_file_name=settings.append_row_file_name,
        compute_target=compute_target,
        node_count=settings.node_count,
        process_count_per_node=settings.process_count_per_node,
        mini_batch_size=settings.mini_batch_size,
        run_invocation_timeout=int(settings.invocation_timeout),
        run_max_try=settings.run_max_try,
        allowed_failed_count=settings.allowed_failed_count,
        allowed_failed_percent=settings.allowed_failed_percent,
        environment_variables={**(extra_environment_variables or {}), **settings.environment_variables},
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


class SubmissionError(RuntimeError):
    """Submitting failed and no run with the task's key exists: nothing was left running."""


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
        self._datastore: Any = None
        self.source_directory = settings.source_directory
        self.r_script_dirs = settings.r_script_dirs

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = self._retry(self._workspace_factory, "connecting to the workspace")
        return self._workspace

    def _retry(self, call: Callable[[], T], what: str) -> T:
        return with_retries(call, what, backoff=self.settings.retry_backoff)

    def datastore(self) -> Any:
        from azureml.core import Datastore

        if self._datastore is None:
            if self.settings.datastore:
                self._datastore = self._retry(
                    lambda: Datastore.get(self.workspace, self.settings.datastore), "getting the datastore"
                )
            else:
                self._datastore = self._retry(self.workspace.get_default_datastore, "getting the default datastore")
        return self._datastore

    def container(self) -> Any:
        """The datastore's blob container (azure-storage-blob), with the datastore's credential: its account
        key or SAS token, else the workspace's identity (an identity-based datastore). Its own retries are
        off: :func:`with_retries` is the one retry layer."""
        from azure.storage.blob import ContainerClient

        store = self.datastore()
        account_url = f"{store.protocol or 'https'}://{store.account_name}.blob.{store.endpoint or 'core.windows.net'}"
        credential = store.account_key or store.sas_token or self.workspace._auth
        return ContainerClient(account_url, store.container_name, credential=credential, retry_total=0)

    def _list_blobs(self, prefix: str) -> Iterator[str]:
        """Names below ``prefix/`` relative to it, every page (each page read is retried on its own)."""
        for name, _size, _etag in self._list_blob_entries(prefix):
            yield name

    def _list_blob_entries(self, prefix: str) -> Iterator[tuple[str, int, str]]:
        """(name relative to ``prefix/``, size, ETag) of every blob below it, page by page."""
        container = self.container()
        base = prefix.rstrip("/") + "/"
        pages = container.list_blobs(name_starts_with=base, results_per_page=5000).by_page()
        while True:
            page = self._retry(lambda: next(pages, None), f"listing {base}")
            if page is None:
                return
            for blob in self._retry(lambda p=page: list(p), f"listing {base}"):
                yield blob.name[len(base) :], int(blob.size or 0), str(blob.etag or "")

    def _download_text(self, blob: str) -> str | None:
        """A blob's text, or None when it does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        client = self.container().get_blob_client(blob)
        try:
            data = self._retry(lambda: client.download_blob().readall(), f"downloading {blob}")
        except ResourceNotFoundError:
            return None
        return data.decode("utf-8", errors="replace")

    # -- datasets ---------------------------------------------------------------------------------------

    def register_file_dataset(self, path: str, *, name: str, tags: dict[str, str]) -> DatasetRef:
        """Register ``path`` as the next version of ``name``, or reuse the latest version when it was
        registered for the same path, logical date and files (names, sizes, ETags: a folder whose files changed
        gets a new version). A missing or empty folder is not registered (0 files). The version's file list
        is kept on the datastore (``azureml-parallel-r/datasets/<name>/v<version>.files.json``) for validation.

        Dataset tags belong to the dataset, not to a version (the SDK's DatasetDto carries them; definitions
        do not), so only the latest version can be matched by its tags.
        """
        from azureml.core import Dataset

        entries = list(self._list_blob_entries(path))
        if not entries:
            return DatasetRef(name, 0, path, 0)
        fingerprint = listing_fingerprint(entries)
        latest = self._latest_dataset(name)
        if latest is not None:
            latest_tags = latest.tags or {}
            same = latest_tags.get("path") == path and latest_tags.get("logical_date") == tags.get("logical_date")
            if same and latest_tags.get("fingerprint") == fingerprint:
                return DatasetRef(name, int(latest.version), path, len(entries), reused=True)
        dataset = Dataset.File.from_files(path=(self.datastore(), f"{path.rstrip('/')}/**"), validate=False)
        registered = self._retry(
            lambda: dataset.register(
                self.workspace,
                name,
                tags={**tags, "file_count": str(len(entries)), "fingerprint": fingerprint},
                create_new_version=True,
            ),
            f"registering dataset {name}",
        )
        version = int(registered.version)
        record = json.dumps({"path": path, "files": sorted(entry[0] for entry in entries)}).encode()
        blob = self.container().get_blob_client(_files_record(name, version))
        self._retry(lambda: blob.upload_blob(record, overwrite=True), f"recording the files of {name} v{version}")
        return DatasetRef(name, version, path, len(entries))

    def _latest_dataset(self, name: str) -> Any:
        from azureml.core import Dataset
        from azureml.exceptions import UserErrorException

        try:
            return self._retry(lambda: Dataset.get_by_name(self.workspace, name), f"getting dataset {name}")
        except UserErrorException:  # not registered yet
            return None

    def list_dataset_files(self, dataset: DatasetRef) -> list[str]:
        """The files of the dataset version as registered (a file added to the folder later is not one)."""
        recorded = self._download_text(_files_record(dataset.name, dataset.version))
        if recorded is not None:
            return list(json.loads(recorded)["files"])
        return sorted(self._list_blobs(dataset.path))

    # -- runs -------------------------------------------------------------------------------------------

    def submit(self, request: RunRequest) -> RunRef:
        from azureml.core import Dataset, Experiment
        from azureml.pipeline.core import Pipeline

        workspace = self.workspace
        experiment_name = request.experiment_name or self.settings.experiment_name
        output_path = request.output_path.replace(RUN_ID_PLACEHOLDER, submission_id())
        rows_file = request.settings.rows_file_name
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
                output_path=output_path,
                extra_environment_variables=self.settings.extra_environment_variables,
            )
            pipeline = Pipeline(
                workspace=workspace, steps=[step], description=run_description(request.run_key, output_path, rows_file)
            )
            experiment = Experiment(workspace, experiment_name)
            try:
                run = experiment.submit(pipeline)  # never retried: a retry could create a second run
            except Exception as exc:
                found = self.find_run(request.run_key, experiment_name=experiment_name)
                if found is not None:
                    log.warning("Submitting raised %s, but the run %s with this task's key exists: using it",
                                type(exc).__name__, found.run_id)  # fmt: skip
                    return found
                raise SubmissionError(
                    f"submitting the pipeline to experiment {experiment_name!r} failed and no run with this task's "
                    f"key exists, so nothing is left running: {describe_error(exc)}"
                ) from exc
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        tags = {
            **request.tags,
            **{f"airflow_{k}": v for k, v in request.run_key.items()},
            "output_path": output_path,
            "rows_file": rows_file,
        }
        try:
            self._retry(lambda: run.set_tags(tags), f"tagging pipeline run {run.id}")
        except Exception as exc:  # the run exists and its description carries the key: do not fail the task
            log.warning("Could not tag pipeline run %s (%s); reattach finds it by its description", run.id,
                        describe_error(exc))  # fmt: skip
        return RunRef(run_id=run.id, url=run.get_portal_url(), output_path=output_path, engine=self.engine)

    def find_run(self, run_key: dict[str, str], *, experiment_name: str = "") -> RunRef | None:
        """The newest live or finished pipeline run of ``run_key``: by its tags, else (a run whose tagging
        failed) by the key in its description among the experiment's newest pipeline runs."""
        from azureml.core import Experiment

        experiment = Experiment(self.workspace, experiment_name or self.settings.experiment_name)
        key = {k: run_key[k] for k in RUN_KEY_TAGS if k in run_key}
        tags = {f"airflow_{k}": v for k, v in key.items()}
        tagged = self._retry(lambda: list(experiment.get_runs(type="azureml.PipelineRun", tags=tags)), "listing runs")
        for run in tagged:
            if map_status(self._retry(run.get_status, f"reading {run.id}")) not in run_status.UNSUCCESSFUL:
                return self._ref(run, reattached=True)

        def newest() -> list[Any]:
            runs = experiment.get_runs(type="azureml.PipelineRun")
            return [run for _, run in zip(range(DESCRIPTIONS_SCANNED), runs, strict=False)]

        for run in self._retry(newest, "listing runs"):
            matches = parse_description(run.description).get("run_key") == key
            if matches and map_status(self._retry(run.get_status, f"reading {run.id}")) not in run_status.UNSUCCESSFUL:
                return self._ref(run, reattached=True)
        return None

    def _ref(self, run: Any, *, reattached: bool = False) -> RunRef:
        return RunRef(run.id, run.get_portal_url(), _output_path(run), self.engine, reattached=reattached)

    def _pipeline_run(self, run_id: str) -> Any:
        from azureml.core import Run

        return self._retry(lambda: Run.get(self.workspace, run_id), f"getting pipeline run {run_id}")

    def get_status(self, run_id: str) -> RunState:
        run = self._pipeline_run(run_id)
        azure_status = self._retry(run.get_status, f"reading the status of {run_id}")
        state = map_status(azure_status)
        message = azure_status if state == azure_status else f"{state} (Azure ML: {azure_status})"
        started_at = ended_at = None
        if state in run_status.TERMINAL:  # the run's own times, for throughput (validation.json)
            details = self._retry(run.get_details, f"reading the details of {run_id}")
            started_at, ended_at = _epoch(details.get("startTimeUtc")), _epoch(details.get("endTimeUtc"))
        return RunState(run_id=run_id, status=state, message=message, started_at=started_at, ended_at=ended_at)

    def cancel(self, run_id: str) -> RunState:
        run = self._pipeline_run(run_id)
        if map_status(self._retry(run.get_status, f"reading the status of {run_id}")) not in run_status.TERMINAL:
            self._retry(run.cancel, f"canceling {run_id}")
        return self.get_status(run_id)

    def fetch_results(self, run_id: str) -> RunResults:
        """Read the rows file, the failure records and the names under ``results/`` from the datastore, and the
        job's logs from the step run. Each part fails alone: what could not be read is said in the logs."""
        state = self.get_status(run_id)
        run = self._pipeline_run(run_id)
        output_path = _output_path(run)
        rows_file = _run_record(run).get("rows_file", "parallel_run_step.txt")
        results = RunResults(state)
        problems: list[str] = []

        def part(what: str, read: Callable[[], None]) -> None:
            try:
                read()
            except Exception as exc:
                problems.append(f"{what}: {describe_error(exc)}")
                log.warning("Could not read %s of run %s: %s", what, run_id, describe_error(exc))

        def rows() -> None:
            text = self._download_text(f"{output_path}/{rows_file}")
            results.rows = split_rows(text) if text else []

        def failures() -> None:
            for name in self._list_blobs(f"{output_path}/failures"):
                if name.endswith(".json"):
                    text = self._download_text(f"{output_path}/failures/{name}")
                    if text is not None:
                        record = json.loads(text)
                        results.failures[failure_key(name, record)] = record

        def outputs() -> None:
            results.output_files = sorted(f"results/{name}" for name in self._list_blobs(f"{output_path}/results"))

        part("the job logs", lambda: results.logs.update(self._job_logs(run)))
        if output_path:
            part(f"the rows file {rows_file}", rows)
            part("the failure records", failures)
            part("the result file names", outputs)
        else:
            problems.append(f"run {run_id} records no output folder (not submitted by this backend?)")
        if problems:
            results.logs["fetch_problems.txt"] = "\n".join(problems)
        return results

    def _job_logs(self, run: Any) -> dict[str, str]:
        """The step run's job logs (job_error.txt, job_result.txt) and the tails of the user stderr logs."""
        logs: dict[str, str] = {}
        with tempfile.TemporaryDirectory() as scratch:
            for step_run in self._retry(lambda: list(run.get_children()), "listing step runs"):
                names = self._retry(step_run.get_file_names, "listing step run logs")
                wanted = [n for n in names if n in JOB_LOGS or ("/user/" in n and "stderr" in n)]
                for name in wanted:
                    target = os.path.join(scratch, name.replace("/", "__"))
                    self._retry(lambda s=step_run, n=name, t=target: s.download_file(n, output_file_path=t),
                                f"downloading {name}")  # fmt: skip
                    with open(target, encoding="utf-8", errors="replace") as handle:
                        logs[os.path.basename(name) if name in JOB_LOGS else name] = handle.read()[-LOG_TAIL_CHARS:]
        return logs

    def write_output_file(self, run_id: str, name: str, content: bytes) -> str:
        output_path = _output_path(self._pipeline_run(run_id))
        blob = self.container().get_blob_client(f"{output_path}/{name}")
        self._retry(lambda: blob.upload_blob(content, overwrite=True), f"uploading {name}")
        return f"azureml://datastores/{self.datastore().name}/paths/{output_path}/{name}"


def _files_record(name: str, version: int) -> str:
    """Where a dataset version's file list is kept on the datastore."""
    return f"azureml-parallel-r/datasets/{name}/v{version}.files.json"


def _run_record(run: Any) -> dict[str, Any]:
    """What the backend recorded with the run: its tags, completed by its description."""
    return {**parse_description(getattr(run, "description", None)), **(run.get_tags() or {})}


def _output_path(run: Any) -> str:
    """The run's output folder on the datastore, as recorded at submission."""
    return _run_record(run).get("output_path", "")


def _epoch(value: str | None) -> float | None:
    """Epoch seconds of an ISO time from the service (``2026-11-24T10:00:00.123Z``)."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
