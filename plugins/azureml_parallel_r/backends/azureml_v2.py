"""The Azure ML SDK v2 engine (azure-ai-ml): what exists of it so far.

Issue 14 builds it in slices; so far: find a run's job by its deterministic name, read its state, cancel it. The
job itself is built by :mod:`azureml_parallel_r.backends.azureml_v2_job`. It shares with the v1 engine the
status map and the one retry layer (:func:`~azureml_parallel_r.backends.azureml.with_retries`), so the client
is made with azure-core's own retries off (``retry_total=0``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from azureml_parallel_r import status as run_status
from azureml_parallel_r.backends.azure_errors import with_retries
from azureml_parallel_r.backends.base import RunState

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Job


def ml_client(credential: Any, subscription_id: str, resource_group: str, workspace: str, **kwargs: Any) -> MLClient:
    """An ``MLClient`` for the workspace whose transient errors are retried by this package alone.

    :param credential: an azure-identity credential.
    :param subscription_id: the workspace's subscription.
    :param resource_group: the workspace's resource group.
    :param workspace: the workspace's name.
    :param kwargs: passed on to ``MLClient`` (e.g. ``transport``).
    """
    from azure.ai.ml import MLClient

    return MLClient(credential, subscription_id, resource_group, workspace, retry_total=0, **kwargs)


def find_job(client: MLClient, name: str) -> Job | None:
    """The job named ``name``, or None when the workspace has none (a job is created by a PUT on its name).

    :param client: the workspace's client.
    :param name: the job's name (:func:`~azureml_parallel_r.backends.azureml_v2_job.job_name`).
    """
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return with_retries(lambda: client.jobs.get(name), f"reading job {name}")
    except ResourceNotFoundError:
        return None


def job_state(job: Job) -> RunState:
    """The backend's state of a v2 job (its status mapped as the v1 engine maps a pipeline run's).

    :param job: the job read from the workspace.
    """
    status = str(getattr(job.status, "value", job.status) or "NotStarted")
    return RunState(run_id=str(job.name), status=run_status.from_azure(status), message=status)


def cancel_job(client: MLClient, name: str) -> None:
    """Cancel the job named ``name`` and wait for the service to confirm it; a job that does not exist has
    nothing to cancel.

    :param client: the workspace's client.
    :param name: the job's name.
    """
    from azure.core.exceptions import ResourceNotFoundError

    try:
        with_retries(lambda: client.jobs.begin_cancel(name).result(), f"canceling job {name}")
    except ResourceNotFoundError:
        return
