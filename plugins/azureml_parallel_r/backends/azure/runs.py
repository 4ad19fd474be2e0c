"""What an Azure ML run records about itself when it is submitted (its tags: the run key, the dataset version, where
its outputs are), its state as both Azure ML engines report it, and which of its job's files are its logs. Its
results are read by :func:`azureml_parallel_r.backends.results.collect_results` from the datastore."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from azureml_parallel_r import status as run_status
from azureml_parallel_r.models import RunRequest, RunState

log = logging.getLogger(__name__)

RUN_KEY_TAGS = ("dag_id", "dag_run_id", "task_id", "dataset", "attempt", "submission")
JOB_LOGS = ("logs/job_error.txt", "logs/job_result.txt")


def azure_state(
    run_id: str,
    azure_status: str,
    sdk: str,
    *,
    started: datetime | str | None = None,
    ended: datetime | str | None = None,
) -> RunState:
    """The backend's state of an Azure ML run or job: its status mapped as its SDK reads it
    (:func:`azureml_parallel_r.status.from_azure`), the service's own word kept in the message when it differs, and its
    start and end when known.

    :param run_id: the run's or job's id.
    :param azure_status: the status the service reported.
    :param sdk: which SDK reported it (``"v1"`` or ``"v2"``).
    :param started: when it started (a datetime, or an ISO time such as ``2026-11-24T10:00:00.123Z``).
    :param ended: when it ended.
    """
    state = run_status.from_azure(azure_status, sdk)
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
    if not name or version is None or version == "":
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
