"""The Azure ML backend on SDK v2 (azure-ai-ml): a versioned ``uri_folder`` data asset, a pipeline job whose only
step is a parallel job running the same entry script and R script as the v1 ParallelRunStep.

The control plane goes through azure-ai-ml's ``MLClient`` (data assets, jobs, datastores); the data plane is the
datastore's blob container, read and written with azure-storage-blob exactly as the v1 engine does
(:mod:`.storage`, :mod:`.runs`). What the SDK and the service do, and how the backend meets it (each
point is checked by ``tests/backends/azure/test_v2.py`` on azure-ai-ml's own HTTP calls):

- A job is created by a PUT on ``jobs/{name}``, so the job's name is derived from the run key
  (:func:`~azureml_parallel_r.backends.azure.v2_job.job_name`). Before every submission the name is read
  (``jobs.get``): a retried task, or a submission whose PUT reached the service but whose answer was lost, finds
  its job by name, without a tag search, and never creates a second one. That also makes submitting safe to
  retry on transient errors, unlike v1. A name whose job failed or was canceled is not reused: the next submission
  takes ``<name>-2``, ``<name>-3``, ... (the first name with no job).
- The output folder is known before submission: ``{run-id}`` in ``output_path`` becomes the pipeline job's name,
  so outputs land in ``r-script-outputs/<date>/<pipeline job name>/`` as the layout says. (``${{name}}`` in a v2
  output path would be the *node's* job name, a child job created by the service, not the pipeline's: not used.)
  It and the rows file's name are recorded in the job's tags, which a v2 PUT sets with the job (no second call).
- Data assets are versioned and a version's tags are its own (unlike a v1 FileDataset's), so registering a folder
  again reuses any version registered for the same path, date and files, not only the latest.
- Statuses are azure-ai-ml's JobStatus values, mapped as azure-ai-ml's own wait reads them
  (:data:`azureml_parallel_r.status.V2_STATUSES`); cancel is ``jobs.begin_cancel`` to the end of its ARM
  long-running operation.
- The job's logs are its step job's files: the children of the pipeline job (``jobs.list(parent_job_name=...)``),
  each in its ``default`` output as azure-ai-ml finds it (:func:`~.v2_job.default_output_location`: the job's reported
  output first, ``ExperimentRun/dcid.<job name>/`` on ``workspaceartifactstore`` when there is none), read by
  prefix with azure-storage-blob. A step that failed before the runtime started (its input could not be mounted,
  say) has no runtime logs; the error run history records for it is read instead (``step_error.txt``), as are the
  pipeline job's start and end times: through azure-ai-ml's run-history client
  (``JobOperations._runs_operations``, what ``jobs.download`` and ``jobs.list`` use; the public Job entity carries
  neither).
- ``MLClient`` is made with azure-core's retries off (``retry_total=0``): :func:`~.errors.with_retries` is
  the one retry layer, as for v1.

azure-ai-ml and azure-storage-blob are imported lazily, inside these functions: importing this module is cheap.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from azureml_parallel_r import status as run_status
from azureml_parallel_r.backends.azure.environment import build_context, image_dockerfile
from azureml_parallel_r.backends.azure.errors import describe_error, with_retries
from azureml_parallel_r.backends.azure.runs import (
    azure_state,
    job_log_name,
    recorded_dataset,
    run_tags,
)
from azureml_parallel_r.backends.azure.storage import (
    DatastoreBlobs,
    dataset_files_blob,
    datastore_uri,
    list_table,
    record_dataset_files,
    recorded_dataset_files,
    workspace_uri,
)
from azureml_parallel_r.backends.azure.v2_job import (
    ARTIFACT_STORE,
    cancel_job,
    check_run,
    default_output_location,
    find_job,
    job_name,
    job_state,
    pipeline_job,
)
from azureml_parallel_r.backends.azure.v2_workspace import SubmissionError, V2WorkspaceReads
from azureml_parallel_r.backends.azure.workspace import ASSUMED_PROCESSES_PER_NODE, WorkspaceSettings
from azureml_parallel_r.backends.base import ParallelRunBackend
from azureml_parallel_r.backends.results import collect_results
from azureml_parallel_r.models import (
    LOG_TAIL_CHARS,
    RUN_ID_PLACEHOLDER,
    DatasetRef,
    RunRef,
    RunRequest,
    RunResults,
    RunState,
    StorageLocation,
    listing_fingerprint,
)
from azureml_parallel_r.run_settings import DEFAULT_APPEND_ROW_FILE_NAME
from azureml_parallel_r.shipped_code import COMPUTE_DOCKERFILE, stage_source_directory

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Job


T = TypeVar("T")
log = logging.getLogger(__name__)

NAMES_TRIED = 100  # <name>, <name>-2, ... : a run key whose jobs failed this many times is a bug elsewhere


class JobNotFoundError(LookupError):
    """The workspace has no job with this name."""


class AzureMLV2Backend(V2WorkspaceReads, ParallelRunBackend):
    """Runs the pipelines in an Azure ML workspace through SDK v2 (azure-ai-ml).

    :param client_factory: returns the workspace's ``MLClient`` (built by the hook from the connection).
    :param credential: the connection's azure-identity credential (for an identity-based datastore).
    :param settings: compute, datastore, environment and experiment (the same settings as the v1 engine's).
    """

    engine = "azureml_v2"
    assumed_processes_per_node = ASSUMED_PROCESSES_PER_NODE

    def __init__(self, client_factory: Callable[[], MLClient], credential: Any, settings: WorkspaceSettings) -> None:
        self._client_factory = client_factory
        self._client: MLClient | None = None
        self.credential = credential
        self.settings = settings
        self.source_directory = settings.source_directory
        self.r_script_dirs = settings.r_script_dirs
        self.r_packages = settings.r_packages
        self._datastores: dict[str, Any] = {}
        self._blobs: dict[str, DatastoreBlobs] = {}
        self._compute_checked = False

    @property
    def client(self) -> MLClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _retry(self, call: Callable[[], T], what: str) -> T:
        return with_retries(call, what, backoff=self.settings.retry_backoff)

    def _folder_uri(self, path: str) -> str:
        return datastore_uri(self.datastore().name, path) + "/"

    def storage_location(self, path: str) -> StorageLocation:
        """The datastore's account and container (an ADLS Gen2 datastore's file system) and the path in it."""
        return self.access().location(path)

    def lineage_source(self) -> str:
        client = self.client
        return workspace_uri(client.subscription_id, client.resource_group_name, str(client.workspace_name))

    # -- data assets ------------------------------------------------------------------------------------

    def register_file_dataset(self, path: str, *, name: str, tags: dict[str, str]) -> DatasetRef:
        """Register ``path`` as the next version of the ``uri_folder`` data asset ``name``, or reuse a version
        registered for the same path, logical date and files (names, sizes, ETags). A missing or empty folder is
        not registered (0 files). The version's file list is kept on the datastore for validation.

        The next version is azure-ai-ml's: a data asset without a version is created as its container's next one,
        and a version another registration took first (409) makes it try the next
        (``_create_or_update_autoincrement``, azure/ai/ml/_utils/_asset_utils.py).
        """
        return self._register(path, name, tags, list(self.blobs().entries(path)))

    def register_table_dataset(
        self, path: str, *, name: str, tags: dict[str, str], partition_keys: Sequence[str] = ()
    ) -> DatasetRef:
        """Register the table's folder as the next version of the data asset ``name`` of type ``mltable`` (an
        ``mltable`` input's: https://learn.microsoft.com/azure/machine-learning/how-to-use-parallel-job-in-pipeline),
        reused as :meth:`register_file_dataset` reuses one. Its partitions are recorded when the MLTable puts the
        keys back from the folder names (Microsoft's partitioned layout: no data is read here); when the keys are
        columns of the data, none are, and validation accounts for the partitions the run reported."""
        table = list_table(self.blobs(), path, partition_keys)
        keys = list(partition_keys)
        return self._register(
            path, name, tags, table.entries, kind="table", partition_keys=keys, partitions=table.partitions
        )

    def _register(
        self,
        path: str,
        name: str,
        tags: dict[str, str],
        entries: list[tuple[str, int, str]],
        *,
        kind: str = "files",
        partition_keys: list[str] | None = None,
        partitions: list[str] | None = None,
    ) -> DatasetRef:
        """Register ``entries`` of ``path`` as the next version of ``name`` (``uri_folder``; a table: ``mltable``), or
        reuse the version of the same path, date, files and kind."""
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Data

        table: dict[str, Any] = {"kind": kind, "partition_keys": list(partition_keys or []), "partitions": None}
        if partitions is not None:
            table["partitions"] = len(partitions)
        if not entries:
            return DatasetRef(name, 0, path, 0, **table)
        fingerprint = listing_fingerprint(
            entries + ([("", 0, f"{kind}:{','.join(partition_keys or [])}")] if kind != "files" else [])
        )
        for data in sorted(self._data_versions(name), key=lambda d: int(d.version), reverse=True):
            mine = data.tags or {}
            if (mine.get("path"), mine.get("logical_date"), mine.get("fingerprint")) == (
                path,
                tags.get("logical_date"),
                fingerprint,
            ):
                if mine.get("partitions") not in (None, ""):
                    table["partitions"] = int(mine["partitions"])
                return DatasetRef(name, int(data.version), path, len(entries), reused=True, **table)
        extra = {} if kind == "files" else {"partition_keys": ",".join(partition_keys or [])}
        if partitions is not None:
            extra["partitions"] = str(len(partitions))
        asset = Data(
            name=name,
            type=AssetTypes.URI_FOLDER if kind == "files" else AssetTypes.MLTABLE,
            path=self._folder_uri(path),
            tags={**tags, "file_count": str(len(entries)), "fingerprint": fingerprint, **extra},
            description=f"{path} ({len(entries)} files{', a table' if kind != 'files' else ''})",
        )
        created = self._retry(lambda: self.client.data.create_or_update(asset), f"registering data {name}")
        ref = DatasetRef(name, int(created.version), path, len(entries), **table)
        record_dataset_files(self.blobs(), ref, entries, partitions)
        return ref

    def _data_versions(self, name: str) -> list[Any]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._retry(lambda: list(self.client.data.list(name=name)), f"listing versions of data {name}")
        except ResourceNotFoundError:  # no version yet
            return []

    def _files_record(self, dataset: DatasetRef) -> dict[str, Any] | None:
        return recorded_dataset_files(self.blobs(), dataset)

    def _files_record_name(self, dataset: DatasetRef) -> str:
        return dataset_files_blob(dataset.name, dataset.version)

    def current_entries(self, dataset: DatasetRef, files: Sequence[str]) -> Iterator[tuple[str, int, str]]:
        """The version's folder listed page by page: each blob's size and ETag (a blob written again has a new
        ETag)."""
        return self.blobs().entries(dataset.path)

    # -- runs -------------------------------------------------------------------------------------------

    def _names(self, run_key: dict[str, str]) -> Iterator[str]:
        base = job_name(run_key)
        yield base
        for n in range(2, NAMES_TRIED + 1):
            yield f"{base}-{n}"

    def _find(self, name: str) -> Job | None:
        return find_job(self.client, name, backoff=self.settings.retry_backoff)

    def find_run(self, run_key: dict[str, str], *, experiment_name: str = "") -> RunRef | None:
        """The live or finished job of ``run_key``, by its names (one GET each, up to the first name with no
        job); ``experiment_name`` is not needed: a job name is unique in the workspace."""
        _name, job = self._free_name(run_key)
        return self._ref(job, reattached=True) if job is not None else None

    def _free_name(self, run_key: dict[str, str]) -> tuple[str, Job | None]:
        """The first of the run key's names with no job, or a live or finished job of the key (the names of failed
        and canceled jobs are passed over)."""
        for name in self._names(run_key):
            job = self._find(name)
            if job is None:
                return name, None
            if job_state(job).status not in run_status.UNSUCCESSFUL:
                return name, job
        raise SubmissionError(f"run key {run_key} has {NAMES_TRIED} failed or canceled jobs; not submitting again")

    def check_request(self, request: RunRequest) -> None:
        """What the v2 service and runtime would refuse (:func:`~.v2_job.check_run`)."""
        check_run(request)

    def submit(self, request: RunRequest) -> RunRef:
        """Build and create the pipeline job under the run key's first free name; a job of the key that is live
        or finished is returned instead (never a second one). Transient errors are retried, each try reading the
        name first, so a PUT whose answer was lost is found rather than repeated."""
        name, existing = self._free_name(request.run_key)
        if existing is not None:
            log.info("Job %s of this run key exists (%s): using it", name, existing.status)
            return self._ref(existing, reattached=True)
        experiment = request.experiment_name or self.settings.experiment_name
        output_path = request.output_path.replace(RUN_ID_PLACEHOLDER, name)
        self._check_compute()
        staged = stage_source_directory(self.settings.source_directory)
        context = None
        try:
            packages = [] if self.settings.environment_name else self.declared_r_packages(request)
            if packages:  # a registered environment is used as it is; no packages: the shipped folder, unchanged
                context = build_context(image_dockerfile(packages))
            job = pipeline_job(
                request,
                input_path=f"azureml:{request.dataset.name}:{request.dataset.version}",
                output_uri=self._folder_uri(output_path),
                code_dir=staged,
                environment=self._environment(context),
                compute=self.settings.compute_target,
                identity=request.job_identity or self.settings.job_identity,
                name=name,
                experiment_name=experiment,
                tags=run_tags(request, output_path, request.settings.rows_file_name),
            )

            tries = 0

            def create() -> Job:
                nonlocal tries
                tries += 1
                found = self._find(name) if tries > 1 else None  # an earlier try's PUT may have reached the service
                return found if found is not None else self.client.jobs.create_or_update(job)

            try:
                created = self._retry(create, f"submitting job {name}")
            except Exception as exc:
                found = self._find(name)
                if found is not None:
                    log.warning("Submitting raised %s, but job %s exists: using it", type(exc).__name__, name)
                    return self._ref(found, reattached=True)
                raise SubmissionError(
                    f"submitting job {name} to experiment {experiment!r} failed and no job with that name exists, "
                    f"so nothing is left running: {describe_error(exc)}"
                ) from exc
        finally:
            shutil.rmtree(staged, ignore_errors=True)
            if context:
                shutil.rmtree(context, ignore_errors=True)
        return self._ref(created)

    def _environment(self, context: str | None) -> Any:
        """A registered environment (``azureml:<name>:<version>``, or its latest version), else the image built from
        ``context`` (:func:`~.environment.build_context`: ``include/environment/Dockerfile`` with the R packages the
        script declares; an anonymous environment: the same context is the same environment version, whose image
        Azure ML builds once and caches)."""
        from azure.ai.ml.entities import BuildContext, Environment

        if self.settings.environment_name:
            name, _, version = self.settings.environment_name.partition(":")
            # azure-ai-ml resolves a label only without the azureml: prefix (parse_name_label keeps the prefix in the
            # name, OperationOrchestrator.get_asset_arm_id)
            return f"azureml:{name}:{version}" if version else f"{name}@latest"
        return Environment(
            build=BuildContext(path=str(context or COMPUTE_DOCKERFILE.parent)),
            description="azureml-parallel-r: R with png, jpeg, jsonlite",
        )

    def _ref(self, job: Job, *, reattached: bool = False) -> RunRef:
        tags = job.tags or {}
        url = job.studio_url or f"https://ml.azure.com/runs/{job.name}"
        return RunRef(str(job.name), url, tags.get("output_path", ""), self.engine, reattached=reattached)

    def _job(self, run_id: str) -> Job:
        job = self._find(run_id)
        if job is None:
            raise JobNotFoundError(f"the workspace has no job {run_id!r}")
        return job

    def get_status(self, run_id: str) -> RunState:
        return self._state_with_times(self._job(run_id))

    def _state_with_times(self, job: Job) -> RunState:
        """The job's state; for an ended job with its start and end from run history, for throughput
        (validation.json): the state does not depend on them, so a failure to read them is only logged."""
        state = job_state(job)
        if not state.terminal:
            return state
        try:
            run = self._run_record(state.run_id)
        except Exception as exc:
            log.warning("Could not read the start and end of job %s: %s", state.run_id, describe_error(exc))
            return state
        return azure_state(
            state.run_id,
            str(getattr(job.status, "value", job.status)),
            run_status.SDK_V2,
            started=getattr(run, "start_time_utc", None),
            ended=getattr(run, "end_time_utc", None),
        )

    def _run_record(self, name: str) -> Any:
        """The job's run-history record (start and end times, error)."""
        runs = self.client.jobs._runs_operations
        return self._retry(lambda: runs.get_run(name), f"reading the run record of {name}")

    def cancel(self, run_id: str) -> RunState:
        if not job_state(self._job(run_id)).terminal:
            cancel_job(self.client, run_id, backoff=self.settings.retry_backoff)
        return self.get_status(run_id)

    def fetch_results(self, run_id: str, *, failures_only: bool = False) -> RunResults:
        """Read the rows file, the failure records and the names under ``results/`` from the datastore, and the
        step job's logs from the artifact store. Each part fails alone: what could not be read is said in the
        logs."""
        job = self._job(run_id)
        tags = job.tags or {}
        rows_file = tags.get("rows_file", DEFAULT_APPEND_ROW_FILE_NAME)
        return collect_results(
            self._state_with_times(job),
            self.blobs(),
            tags.get("output_path", ""),
            rows_file,
            lambda: self._job_logs(run_id),
            recorded_dataset(tags),
            describe_error,
            failures_only,
        )

    def _job_logs(self, run_id: str) -> dict[str, str]:
        """The step jobs' runtime logs (job_error.txt, job_result.txt, user stderr tails), and the error run history
        recorded for a step that failed before its runtime wrote any."""
        logs: dict[str, str] = {}
        steps = self._retry(lambda: list(self.client.jobs.list(parent_job_name=run_id)), "listing step jobs")
        artifacts = self.blobs(ARTIFACT_STORE)
        for step in steps:
            if job_state(step).status in run_status.UNSUCCESSFUL:
                error = getattr(
                    getattr(getattr(self._run_record(step.name), "error", None), "error", None), "message", None
                )
                if error:
                    logs["step_error.txt"] = f"step job {step.name} ({step.display_name}): {error}"
            datastore, prefix = default_output_location(step)
            store = artifacts if datastore == ARTIFACT_STORE else self.blobs(datastore)
            for name in store.names(prefix):
                key = job_log_name(name)
                text = store.read_text(f"{prefix}/{name}") if key else None
                if key and text is not None:
                    logs[key] = text[-LOG_TAIL_CHARS:]
        return logs

    def _output_store(self) -> DatastoreBlobs:
        return self.blobs()

    def write_output_file(self, run_id: str, name: str, content: bytes) -> str:
        output_path = (self._job(run_id).tags or {}).get("output_path", "")
        if not output_path:
            raise JobNotFoundError(f"job {run_id} records no output folder (not submitted by this backend?)")
        self.blobs().write(f"{output_path}/{name}", content)
        return datastore_uri(self.datastore().name, f"{output_path}/{name}")
