"""What an Azure ML run records about itself when it is submitted (its tags), and how both Azure ML engines read
what it left behind: the rows file, the failure records and the names under ``results/`` from the datastore, and
the job's own logs, each part failing alone."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from azureml_parallel_r import status as run_status
from azureml_parallel_r.backends.azure.errors import describe_error
from azureml_parallel_r.backends.azure.storage import DatastoreBlobs
from azureml_parallel_r.models import RunRequest, RunResults, RunState, failure_key, split_rows

log = logging.getLogger(__name__)

RUN_KEY_TAGS = ("dag_id", "dag_run_id", "task_id", "dataset", "attempt", "submission")
DEFAULT_ROWS_FILE = "parallel_run_step.txt"
JOB_LOGS = ("logs/job_error.txt", "logs/job_result.txt")


def azure_state(run_id: str, azure_status: str, *, started: datetime | str | None = None,
                ended: datetime | str | None = None) -> RunState:  # fmt: skip
    """The backend's state of an Azure ML run or job: its status mapped (:func:`azureml_parallel_r.status.from_azure`),
    the service's own word kept in the message when it differs, and its start and end when known.

    :param run_id: the run's or job's id.
    :param azure_status: the status the service reported.
    :param started: when it started (a datetime, or an ISO time such as ``2026-11-24T10:00:00.123Z``).
    :param ended: when it ended.
    """
    state = run_status.from_azure(azure_status)
    message = azure_status if state == azure_status else f"{state} (Azure ML: {azure_status})"
    return RunState(run_id=run_id, status=state, message=message, started_at=_epoch(started), ended_at=_epoch(ended))


def _epoch(value: datetime | str | None) -> float | None:
    if not value:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.timestamp()


def run_tags(request: RunRequest, output_path: str, rows_file: str) -> dict[str, str]:
    """The tags a submitted run carries: the request's own, the run key (``airflow_<key>``), the input dataset
    version it processes (``dataset_name``, ``dataset_version``: validation refuses a run recorded over another
    version), and where its outputs and rows file are.

    :param request: the run.
    :param output_path: its concrete output folder on the datastore.
    :param rows_file: the name of its rows file in that folder.
    """
    return {
        **request.tags,
        **{f"airflow_{k}": v for k, v in request.run_key.items()},
        "dataset_name": request.dataset.name,
        "dataset_version": str(request.dataset.version),
        "output_path": output_path,
        "rows_file": rows_file,
    }


def recorded_dataset(record: dict[str, Any]) -> dict[str, Any] | None:
    """The input dataset a run recorded when it was submitted (``{"name", "version"}``), from its tags
    (:func:`run_tags`), or None for a run that records none.

    :param record: the run's tags (v1: completed by its description).
    """
    name, version = record.get("dataset_name"), record.get("dataset_version")
    if not name or version in (None, ""):
        return None
    try:
        return {"name": str(name), "version": int(version)}
    except (TypeError, ValueError):
        return None


def job_log_name(name: str) -> str | None:
    """The name a job log file is kept under in :attr:`RunResults.logs` (``job_error.txt``, ``job_result.txt``, or
    the whole path of a user stderr log), or None for a file that is not read.

    :param name: the file's path among the job's logs (``logs/job_result.txt``, ``logs/user/stderr/...``).
    """
    if name in JOB_LOGS:
        return name.rsplit("/", 1)[1]
    if "/user/" in name and "stderr" in name:
        return name
    return None


def collect_results(
    state: RunState,
    blobs: DatastoreBlobs,
    output_path: str,
    rows_file: str,
    read_logs: Callable[[], dict[str, str]],
    dataset: dict[str, Any] | None = None,
) -> RunResults:
    """A run's results: its rows, failure records and result names from the datastore, its job logs from
    ``read_logs``. Each part fails alone; what could not be read is said in ``logs["fetch_problems.txt"]``.

    :param state: the run's state.
    :param blobs: the datastore holding its output folder.
    :param output_path: the output folder ("" when the run records none).
    :param rows_file: the rows file's name in it.
    :param read_logs: reads the job's logs (name -> tail).
    :param dataset: the input dataset the run recorded (:func:`recorded_dataset`).
    """
    results = RunResults(state, dataset=dataset)
    problems: list[str] = []

    def part(what: str, read: Callable[[], None]) -> None:
        try:
            read()
        except Exception as exc:
            problems.append(f"{what}: {describe_error(exc)}")
            log.warning("Could not read %s of run %s: %s", what, state.run_id, describe_error(exc))

    def rows() -> None:
        text = blobs.read_text(f"{output_path}/{rows_file}")
        results.rows = split_rows(text) if text else []

    def failures() -> None:
        for name in sorted(blobs.names(f"{output_path}/failures")):
            if name.endswith(".json"):
                text = blobs.read_text(f"{output_path}/failures/{name}")
                if text is not None:
                    record = json.loads(text)
                    results.failures[failure_key(name, record)] = record

    def outputs() -> None:
        results.output_files = sorted(f"results/{name}" for name in blobs.names(f"{output_path}/results"))

    part("the job logs", lambda: results.logs.update(read_logs()))
    if output_path:
        part(f"the rows file {rows_file}", rows)
        part("the failure records", failures)
        part("the result file names", outputs)
    else:
        problems.append(f"run {state.run_id} records no output folder (not submitted by this backend?)")
    if problems:
        results.logs["fetch_problems.txt"] = "\n".join(problems)
    return results
