"""Operator: register the files under a datastore path as a FileDataset version (or a table as a tabular one)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from azureml_parallel_r.airflow_versions import AirflowSkipException
from azureml_parallel_r.exceptions import ConfigurationError, EmptyInputError, not_retried
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.inputs import InputFolderError, datastore_folder
from azureml_parallel_r.models import DatasetFilesMissingError, DatasetRef
from azureml_parallel_r.output_checks import failed_files
from azureml_parallel_r.repairs import UNFINISHED_DAG_RUN_STATES, repair_of
from azureml_parallel_r.report.records import RERUN_FAILED_OF, RUN_RECORD_KEY
from azureml_parallel_r.run_identity import dag_run_key, run_date

if TYPE_CHECKING:
    from airflow.sdk import Context

    from azureml_parallel_r.backends.base import ParallelRunBackend

IF_EMPTY = ("skip", "fail")
INPUT_KINDS = ("files", "table")


def _dag_run_state(dag_id: str, run_id: str) -> str | None:
    """The state of a DAG run as the task SDK tells it (``RuntimeTaskInstance.get_dagrun_state``), None where it
    cannot (outside a task runner)."""
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        state = RuntimeTaskInstance.get_dagrun_state(dag_id, run_id)
        return str(getattr(state, "value", state))  # a DagRunState: its value ("running"), not its name
    except Exception:  # no supervisor to ask (a unit test, an older Airflow): the pipeline run's state decides
        return None


def _table_text(dataset: DatasetRef, keys: list[str]) -> str:
    """What the registration log line says of a table (nothing for files)."""
    if not dataset.tabular:
        return ""
    if not keys:
        return ", a table (mini-batches by size)"
    if dataset.partitions is None:  # the keys are columns of the data: the run tells its partitions
        return f", a table partitioned by {', '.join(keys)} (its partitions are known once the run reports them)"
    return f", a table of {dataset.partitions} partitions by {', '.join(keys)}"


class RegisterFileDatasetOperator(BaseOperator):
    """Register the files under a datastore path as a FileDataset version and return it via XCom.

    Registering the same path for the same logical date again returns the version registered before, so
    retries and reruns are idempotent. A missing or empty folder skips the task (and so the rest of the
    run) with a log line naming the path, or fails it, as ``if_empty`` says. A path that is not a folder relative to
    the datastore (a URL, an absolute path, ``..``), and a folder that cannot be listed whole (a subfolder the
    workers cannot read, an entry that is not a file), fail the task at once, without its retries, saying what to
    fix; nothing is registered.

    :param path: datastore path of the input folder (templated), e.g. ``r-script-inputs/{{ ds }}``.
    :param dataset_name: the dataset's registered name (templated).
    :param if_empty: ``skip`` (default) or ``fail`` when the folder is missing or holds no files.
    :param allowed_conf_keys: the trigger parameters the DAG declares; a DAG run whose conf has any other key
        fails here, naming it (Airflow passes a misspelt key through, and it would be ignored silently).
        ``None`` accepts any conf.
    :param azureml_parallel_r_conn_id: the Airflow connection that selects the engine (templated).
    :param rerun_failed_of: a run id of this DAG whose failed and missing files to register instead of the folder
        (templated; empty: the folder): a repair run. Its files are those the run's own validation would count as
        failed (no result row), from the same input folder, with their paths relative to it; the dataset carries
        ``rerun_of`` (that run's id, pipeline run, output folder and date). A run with no failed file skips.
    :param rerun_submit_task_id: the task of that run that submitted its pipeline run.
    :param input_kind: ``files`` (default: every file of the folder is an item, a FileDataset) or ``table`` (the
        folder holds an ``MLTable`` file: a tabular dataset version, whose mini-batches reach R's
        ``process_partition`` as data.frames) (templated).
    :param partition_keys: a table's partition keys, columns whose values make one mini-batch each (a list, or
        comma-separated; templated); none: mini-batches of about ``mini_batch_data_size`` bytes.
    """

    template_fields: Sequence[str] = (
        "path",
        "dataset_name",
        "if_empty",
        "azureml_parallel_r_conn_id",
        "rerun_failed_of",
        "input_kind",
        "partition_keys",
    )
    ui_color = "#d9f0ff"

    def __init__(
        self,
        *,
        path: str,
        dataset_name: str = "r-script-inputs",
        if_empty: str = "skip",
        allowed_conf_keys: Sequence[str] | None = None,
        azureml_parallel_r_conn_id: str = AzureMLParallelRunHook.default_conn_name,
        rerun_failed_of: str | None = None,
        rerun_submit_task_id: str = "submit_pipeline",
        input_kind: str = "files",
        partition_keys: Sequence[str] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_kind = input_kind
        self.partition_keys = partition_keys
        self.rerun_failed_of = rerun_failed_of
        self.rerun_submit_task_id = rerun_submit_task_id
        self.allowed_conf_keys = allowed_conf_keys
        self.path = path
        self.dataset_name = dataset_name
        self.if_empty = if_empty
        self.azureml_parallel_r_conn_id = azureml_parallel_r_conn_id

    @cached_property
    def hook(self) -> AzureMLParallelRunHook:
        return AzureMLParallelRunHook(azureml_parallel_r_conn_id=self.azureml_parallel_r_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        with not_retried():
            path = self._checked_path(context)
            tags = {"logical_date": run_date(context["dag_run"]), "path": path, **dag_run_key(context)}
            keys = self._checked_table()
        if self.rerun_failed_of:
            if self.input_kind == "table":
                raise ConfigurationError(
                    "rerun_failed_of reruns the failed files of a file input; a table's failed partitions are not "
                    "rerun alone yet: run the table again (its partitions with results are computed again too)"
                )
            return self._register_failed_files(context, tags)
        try:
            backend = self.hook.get_conn()
            if self.input_kind == "table":
                dataset = backend.register_table_dataset(path, name=self.dataset_name, tags=tags, partition_keys=keys)
            else:
                dataset = backend.register_file_dataset(path, name=self.dataset_name, tags=tags)
        except InputFolderError as exc:
            raise ConfigurationError(str(exc)) from exc
        if dataset.file_count == 0:
            message = f"No input files under datastore path {path!r}: nothing to process for this run"
            if self.if_empty == "fail":
                raise EmptyInputError(f"{message} (if_empty='fail')")
            self.log.warning("%s; skipping.", message)
            raise AirflowSkipException(message)
        self.log.info(
            "%s dataset %s version %d: %d files under %s%s",
            "Reusing" if dataset.reused else "Registered",
            dataset.name,
            dataset.version,
            dataset.file_count,
            path,
            _table_text(dataset, keys),
        )
        return dataset.to_dict()

    def _checked_table(self) -> list[str]:
        """The partition keys, once ``input_kind`` and they are known to be good."""
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {', '.join(INPUT_KINDS)}, got {self.input_kind!r}")
        given = self.partition_keys
        if given is None or given == "" or given == "None":  # an empty form field renders as None
            return []
        keys = given.split(",") if isinstance(given, str) else list(given)
        if not all(isinstance(key, str) and key.strip() for key in keys):
            raise ValueError(f"partition_keys must be column names (a list, or comma-separated), got {given!r}")
        keys = [key.strip() for key in keys]
        if keys and self.input_kind != "table":
            raise ValueError(
                f"partition_keys ({', '.join(keys)}) are a table's columns: set input_kind to 'table' (a folder "
                "with an MLTable file)"
            )
        if len(set(keys)) != len(keys):
            raise ValueError(f"partition_keys names a column twice: {keys}")
        return keys

    def _register_failed_files(self, context: Context, tags: dict[str, str]) -> dict[str, Any]:
        """A repair run's dataset: the failed and missing files of the run it repairs, from that run's input folder."""
        repaired = str(self.rerun_failed_of)
        ti = context["ti"]
        if repaired == ti.run_id:
            raise ConfigurationError(f"rerun_failed_of names this very run ({repaired}): name an earlier run")
        record = ti.xcom_pull(task_ids=self.rerun_submit_task_id, run_id=repaired, key=RUN_RECORD_KEY)
        if not isinstance(record, dict):
            raise ConfigurationError(
                f"run {repaired!r} of DAG {ti.dag_id} has no pipeline run submitted by task "
                f"{self.rerun_submit_task_id!r} to rerun (is the run id right, and did its submit task succeed?)"
            )
        backend = self.hook.get_conn()
        self._refuse_unfinished(repaired, record["run_id"], backend)
        original = DatasetRef.from_dict(record["dataset"])
        # the files its validation counts as failed: no result row (whatever their failure record says), or an input
        # that changed after it was registered
        try:
            registered = backend.registered_files(original)
        except DatasetFilesMissingError as exc:
            raise ConfigurationError(f"run {repaired} cannot be repaired: {exc}") from exc
        rows = backend.fetch_results(record["run_id"]).rows
        failed = failed_files(registered.files, rows, backend.changed_files(original, registered))
        if not failed:
            message = f"run {repaired} left no failed or missing file: nothing to rerun"
            self.log.warning("%s; skipping.", message)
            raise AirflowSkipException(message)
        rerun_of = repair_of(repaired, record, len(failed))
        try:
            tags = {**tags, "path": original.path, RERUN_FAILED_OF: repaired}
            dataset = backend.register_file_subset(original.path, failed, name=self.dataset_name, tags=tags)
        except InputFolderError as exc:
            raise ConfigurationError(str(exc)) from exc
        self.log.info(
            "Rerunning the %d failed file(s) of run %s (pipeline run %s) from %s: dataset %s v%d",
            len(failed),
            repaired,
            record["run_id"],
            original.path,
            dataset.name,
            dataset.version,
        )
        return dataclasses.replace(dataset, rerun_of=rerun_of).to_dict()

    def _refuse_unfinished(self, repaired: str, run_id: str, backend: ParallelRunBackend) -> None:
        """Refuse, without retries, to repair a run that has not ended: its rows are partial, and the files still in
        flight would be registered and processed by both runs. Its pipeline run must have ended, and so must the DAG
        run (a DAG run whose tasks still run may resubmit, or validate, what the repair would register)."""
        state = backend.get_status(run_id)
        if not state.terminal:
            raise ConfigurationError(
                f"run {repaired} has not ended: its pipeline run {run_id} is {state.status}. Rerun its failed files "
                "once it has ended (its files still in flight would otherwise be processed twice)"
            )
        dag_run_state = _dag_run_state(self.dag_id, repaired)
        self.log.info(
            "Run %s to repair: its pipeline run %s is %s, the DAG run %s",
            repaired,
            run_id,
            state.status,
            dag_run_state or "(its state unknown here)",
        )
        if dag_run_state in UNFINISHED_DAG_RUN_STATES:
            raise ConfigurationError(
                f"run {repaired} has not ended: the DAG run is {dag_run_state} (its pipeline run {run_id} is "
                f"{state.status}). Rerun its failed files once the DAG run has ended"
            )

    def _checked_path(self, context: Context) -> str:
        """The input folder, once the trigger parameters and the arguments are known to be good."""
        if self.allowed_conf_keys is not None:
            conf = getattr(context.get("dag_run"), "conf", None) or {}
            unknown = sorted(set(conf) - set(self.allowed_conf_keys))
            if unknown:
                raise ValueError(
                    f"unknown trigger parameter(s) {', '.join(map(repr, unknown))}; this DAG's parameters are "
                    f"{', '.join(sorted(self.allowed_conf_keys))}"
                )
        if self.if_empty not in IF_EMPTY:
            raise ValueError(f"if_empty must be one of {', '.join(IF_EMPTY)}, got {self.if_empty!r}")
        return datastore_folder(self.path, "the input folder (path, the DAG's input_path)")
