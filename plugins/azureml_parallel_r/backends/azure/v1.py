"""The Azure ML backend (SDK v1): a FileDataset, a pipeline with one ParallelRunStep, a PipelineRun.

The control plane goes through azureml-core and azureml-pipeline (register, submit, status, cancel, step
logs); the data plane (listing inputs, reading a run's rows, failure records and result names, writing
``validation.json``) goes straight to the datastore's blob container with azure-storage-blob, paged, with
the datastore's own account, container and credential. What the SDK and the service really do, and how the
backend meets it (each point is checked by ``tests/backends/azure/test_v1.py`` at the wire):

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
- Transient errors are retried in one layer, :func:`~azureml_parallel_r.backends.azure.errors.with_retries`
  (shared with the v2 engine, like the datastore access in :mod:`.storage` and the results reading in
  :mod:`.runs`).

The azureml SDK and azure-storage-blob are imported lazily, inside these functions: importing this module is
cheap.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from azureml_parallel_r import status as run_status
from azureml_parallel_r.backends.azure.datastore_access import DatastoreAccess, v1_access
from azureml_parallel_r.backends.azure.errors import describe_error, with_retries
from azureml_parallel_r.backends.azure.runs import (
    RUN_KEY_TAGS,
    azure_state,
    job_log_name,
    recorded_dataset,
    run_tags,
)
from azureml_parallel_r.backends.azure.storage import (
    DatastoreBlobs,
    datastore_uri,
    workspace_uri,
)
from azureml_parallel_r.backends.azure.v1_datasets import V1Datasets
from azureml_parallel_r.backends.azure.v1_step import (
    build_environment,
    build_parallel_run_step,
    parse_description,
    run_description,
    submission_id,
)
from azureml_parallel_r.backends.azure.workspace import ASSUMED_PROCESSES_PER_NODE, WorkspaceSettings
from azureml_parallel_r.backends.base import ParallelRunBackend
from azureml_parallel_r.backends.results import collect_results
from azureml_parallel_r.job_identity import check_v1_identity
from azureml_parallel_r.models import (
    LOG_TAIL_CHARS,
    RUN_ID_PLACEHOLDER,
    RunRef,
    RunRequest,
    RunResults,
    RunState,
    StorageLocation,
)
from azureml_parallel_r.run_settings import DEFAULT_APPEND_ROW_FILE_NAME
from azureml_parallel_r.shipped_code import stage_source_directory

if TYPE_CHECKING:
    from azureml.core import Workspace

    from azureml_parallel_r.preflight import Check

T = TypeVar("T")
log = logging.getLogger(__name__)

DESCRIPTIONS_SCANNED = 100


class SubmissionError(RuntimeError):
    """Submitting failed and no run with the task's key exists: nothing was left running."""


