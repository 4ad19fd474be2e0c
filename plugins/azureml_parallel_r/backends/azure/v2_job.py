"""The Azure ML SDK v2 pipeline job of one run: the same entry script and R script as the v1 ParallelRunStep,
as an azure-ai-ml parallel job, the only step of a pipeline job (a parallel job runs only inside one:
https://learn.microsoft.com/azure/machine-learning/how-to-use-parallel-job-in-pipeline).

This module builds the job offline (no HTTP), says where a job's logs are, and finds, reads and cancels a job by its
name through azure-ai-ml's ``MLClient``; :mod:`azureml_parallel_r.backends.azure.v2` submits and watches it.
Mapping from v1 (``ParallelRunConfig``/``ParallelRunStep``) to v2, each checked against azure-ai-ml 1.35.2
(``azure/ai/ml/entities/_builders/parallel_func.py``, ``azure/ai/ml/entities/_job/parallel/run_function.py``),
the REST body it serializes to, and Microsoft's v1 -> v2 guide for ParallelRunStep
(https://learn.microsoft.com/azure/machine-learning/migrate-to-v2-execution-parallel-run-step) with the parallel
job's settings table (how-to-use-parallel-job-in-pipeline, "Consider automation settings"):

=============================  ==================================================================
v1                             v2 parallel node
=============================  ==================================================================
node_count                     ``resources.instance_count``
process_count_per_node         ``max_concurrency_per_instance``; unset (``None``) leaves the
                               service's default, one per core on a CPU compute, as v1's
mini_batch_size                ``mini_batch_size`` (a string in the SDK, a number on the wire)
run_invocation_timeout         ``retry_settings.timeout`` (the derived value when not given)
run_max_try (tries)            ``retry_settings.max_retries`` = run_max_try - 1: "number of retries
                               when the mini-batch fails or times out", default 2 (v1: 3 tries)
error_threshold                ``--error_threshold`` in ``program_arguments`` (documented), and the
                               node's ``error_threshold`` (azure-ai-ml's; its effect undocumented)
allowed_failed_count           ``mini_batch_error_threshold`` (``None``/-1: -1)
allowed_failed_percent         ``--allowed_failed_percent`` in ``program_arguments``
output_action append_row       ``task.append_row_to`` = ``${{outputs.rows}}``, a ``uri_file`` output
                               at ``<output folder>/<rows file>`` (summary_only: unset)
PipelineData output folder     two ``uri_folder`` outputs, ``results`` at ``<output folder>/results/`` and
                               ``failures`` at ``<output folder>/failures/`` (below)
environment_variables          ``environment_variables``
allow_reuse=False              ``is_deterministic: false``
=============================  ==================================================================

The input is a ``uri_folder`` read-only mount; the entry script gets its root as ``--input-root
${{inputs.input_files}}`` (no v1 environment variables). A table is an ``mltable`` input in ``direct`` mode, cut into
mini-batches by ``partition_keys`` or by data size (:func:`input_kind`, :func:`mini_batch_size`), and the entry
script gets ``--input-kind table``. The run's output folder
``azureml://datastores/<datastore>/paths/<output path>/`` is known before submission, and its three parts are
three read-write mounted outputs of which none lies inside another: ``results`` (``uri_folder``,
``<output path>/results/``, the entry script's ``--results-dir``), ``failures`` (``uri_folder``,
``<output path>/failures/``, ``--failures-dir``) and ``rows`` (``uri_file``, ``<output path>/<rows file>``,
``append_row_to``). Microsoft documents one write mount per output path ("Read and write data in a job",
https://learn.microsoft.com/azure/machine-learning/how-to-read-write-data-v2: a ``uri_folder`` or ``uri_file``
output in ``rw_mount`` mode at an ``azureml://datastores/.../paths/...`` path) and nothing about a file output
mounted inside another output's mounted folder, so the layout is split rather than nested. The rows go to a
``uri_file`` output of their own, as in Microsoft's parallel pipeline example (``append_row_to:
${{outputs.job_output_file}}``, a ``uri_file`` output, azureml-examples
cli/jobs/pipelines/iris-batch-prediction-using-parallel): the file's name is then the package's
(``parallel_run_step.txt`` by default), not a runtime default the documentation does not give.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
from typing import TYPE_CHECKING, Any

from azureml_parallel_r.backends.azure.errors import with_retries
from azureml_parallel_r.backends.azure.runs import azure_state
from azureml_parallel_r.compute.records import FAILURES_DIR, RESULTS_DIR
from azureml_parallel_r.job_identity import v2_identity
from azureml_parallel_r.models import RunRequest, RunState
from azureml_parallel_r.run_settings import INPUT_NAME, MAX_INVOCATION_TIMEOUT, parse_data_size
from azureml_parallel_r.shipped_code import ENTRY_SCRIPT
from azureml_parallel_r.status import SDK_V2

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Job, PipelineJob

OUTPUT_NAME = "results"
FAILURES_NAME = "failures"
ROWS_NAME = "rows"
STEP_NAME = "r_parallel_batch"
JOB_NAME_PREFIX = "apr-"
ARTIFACT_STORE = "workspaceartifactstore"
DEFAULT_OUTPUT = "default"  # azure-ai-ml's DEFAULT_ARTIFACT_STORE_OUTPUT_NAME: a job's artifact store output
# program_arguments is one string that the runtime splits into words. Microsoft's job control script that launches
# the parallel runtime (context_managers.py, ParallelRunBackend.__enter__) splits the PRS command line with
# shlex.split and then runs os.path.expandvars on every word. So each argument is quoted for shlex (POSIX shell
# rules, which a shell running the line applies too: shlex.quote), and what no quoting protects from expandvars (a
# '$') or that the line cannot carry (control characters, line breaks, NUL) is refused, naming the character.
_UNQUOTABLE = re.compile(r"[$\x00-\x1f\x7f]")


def job_name(run_key: dict[str, str]) -> str:
    """A deterministic v2 job name for a run key: a job is created by a PUT on ``jobs/{name}``, so a retried
    task finds its job with ``jobs.get(name)`` instead of a tag search.

    :param run_key: the submitting task's run key (dag_id, run_id, task_id, attempt).
    """
    digest = hashlib.sha256(json.dumps(run_key, sort_keys=True).encode("utf-8")).hexdigest()
    return JOB_NAME_PREFIX + digest[:32]


def program_arguments(request: RunRequest) -> str:
    """The entry script's arguments as the v2 task's ``program_arguments`` string: each one quoted so that the
    runtime's ``shlex.split`` gives it back unchanged (``;``, ``|``, ``>``, ``&&``, ``<(``, ``{a,b}``, spaces and
    quotes are plain text then), the ``${{inputs.*}}``/``${{outputs.*}}`` bindings left for the service to fill in.

    :param request: the run.
    :raises ValueError: for an argument holding what quoting cannot protect (see :data:`_UNQUOTABLE`), naming it.
    """
    bindings = [f"${{{{inputs.{INPUT_NAME}}}}}", f"${{{{outputs.{OUTPUT_NAME}}}}}", f"${{{{outputs.{FAILURES_NAME}}}}}"]
    args = request.entry_arguments(input_root=bindings[0])
    args += ["--results-dir", bindings[1], "--failures-dir", bindings[2]]
    # the runtime's failed-item threshold is a program argument in Microsoft's documentation (the parallel job
    # YAML reference and how-to-use-parallel-job-in-pipeline, "Consider automation settings"); the node attribute
    # azure-ai-ml also has is sent too, but nothing documents what the service does with it
    args += ["--error_threshold", str(request.settings.error_threshold)]
    if request.settings.allowed_failed_percent is not None:
        args += ["--allowed_failed_percent", f"{request.settings.allowed_failed_percent:g}"]
    words = []
    for arg in args:
        if arg in bindings:
            words.append(arg)
            continue
        bad = _UNQUOTABLE.search(arg)
        if bad:
            raise ValueError(
                f"the Azure ML v2 engine passes the entry script's arguments as one line that the runtime splits and "
                f"then expands environment variables in; {arg!r} holds {bad.group()!r}, which no quoting protects "
                "there: use an r_script path and r_args without '$', control characters or line breaks"
            )
        words.append(shlex.quote(arg))
    return " ".join(words)


def check_run(request: RunRequest) -> None:
    """What the v2 service and runtime would refuse in ``request``, as a ``ValueError`` saying what to fix, before
    anything is created: arguments the program line cannot carry, and a ``run_invocation_timeout`` beyond the
    settings table's bound for ``retry_settings.timeout``, (0, 259200] s (the parallel job YAML reference).

    :param request: the run.
    """
    program_arguments(request)
    timeout = request.settings.invocation_timeout
    if timeout > MAX_INVOCATION_TIMEOUT:
        raise ValueError(
            f"run_invocation_timeout={timeout:g} s is above the {MAX_INVOCATION_TIMEOUT:g} s the v2 parallel job "
            "accepts (retry_settings.timeout, the parallel job YAML reference): lower it"
        )


def pipeline_job(
    request: RunRequest,
    *,
    input_path: str,
    output_uri: str,
    code_dir: str,
    environment: Any,
    compute: str,
    name: str | None = None,
    experiment_name: str | None = None,
    tags: dict[str, str] | None = None,
    identity: str | None = None,
) -> PipelineJob:
    """The pipeline job for ``request``: one parallel node running the entry script over the input folder.

    :param request: the run (settings, R script, run key).
    :param input_path: the input: a data asset (``azureml:<name>:<version>``) or an ``azureml://`` folder URI.
    :param output_uri: the output folder, ``azureml://datastores/<datastore>/paths/<path>/``.
    :param code_dir: the step's source directory (``entry/`` and ``r/``).
    :param environment: a registered environment (``azureml:<name>:<version>``) or an ``Environment``.
    :param compute: the compute cluster's name.
    :param name: the job's name (default: :func:`job_name` of the run key).
    :param experiment_name: the experiment (default: the request's, else the service's "Default").
    :param tags: the job's tags (default: the request's tags and run key).
    :param identity: the job identity (:mod:`azureml_parallel_r.job_identity`), set on the parallel node; None:
        Azure's default.
    """
    from azure.ai.ml import Input, Output, dsl
    from azure.ai.ml.constants import AssetTypes, InputOutputModes
    from azure.ai.ml.parallel import RunFunction, parallel_run_function

    settings = request.settings
    run_folder = output_uri.rstrip("/") + "/"
    failed_batches = settings.allowed_failed_count
    rows = settings.output_action == "append_row"
    outputs = {
        name: Output(type=AssetTypes.URI_FOLDER, mode=InputOutputModes.RW_MOUNT)
        for name in (OUTPUT_NAME, FAILURES_NAME)
    }
    if rows:
        outputs[ROWS_NAME] = Output(type=AssetTypes.URI_FILE, mode=InputOutputModes.RW_MOUNT)
    input_type, input_mode = input_kind(request)
    step = parallel_run_function(
        name=STEP_NAME,
        inputs={INPUT_NAME: Input(type=input_type, mode=input_mode)},
        outputs=outputs,
        input_data=f"${{{{inputs.{INPUT_NAME}}}}}",
        instance_count=settings.node_count,
        max_concurrency_per_instance=settings.process_count_per_node,
        mini_batch_size=mini_batch_size(request),
        partition_keys=list(request.dataset.partition_keys) or None,
        error_threshold=settings.error_threshold,
        mini_batch_error_threshold=-1 if failed_batches is None else failed_batches,
        # the dict form of the YAML reference's retry_settings (the SDK's annotation names only its class)
        retry_settings={"timeout": math.ceil(settings.invocation_timeout), "max_retries": settings.run_max_try - 1},  # type: ignore[arg-type]
        environment_variables=dict(settings.environment_variables),
        logging_level=settings.logging_level,
        is_deterministic=False,
        identity=v2_identity(identity),
        task=RunFunction(
            code=code_dir,
            entry_script=ENTRY_SCRIPT,
            program_arguments=program_arguments(request),
            append_row_to=f"${{{{outputs.{ROWS_NAME}}}}}" if rows else None,
            environment=environment,
        ),
    )

    @dsl.pipeline(name="r-parallel-batch", compute=compute)  # type: ignore[call-overload]  # compute: a **kwargs key
    def r_pipeline(input_files):  # unannotated: the dsl reads annotations, and this module's are strings
        node = step(**{INPUT_NAME: input_files})
        for name, folder in ((OUTPUT_NAME, RESULTS_DIR), (FAILURES_NAME, FAILURES_DIR)):
            node.outputs[name] = Output(
                type=AssetTypes.URI_FOLDER, mode=InputOutputModes.RW_MOUNT, path=f"{run_folder}{folder}/"
            )
        if rows:
            node.outputs[ROWS_NAME] = Output(
                type=AssetTypes.URI_FILE, mode=InputOutputModes.RW_MOUNT, path=run_folder + settings.rows_file_name
            )

    job = r_pipeline(input_files=Input(type=input_type, path=input_path, mode=input_mode))
    job.name = name or job_name(request.run_key)
    job.experiment_name = experiment_name or request.experiment_name or None
    job.tags = dict(tags) if tags is not None else {**request.tags, **request.run_key}
    return job


def input_kind(request: RunRequest) -> tuple[str, str]:
    """The parallel node's input type and mode: a folder of files is a ``uri_folder`` read-only mount; a table an
    ``mltable`` input in ``direct`` mode, whose mini-batches the runtime reads itself and hands ``run()`` as DataFrames
    (how-to-use-parallel-job-in-pipeline's table of data formats: "Tabular data | mltable | direct"; azureml-examples
    ``cli/jobs/parallel/1a_oj_sales_prediction`` and ``2a_iris_batch_prediction`` bind their table so).

    :param request: the run.
    """
    from azure.ai.ml.constants import AssetTypes, InputOutputModes

    if request.dataset.tabular:
        return AssetTypes.MLTABLE, InputOutputModes.DIRECT
    return AssetTypes.URI_FOLDER, InputOutputModes.RO_MOUNT


def mini_batch_size(request: RunRequest) -> str | None:
    """The node's ``mini_batch_size``: files per mini-batch for a folder of files; for a table its approximate data
    size in bytes (the form azure-ai-ml turns ``10MB`` into, ``Parallel.__init__``, and what it sends), or None with
    partition keys ("If both partition_keys and mini_batch_size are specified, the partition keys will take effect",
    the parallel job YAML reference) or when the run leaves it to the runtime.

    :param request: the run.
    """
    if not request.dataset.tabular:
        return str(request.settings.mini_batch_size)
    if request.dataset.partition_keys or not request.mini_batch_data_size:
        return None
    return str(parse_data_size(request.mini_batch_data_size))


def ml_client(credential: Any, subscription_id: str, resource_group: str, workspace: str, **kwargs: Any) -> MLClient:
    """An ``MLClient`` for the workspace whose transient errors are retried by this package alone, and which does
    not draw upload progress bars into the task log.

    :param credential: an azure-identity credential.
    :param subscription_id: the workspace's subscription.
    :param resource_group: the workspace's resource group.
    :param workspace: the workspace's name.
    :param kwargs: passed on to ``MLClient`` (e.g. ``transport``).
    """
    from azure.ai.ml import MLClient

    return MLClient(
        credential, subscription_id, resource_group, workspace, retry_total=0, show_progress=False, **kwargs
    )


def find_job(client: MLClient, name: str, *, backoff: float = 2.0) -> Job | None:
    """The job named ``name``, or None when the workspace has none (a job is created by a PUT on its name).

    :param client: the workspace's client.
    :param name: the job's name (:func:`~azureml_parallel_r.backends.azure.v2_job.job_name`).
    :param backoff: first delay of the retries on transient errors, in seconds.
    """
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return with_retries(lambda: client.jobs.get(name), f"reading job {name}", backoff=backoff)
    except ResourceNotFoundError:
        return None


def job_state(job: Job) -> RunState:
    """The backend's state of a v2 job (its status mapped as azure-ai-ml reads it).

    :param job: the job read from the workspace.
    """
    return azure_state(str(job.name), str(getattr(job.status, "value", job.status) or "NotStarted"), SDK_V2)


def cancel_job(client: MLClient, name: str, *, backoff: float = 2.0) -> None:
    """Cancel the job named ``name`` and wait for the service to confirm it; a job that does not exist has
    nothing to cancel.

    :param client: the workspace's client.
    :param name: the job's name.
    :param backoff: first delay of the retries on transient errors, in seconds.
    """
    from azure.core.exceptions import ResourceNotFoundError

    try:
        with_retries(lambda: client.jobs.begin_cancel(name).result(), f"canceling job {name}", backoff=backoff)
    except ResourceNotFoundError:
        return


def default_output_location(job: Any) -> tuple[str, str]:
    """Where a job's logs are: the datastore and folder of its ``default`` output (the artifact store), read as
    azure-ai-ml reads it, from ``job.outputs["default"]`` first and, when the job reports none,
    ``ExperimentRun/dcid.<job name>`` on ``workspaceartifactstore`` (``JobOperations._get_named_output_uri``,
    azure/ai/ml/operations/_job_operations.py). A path is read in the documented datastore URI form,
    ``azureml://datastores/<datastore>/paths/<path>`` (also after a workspace's ``azureml://subscriptions/...``
    prefix); a path in any other form is not guessed at: the fallback is used.

    :param job: a job read from the workspace (a step job of the pipeline job).
    """
    try:
        output = job.outputs[DEFAULT_OUTPUT]
        path = getattr(output, "path", None) if output is not None else None
    except (AttributeError, KeyError, TypeError):
        path = None
    found = re.fullmatch(r"azureml://(?:.+/)?datastores/([^/]+)/paths/(.+?)/*", str(path or ""))
    if found:
        return found[1], found[2]
    return ARTIFACT_STORE, f"ExperimentRun/dcid.{job.name}"
