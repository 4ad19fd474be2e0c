"""The v2 engine's job lookup, state and cancel, through azure-ai-ml's own HTTP calls to the fake jobs routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo

from azureml_parallel_r import status as run_status
from azureml_parallel_r.backends import azure_errors
from azureml_parallel_r.backends.azureml_v2 import cancel_job, find_job, job_state, ml_client
from azureml_parallel_r.backends.azureml_v2_job import job_name, pipeline_job
from azureml_parallel_r.backends.base import RunState
from tests.azure.jobs_service import JobsService
from tests.azure.wire import Reply, Wire, installed
from tests.azure.workspace_service import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE
from tests.backends.test_azureml_v2_job import INCLUDE, OUTPUT_URI, RUN_KEY, _request

JOBS = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}/jobs"
)


class _Credential:
    """A token for any scope (Entra ID is not part of this slice)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 4102444800)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo("token", 4102444800)


@pytest.fixture
def wire() -> Iterator[Wire]:
    wire = Wire()
    with installed(wire):
        yield wire


@pytest.fixture
def service(wire: Wire) -> JobsService:
    return JobsService(wire)


def _requests(wire: Wire) -> list[tuple[str, str]]:
    return [(call.method, call.path) for call in wire.calls]


def _store(service: JobsService, status: str) -> str:
    """Put the run's job in the fake workspace as the service returns it after its PUT: the node's component as an
    ARM id (a registered anonymous component; azure-ai-ml's ``_resolve_azureml_id`` reads it back to a name)."""
    job = pipeline_job(_request(), input_path="azureml:r_inputs_2026-01-01:3", output_uri=OUTPUT_URI,
                       code_dir=INCLUDE, environment="azureml:r-parallel-env:4", compute="cpu-cluster")  # fmt: skip
    body = job._to_rest_object().as_dict()
    body["properties"]["status"] = status
    body["properties"]["jobs"]["r_parallel_batch"]["componentId"] = (
        f"{JOBS.rsplit('/jobs', 1)[0]}/components/azureml_anonymous/versions/1"
    )
    service.jobs[body["name"]] = body
    return body["name"]


def _client():
    return ml_client(_Credential(), SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)


def test_a_job_that_was_never_created_is_none_after_one_get(wire: Wire, service: JobsService) -> None:
    name = job_name(RUN_KEY)
    assert find_job(_client(), name) is None
    assert _requests(wire) == [("GET", f"{JOBS}/{name}")] and not wire.unrouted


@pytest.mark.parametrize(
    ("azure_status", "state"),
    [("Queued", run_status.NOT_STARTED), ("Running", run_status.RUNNING), ("Finalizing", run_status.RUNNING),
     ("Completed", run_status.FINISHED), ("Failed", run_status.FAILED), ("Canceled", run_status.CANCELED)],
)  # fmt: skip
def test_a_created_job_is_found_by_its_name_and_its_status_mapped(wire: Wire, service: JobsService,
                                                                  azure_status: str, state: str) -> None:  # fmt: skip
    name = _store(service, azure_status)
    job = find_job(_client(), name)
    assert job is not None and job.name == name
    assert job_state(job) == RunState(run_id=name, status=state, message=azure_status)
    assert not wire.unrouted


def test_a_throttled_status_read_is_retried_once_by_this_package_after_retry_after(
    wire: Wire, service: JobsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """429 with Retry-After: azure-core's own retries are off, so the one retry layer waits what was asked."""
    name = _store(service, "Running")
    wire.fault("GET", f"/jobs/{name}$", reply=Reply(429, {"error": {"code": "TooManyRequests"}},
                                                   headers={"Retry-After": "7"}))  # fmt: skip
    slept: list[float] = []
    monkeypatch.setattr(azure_errors.time, "sleep", slept.append)
    job = find_job(_client(), name)
    assert job is not None and job_state(job).status == run_status.RUNNING
    assert slept == [7.0]
    assert [r for r in _requests(wire) if r == ("GET", f"{JOBS}/{name}")] == [("GET", f"{JOBS}/{name}")] * 2


def test_cancel_waits_for_the_service_and_the_job_reads_canceled(wire: Wire, service: JobsService) -> None:
    name = _store(service, "Running")
    client = _client()
    cancel_job(client, name)
    assert job_state(find_job(client, name)).status == run_status.CANCELED
    posts = [r for r in _requests(wire) if r[0] == "POST"]
    assert posts == [("POST", f"{JOBS}/{name}/cancel")]
    assert sum("/operationResults/cancel/" in path for _, path in _requests(wire)) == 2  # polled to the end
    assert not wire.unrouted


def test_canceling_a_job_that_does_not_exist_is_nothing_to_do(wire: Wire, service: JobsService) -> None:
    cancel_job(_client(), job_name(RUN_KEY))
    assert _requests(wire) == [("POST", f"{JOBS}/{job_name(RUN_KEY)}/cancel")]