class AzureMLBackend(V1Datasets, ParallelRunBackend):
    """Runs the pipelines in an Azure ML workspace.

    :param workspace_factory: returns the connected ``Workspace`` (built by the hook from the connection).
    :param settings: compute, datastore, environment and experiment.
    :param credential: the connection's azure-identity credential, which reads an identity-based datastore (the
        SDK's own authentication object cannot: its ``get_token`` answers with a token for Azure Resource Manager
        whatever scope it is asked for, azureml/core/authentication.py, and Azure Storage refuses that audience).
    """

    engine = "azureml"
    assumed_processes_per_node = ASSUMED_PROCESSES_PER_NODE

    def __init__(
        self, workspace_factory: Callable[[], Workspace], settings: WorkspaceSettings, credential: Any = None
    ) -> None:
        self._workspace_factory = workspace_factory
        self.settings = settings
        self.credential = credential
        self._workspace: Workspace | None = None
        self._datastore: Any = None
        self._blobs: DatastoreBlobs | None = None
        self.source_directory = settings.source_directory
        self.r_script_dirs = settings.r_script_dirs
        self.r_packages = settings.r_packages

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

    def access(self) -> DatastoreAccess:
        """The datastore's kind, where its blobs are and what reads them (:mod:`.datastore_access`)."""
        return v1_access(self.datastore())

    def container(self) -> Any:
        """The datastore's blob container (azure-storage-blob), with the datastore's credential: its account key,
        SAS token or service principal, else the connection's identity (an identity-based datastore)."""
        return self.access().client(self.credential, self.settings.authority)

    def blobs(self) -> DatastoreBlobs:
        """The datastore's blobs, read and written with this backend's retries (a method on both engines)."""
        if self._blobs is None:
            self._blobs = DatastoreBlobs(self.container, self._retry)
        return self._blobs

    def preflight_checks(self) -> list[Check]:
        from azureml_parallel_r.backends.azure.preflight_checks import azure_checks

        return azure_checks(self)

    def workspace_answers(self) -> str:
        workspace = self.workspace
        return f"workspace {workspace.name} answers (resource group {workspace.resource_group})"

    def compute_summary(self) -> dict[str, Any]:
        """The cluster's VM size, node counts and managed identity (azureml-core's ``AmlCompute``)."""
        from azureml.core.compute import ComputeTarget

        from azureml_parallel_r.backends.azure.preflight_checks import compute_summary

        name = self.settings.compute_target
        target = self._retry(lambda: ComputeTarget(workspace=self.workspace, name=name), f"getting compute {name}")
        scale = getattr(target, "scale_settings", None)
        return compute_summary(
            name,
            getattr(target, "vm_size", None) or target.type,
            getattr(scale, "minimum_node_count", None),
            getattr(scale, "maximum_node_count", None),
            getattr(target, "identity_type", None),
        )

    def environment_summary(self) -> str:
        """The registered environment the connection names, read; else the image that will be built."""
        from azureml_parallel_r.backends.azure.preflight_checks import built_image_line

        if not self.settings.environment_name:
            return built_image_line()
        environment = build_environment(self.settings, self.workspace)
        return f"registered environment {environment.name} version {environment.version}"

    def needs_compute_identity(self) -> bool:
        """SDK v1 jobs always read data with the compute's managed identity."""
        return True

    def storage_location(self, path: str) -> StorageLocation:
        """The datastore's account and container (an ADLS Gen2 datastore's file system) and the path in it."""
        return self.access().location(path)

    def lineage_source(self) -> str:
        workspace = self.workspace
        return workspace_uri(workspace.subscription_id, workspace.resource_group, workspace.name)

    # -- runs -------------------------------------------------------------------------------------------

    def check_request(self, request: RunRequest) -> None:
        """A job identity other than the compute's managed identity, which SDK v1 jobs always use
        (:func:`~azureml_parallel_r.job_identity.check_v1_identity`)."""
        check_v1_identity(request.job_identity or self.settings.job_identity)

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
                environment=build_environment(self.settings, workspace, self.declared_r_packages(request)),
                source_directory=staged,
                compute_target=self.settings.compute_target,
                output_path=output_path,
                extra_environment_variables=self.settings.extra_environment_variables,
            )
            pipeline = Pipeline(
                workspace=workspace, steps=[step], description=run_description(request, output_path, rows_file)
            )
            experiment = Experiment(workspace, experiment_name)
            try:
                run = experiment.submit(pipeline)  # never retried: a retry could create a second run
            except Exception as exc:
                found = self.find_run(request.run_key, experiment_name=experiment_name)
                if found is not None:
                    log.warning(
                        "Submitting raised %s, but the run %s with this task's key exists: using it",
                        type(exc).__name__,
                        found.run_id,
                    )
                    return found
                raise SubmissionError(
                    f"submitting the pipeline to experiment {experiment_name!r} failed and no run with this task's "
                    f"key exists, so nothing is left running: {describe_error(exc)}"
                ) from exc
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        tags = run_tags(request, output_path, rows_file)
        try:
            self._retry(lambda: run.set_tags(tags), f"tagging pipeline run {run.id}")
        except Exception as exc:  # the run exists and its description carries the key: do not fail the task
            log.warning(
                "Could not tag pipeline run %s (%s); reattach finds it by its description", run.id, describe_error(exc)
            )
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
            if self._state_of(run) not in run_status.UNSUCCESSFUL:
                return self._ref(run, reattached=True)

        def newest() -> list[Any]:
            runs = experiment.get_runs(type="azureml.PipelineRun")
            return [run for _, run in zip(range(DESCRIPTIONS_SCANNED), runs, strict=False)]

        for run in self._retry(newest, "listing runs"):
            matches = parse_description(run.description).get("run_key") == key
            if matches and self._state_of(run) not in run_status.UNSUCCESSFUL:
                return self._ref(run, reattached=True)
        return None

    def _state_of(self, run: Any) -> str:
        """A run's status, as one of :data:`azureml_parallel_r.status.ALL`."""
        return run_status.from_azure(self._retry(run.get_status, f"reading the status of {run.id}"), run_status.SDK_V1)

    def _ref(self, run: Any, *, reattached: bool = False) -> RunRef:
        return RunRef(run.id, run.get_portal_url(), _output_path(run), self.engine, reattached=reattached)

    def _pipeline_run(self, run_id: str) -> Any:
        from azureml.core import Run

        return self._retry(lambda: Run.get(self.workspace, run_id), f"getting pipeline run {run_id}")

    def get_status(self, run_id: str) -> RunState:
        return self._run_state(self._pipeline_run(run_id))

    def _run_state(self, run: Any) -> RunState:
        azure_status = self._retry(run.get_status, f"reading the status of {run.id}")
        if run_status.from_azure(azure_status, run_status.SDK_V1) not in run_status.TERMINAL:
            return azure_state(run.id, azure_status, run_status.SDK_V1)
        details = self._retry(run.get_details, f"reading the details of {run.id}")  # its times, for throughput
        return azure_state(
            run.id,
            azure_status,
            run_status.SDK_V1,
            started=details.get("startTimeUtc"),
            ended=details.get("endTimeUtc"),
        )

    def cancel(self, run_id: str) -> RunState:
        run = self._pipeline_run(run_id)
        if self._state_of(run) not in run_status.TERMINAL:
            self._retry(run.cancel, f"canceling {run_id}")
        return self.get_status(run_id)

    def fetch_results(self, run_id: str, *, failures_only: bool = False) -> RunResults:
        """Read the rows file, the failure records and the names under ``results/`` from the datastore, and the
        job's logs from the step run. Each part fails alone: what could not be read is said in the logs."""
        run = self._pipeline_run(run_id)
        record = _run_record(run)
        return collect_results(
            self._run_state(run),
            self.blobs(),
            _output_path(run),
            record.get("rows_file", DEFAULT_APPEND_ROW_FILE_NAME),
            lambda: self._job_logs(run),
            recorded_dataset(record),
            describe_error,
            failures_only,
        )

    def _job_logs(self, run: Any) -> dict[str, str]:
        """The step run's job logs (job_error.txt, job_result.txt) and the tails of the user stderr logs."""
        logs: dict[str, str] = {}
        with tempfile.TemporaryDirectory() as scratch:
            for step_run in self._retry(lambda: list(run.get_children()), "listing step runs"):
                names = self._retry(step_run.get_file_names, "listing step run logs")
                for name in names:
                    key = job_log_name(name)
                    if key is None:
                        continue
                    target = os.path.join(scratch, name.replace("/", "__"))
                    download = functools.partial(step_run.download_file, name, output_file_path=target)
                    self._retry(download, f"downloading {name}")
                    with open(target, encoding="utf-8", errors="replace") as handle:
                        logs[key] = handle.read()[-LOG_TAIL_CHARS:]
        return logs

    def _output_store(self) -> DatastoreBlobs:
        return self.blobs()

    def write_output_file(self, run_id: str, name: str, content: bytes) -> str:
        output_path = _output_path(self._pipeline_run(run_id))
        self.blobs().write(f"{output_path}/{name}", content)
        return datastore_uri(self.datastore().name, f"{output_path}/{name}")


def _run_record(run: Any) -> dict[str, Any]:
    """What the backend recorded with the run: its tags, completed by its description."""
    return {**parse_description(getattr(run, "description", None)), **(run.get_tags() or {})}


def _output_path(run: Any) -> str:
    """The run's output folder on the datastore, as recorded at submission."""
    return _run_record(run).get("output_path", "")
