"""Operator: build and submit the ParallelRunStep pipeline that runs an R script over a FileDataset."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from azureml_parallel_r.airflow_versions import conf
from azureml_parallel_r.compute.entry_settings import DEFAULT_R_SCRIPT, R_MODES
from azureml_parallel_r.exceptions import ParallelRunFailedError, not_retried
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.inputs import datastore_folder
from azureml_parallel_r.job_identity import parse_job_identity
from azureml_parallel_r.links import PipelineRunLink, RunReportLink
from azureml_parallel_r.models import RUN_ID_PLACEHOLDER, DatasetRef, RunRequest
from azureml_parallel_r.r_scripts import requirement_list
from azureml_parallel_r.report.records import RUN_RECORD_KEY, run_record
from azureml_parallel_r.run_identity import dag_run_key, run_date
from azureml_parallel_r.run_settings import (
    AUTO_BATCHES_PER_PROCESS,
    AUTO_MINI_BATCH_MAX,
    ParallelRunSettings,
    parse_data_size,
)
from azureml_parallel_r.triggers.parallel_run import ParallelRunTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_OUTPUT_PATH = "r-script-outputs/{{ ds }}/{run-id}"
SUBMISSION_STATE = "azureml_parallel_r_submission"


class SubmitParallelRunOperator(BaseOperator):
    """Submit a pipeline with one ParallelRunStep that hands each input file to an R script.

    Pushes ``run_id`` and ``run_url`` to XCom and returns the run reference. The submission is tagged with
    a run key: the DAG run and task (dag_id, dag_run_id, task_id), the input dataset version, the submission
    attempt and a random submission token kept in Airflow's task state. A retried or restarted task finds the
    live or finished run with that key and reattaches instead of submitting a second one; nothing else can
    match it: a DAG run of the same id in another Airflow deployment, or after the metadata database was reset,
    has its own token, and a run over another dataset version its own dataset. Killing the task cancels the run.
    A bad argument, setting, R script or connection fails the task at once, without its retries, saying what to fix.
    The run's settings left unset (``None``) take the defaults of
    :class:`~azureml_parallel_r.run_settings.ParallelRunSettings`, where each is declared once.

    :param dataset: the registered FileDataset (the register task's XCom: name, version, path, file_count).
    :param r_script: the R script, relative to the source directory (``include/``), or absolute under a folder
        the connection's ``r_script_dirs`` allows; checked (allowed, present, parses) before submitting.
    :param r_args: extra arguments for the R script's ``args``.
    :param r_packages: R packages the script needs (``name``, ``name==version``, ``name>=version``), besides the
        connection's ``r_packages`` and those declared next to the script (``renv.lock``, ``DESCRIPTION``).
    :param r_mode: ``worker`` (one persistent R per process) or ``per-file`` (fresh R per file).
    :param file_timeout: seconds one file may take before R is killed and the file fails (0 = no limit).
    :param mini_batch_size: files per ``run()`` call (None: chosen from the dataset's file count and the run's
        worker processes, about 10 mini-batches per process, 1 to 200 files, and said in the log).
    :param mini_batch_data_size: for a table without partition keys, the approximate data size of a mini-batch
        (``1024``, ``100 kb``, ``10MB``, ``1GB``; None: the runtime's 1 MB); a table with partition keys has one
        partition per mini-batch.
    :param node_count: compute nodes.
    :param process_count_per_node: worker processes per node (None: the engine's default).
    :param error_threshold: failed files tolerated before the run fails (-1 = ignore all).
    :param allowed_failed_count: failed mini-batches tolerated (None or -1 = ignore).
    :param allowed_failed_percent: percent of failed mini-batches tolerated (None = ignore).
    :param run_invocation_timeout: seconds one ``run()`` call (a mini-batch) may take (None: derived as
        ``mini_batch_size x file_timeout + 60``). Any value Azure accepts is accepted, its default of 60 s included:
        without a ``file_timeout`` the per-file limit is made to fit inside it, and an explicit ``file_timeout`` that
        cannot fit is logged as a warning saying what will happen.
    :param run_max_try: tries per mini-batch.
    :param output_path: datastore path of the outputs; ``{run-id}`` becomes the pipeline run id.
    :param append_row_file_name: the append_row output file.
    :param environment_variables: set for the entry script's processes.
    :param logging_level: the runtime's logging level (``DEBUG``, ``INFO``, ``WARNING``; None: Azure's ``INFO``),
        passed to the entry script as ``--logging_level`` as Azure ML does.
    :param experiment_name: the Azure ML experiment (default: the connection's ``experiment_name``).
    :param job_identity: the identity the Azure ML job reads and writes a datastore without credentials with:
        ``user_identity``, ``managed_identity``, ``managed_identity:<client id>`` or ``aml_token`` (SDK v2; None: the
        connection's ``job_identity``, else Azure's default, the compute cluster's managed identity). SDK v1 accepts
        only ``managed_identity``; the local engine reads its folder as this machine's user and ignores it.
    :param wait_for_completion: wait here until the run ends (else return after submitting).
    :param deferrable: wait in the triggerer instead of a worker slot (with ``wait_for_completion``).
    :param poll_interval: seconds between status reads while waiting.
    :param azureml_parallel_r_conn_id: the Airflow connection that selects the engine.
    """

    template_fields: Sequence[str] = (
        "dataset",
        "r_script",
        "r_args",
        "r_packages",
        "r_mode",
        "file_timeout",
        "mini_batch_size",
        "mini_batch_data_size",
        "node_count",
        "process_count_per_node",
        "error_threshold",
        "allowed_failed_count",
        "allowed_failed_percent",
        "run_invocation_timeout",
        "run_max_try",
        "output_path",
        "append_row_file_name",
        "environment_variables",
        "logging_level",
        "experiment_name",
        "job_identity",
        "azureml_parallel_r_conn_id",
    )
    ui_color = "#0078d4"
    ui_fgcolor = "#ffffff"
    operator_extra_links = (PipelineRunLink(), RunReportLink())

    def __init__(
        self,
        *,
        dataset: dict[str, Any] | str,
        r_script: str = DEFAULT_R_SCRIPT,
        r_args: list[str] | None = None,
        r_packages: list[str] | None = None,
        r_mode: str = R_MODES[0],
        file_timeout: float | None = None,
        mini_batch_size: int | None = None,
        mini_batch_data_size: str | None = None,
        node_count: int | None = None,
        process_count_per_node: int | None = None,
        error_threshold: int | None = None,
        allowed_failed_count: int | None = None,
        allowed_failed_percent: float | None = None,
        run_invocation_timeout: float | None = None,
        run_max_try: int | None = None,
        output_path: str = DEFAULT_OUTPUT_PATH,
        append_row_file_name: str | None = None,
        environment_variables: dict[str, str] | None = None,
        logging_level: str | None = None,
        experiment_name: str = "",
        job_identity: str | None = None,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30,
        azureml_parallel_r_conn_id: str = AzureMLParallelRunHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.r_script = r_script
        self.r_args = r_args
        self.r_packages = r_packages
        self.r_mode = r_mode
        self.file_timeout = file_timeout
        self.mini_batch_size = mini_batch_size
        self.mini_batch_data_size = mini_batch_data_size
        self.node_count = node_count
        self.process_count_per_node = process_count_per_node
        self.error_threshold = error_threshold
        self.allowed_failed_count = allowed_failed_count
        self.allowed_failed_percent = allowed_failed_percent
        self.run_invocation_timeout = run_invocation_timeout
        self.run_max_try = run_max_try
        self.output_path = output_path
        self.append_row_file_name = append_row_file_name
        self.environment_variables = environment_variables
        self.logging_level = logging_level
        self.experiment_name = experiment_name
        self.job_identity = job_identity
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.azureml_parallel_r_conn_id = azureml_parallel_r_conn_id
        self.run_id: str | None = None
        self._lineage: dict[str, Any] = {}

    @cached_property
    def hook(self) -> AzureMLParallelRunHook:
        return AzureMLParallelRunHook(azureml_parallel_r_conn_id=self.azureml_parallel_r_conn_id)

    def build_request(self, context: Context) -> RunRequest:
        """The run request from the (rendered) arguments, with its submission's attempt and token in its run key
        (:meth:`_submission_key`); ``ValueError`` names a bad argument."""
        try:
            dataset = DatasetRef.from_dict(self.dataset) if isinstance(self.dataset, dict) else None
        except TypeError:
            dataset = None
        if dataset is None:
            raise ValueError(f"dataset must be the register task's XCom (a dict), got {self.dataset!r}")
        if self.r_mode not in R_MODES:
            raise ValueError(f"r_mode must be one of {', '.join(map(repr, R_MODES))}, got {self.r_mode!r}")
        r_args = self.r_args or []
        if isinstance(r_args, str) or not all(isinstance(arg, str) for arg in r_args):
            raise ValueError(f"r_args must be a list of strings, got {r_args!r}")

        settings = ParallelRunSettings.from_given(  # unset (None or an empty rendered template): the defaults
            file_timeout=_number("file_timeout", self.file_timeout, float),
            mini_batch_size=_number("mini_batch_size", self.mini_batch_size, int),
            node_count=_number("node_count", self.node_count, int),
            process_count_per_node=_number("process_count_per_node", self.process_count_per_node, int),
            error_threshold=_number("error_threshold", self.error_threshold, int),
            allowed_failed_count=_number("allowed_failed_count", self.allowed_failed_count, int),
            allowed_failed_percent=_number("allowed_failed_percent", self.allowed_failed_percent, float),
            run_invocation_timeout=_number("run_invocation_timeout", self.run_invocation_timeout, float),
            run_max_try=_number("run_max_try", self.run_max_try, int),
            append_row_file_name=self.append_row_file_name or None,
            environment_variables={str(k): str(v) for k, v in (self.environment_variables or {}).items()},
            logging_level=str(self.logging_level).upper() if self.logging_level else None,
        )
        for warning in settings.warnings():
            self.log.warning("%s", warning)
        parse_job_identity(self.job_identity)
        data_size = str(self.mini_batch_data_size).strip() if self.mini_batch_data_size not in (None, "None") else ""
        if data_size:
            parse_data_size(data_size)  # a ValueError says the forms
        return RunRequest(
            dataset=dataset,
            output_path=datastore_folder(self.output_path, "output_path", placeholders=(RUN_ID_PLACEHOLDER,)),
            run_key={
                **dag_run_key(context),
                "dataset": f"{dataset.name}:{dataset.version}",
                **self._submission_key(context),
            },
            r_script=self.r_script,
            r_args=list(r_args),
            r_packages=requirement_list(self.r_packages, "r_packages"),
            r_mode=self.r_mode,
            settings=settings,
            experiment_name=self.experiment_name,
            tags={"dag_id": context["ti"].dag_id, "airflow_dag_run_id": context["ti"].run_id},
            job_identity=str(self.job_identity).strip() or None if self.job_identity else None,
            mini_batch_data_size=data_size or None,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        store = context.get("task_state_store")
        with not_retried():
            built = self.build_request(context)
            # a table's mini-batches are its partitions or slices by size: a file count is not chosen for it
            choose = _number("mini_batch_size", self.mini_batch_size, int) is None and not built.dataset.tabular
            backend = self.hook.get_conn()
            request = backend.prepare(built, choose_mini_batch_size=choose)
        if choose:
            settings = request.settings
            self.log.info(
                "mini_batch_size unset: %d files per mini-batch, for %d files over %d worker process(es) "
                "(about %d mini-batches each, at most %d files)",
                settings.mini_batch_size,
                request.dataset.file_count,
                settings.node_count * backend.processes_per_node(settings.process_count_per_node),
                AUTO_BATCHES_PER_PROCESS,
                AUTO_MINI_BATCH_MAX,
            )
        ref = backend.find_run(request.run_key, experiment_name=request.experiment_name)
        if ref is not None:
            self.log.info(
                "Reattaching to pipeline run %s submitted earlier by this task (run key %s)",
                ref.run_id,
                request.run_key,
            )
        else:
            with not_retried():  # allowed, present and parsing, before anything is submitted
                backend.check_r_script(request.r_script, request.r_packages)
                backend.check_request(request)
            for warning in backend.request_warnings(request):
                self.log.warning("%s", warning)
            ref = backend.submit(request)
            self.log.info(
                "Submitted pipeline run %s over %s v%d (%d files) -> %s",
                ref.run_id,
                request.dataset.name,
                request.dataset.version,
                request.dataset.file_count,
                ref.output_path,
            )
        self.run_id = ref.run_id
        self._lineage = {"inputs": [request.dataset.path], "outputs": [ref.output_path], "run_id": ref.run_id}
        self.log.info("Pipeline run: %s", ref.url)
        context["ti"].xcom_push(key="run_id", value=ref.run_id)
        context["ti"].xcom_push(key="run_url", value=ref.url)
        # what the run report shows (the connection's id, never its fields)
        record = run_record(request, ref, self.azureml_parallel_r_conn_id, run_date(context["dag_run"]))
        context["ti"].xcom_push(key=RUN_RECORD_KEY, value=record)
        if store is not None:  # this try is complete: running the task again is a user's clear, not a retry
            store.set(SUBMISSION_STATE, {**self._submission(request), "run_id": ref.run_id, "done": True})
        if self.wait_for_completion:
            if self.deferrable:
                self.defer(
                    trigger=ParallelRunTrigger(ref.run_id, self.azureml_parallel_r_conn_id, self.poll_interval),
                    method_name="execute_complete",
                    kwargs={"ref": ref.to_dict()},
                    timeout=timedelta(seconds=self.execution_timeout.total_seconds())
                    if self.execution_timeout
                    else None,
                )
            self._wait(ref.run_id)
        return ref.to_dict()

    def _submission_key(self, context: Context) -> dict[str, str]:
        """Tell an automatic retry from a user's clear, with the task state that Airflow keeps across tries
        (``task_state_store``): a try that died or failed before it finished leaves ``done: false``, and the
        retry reattaches to that try's run (same submission attempt and token in the run key); a finished try
        leaves ``done: true``, so running the task again means the user cleared it, and the folder is processed
        again (a new attempt: the try number, new with every clear, and a new token).

        The token is what makes the key this deployment's own: a task state lives in the metadata database, so a
        database that was reset (``docker compose down -v``), or another Airflow pointed at the same workspace, has
        none, draws a new token and never reattaches to a run it did not submit, although its DAG run has the same
        id (``scheduled__<date>``) and its try starts at 1 again. Without a task state store (Airflow < 3.3), every
        run of the task reattaches to a run of the same DAG run and dataset version."""
        store = context.get("task_state_store")
        if store is None:
            self.log.info(
                "This Airflow keeps no task state (3.3 does): this try reattaches to a pipeline run of this DAG run "
                "over the same dataset version if there is one, so a clear does not process the folder again"
            )
            return {}
        try_number = context["ti"].try_number
        kept = store.get(SUBMISSION_STATE)
        state = kept if isinstance(kept, dict) else {}
        retry = state.get("attempt") and state.get("submission") and not state.get("done")
        if retry:
            attempt, token = str(state["attempt"]), str(state["submission"])
            self.log.info(
                "Try %d retries submission attempt %s: reattaching to its run if it exists", try_number, attempt
            )
        else:
            attempt, token = str(try_number), secrets.token_hex(8)
            if state:
                self.log.info(
                    "This task finished before (run %s): a clear, so the folder is processed again", state.get("run_id")
                )
        store.set(SUBMISSION_STATE, {"attempt": attempt, "submission": token, "done": False})
        return {"attempt": attempt, "submission": token}

    @staticmethod
    def _submission(request: RunRequest) -> dict[str, str]:
        """What the task state keeps of a submission: its attempt and token."""
        return {"attempt": request.run_key["attempt"], "submission": request.run_key["submission"]}

    def execute_complete(self, context: Context, event: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: return the run reference, or fail with the run's failure summary."""
        if event.get("status") != "success":  # the trigger's summary, else read now
            raise ParallelRunFailedError(
                event.get("summary") or self.hook.get_conn().describe_failure(event["run_id"], event.get("message", ""))
            )
        self.log.info(event["message"])
        return ref

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage (when its provider is installed): the input folder read, the run's output folder written,
        and the pipeline run's id (:mod:`azureml_parallel_r.lineage`)."""
        from azureml_parallel_r.lineage import run_lineage

        return run_lineage(self.hook.get_conn(), **self._lineage) if self._lineage else None

    def on_kill(self) -> None:
        """Cancel the pipeline run this task submitted or reattached to."""
        if self.run_id:
            self.log.info("Task killed: canceling pipeline run %s", self.run_id)
            self.hook.get_conn().cancel(self.run_id)

    def _wait(self, run_id: str) -> None:
        started = time.monotonic()
        backend = self.hook.get_conn()
        while not (state := backend.get_status(run_id)).terminal:
            self.log.info(
                "Pipeline run %s is %s (%.0f s) %s",
                run_id,
                state.status,
                time.monotonic() - started,
                state.counts or "",
            )
            time.sleep(self.poll_interval)
        if not state.succeeded:
            raise ParallelRunFailedError(backend.describe_failure(run_id, state.message))


def _number(name: str, value: Any, kind: type) -> Any:
    """``value`` (a rendered template or a param) as ``kind``, or None when unset (None, or an empty template); a
    ``ValueError`` that names the argument."""
    if value in (None, ""):
        return None
    try:
        number = kind(value)
        if kind is int and isinstance(value, float | str) and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {'a whole number' if kind is int else 'a number'}, got {value!r}") from None
    return number
