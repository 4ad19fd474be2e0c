"""A fake of the Azure ML v2 workspace routes behind azure-ai-ml, as an azure-core transport.

``MLClient(..., transport=MLTransport())`` sends every call of azure-ai-ml through :meth:`MLTransport.send`
(azure-ai-ml runs on azure-core; shared DESIGN.md measured that ``jobs.get(name)`` is one GET). Answers are
built the way azure-core's own ``RequestsTransport.send`` builds them (azure/core/pipeline/transport/
_requests_basic.py): a ``requests.Response`` wrapped in ``RestRequestsTransportResponse`` and read at once.
A request no route answers is recorded in ``unrouted`` and answered 501, so a test sees what it missed.

Routes (this slice: jobs by name), each from azure-ai-ml 1.35.2:
- ``GET .../workspaces/{ws}``: the ARM workspace (the v1 fake's body, :func:`tests.azure.workspace_service.
  arm_workspace`); ``jobs.get`` reads it while resolving the job's ids (``JobOperations._resolve_azureml_id``).
- ``GET .../workspaces/{ws}/jobs/{name}``: the job (``JobsOperations.get``, api-version 2024-01-01-preview in
  its ``_restclient/arm_ml_service``), 404 with an ARM error body when there is none (``jobs.get`` raises
  ``ResourceNotFoundError``).
- ``POST .../workspaces/{ws}/jobs/{name}/cancel``: ``jobs.begin_cancel`` (``build_jobs_cancel_request`` and
  ``_cancel_initial`` in ``_restclient/arm_ml_service/operations/_operations.py``: 200 or 202 with
  ``Location`` and ``Retry-After``, then ``ARMPolling`` on the Location). The job goes to CancelRequested; the
  operation's Location answers 202 once more, then 200, and the job is Canceled (ARM asynchronous operations:
  https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations; the Location's path
  is this fake's own, the poller follows whatever URL it is given).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

import requests
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._requests_basic import RestRequestsTransportResponse

from tests.azure.workspace_service import arm_workspace

WORKSPACE = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)"  # noqa: E501


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method`` and ``path_pattern`` with ``status``."""

    method: str
    path_pattern: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


class MLTransport(HttpTransport):
    """The workspace's jobs, by name, behind azure-ai-ml's HTTP calls."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.unrouted: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self._routes = [
            ("GET", re.compile(WORKSPACE + r"$"), lambda request, **_: (200, arm_workspace())),
            ("GET", re.compile(WORKSPACE + r"/jobs/(?P<name>[^/?]+)$"), self._get_job),
            ("POST", re.compile(WORKSPACE + r"/jobs/(?P<name>[^/?]+)/cancel$"), self._cancel_job),
            ("GET", re.compile(r"/operationResults/cancel/(?P<name>[^/?]+)$"), self._cancel_result),
        ]
        self._cancel_polls: dict[str, int] = {}

    def __enter__(self) -> MLTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: Any, **kwargs: Any) -> Any:
        path = requests.utils.urlparse(request.url).path
        self.requests.append((request.method, path))
        for fault in self.faults:
            if fault.times > 0 and fault.method == request.method and re.search(fault.path_pattern, path):
                fault.times -= 1
                return self._answer(request, fault.status, {"error": {"code": "Fault", "message": "injected"}},
                                    fault.headers)  # fmt: skip
        for method, pattern, handler in self._routes:
            match = pattern.search(path)
            if method == request.method and match:
                status, body, *headers = handler(request, **match.groupdict())
                return self._answer(request, status, body, *headers)
        self.unrouted.append((request.method, path))
        return self._answer(request, 501, {"error": {"code": "NotImplemented", "message": f"no route: {path}"}})

    def _get_job(self, request: Any, *, sub: str, rg: str, ws: str, name: str) -> tuple[int, dict[str, Any]]:
        if name not in self.jobs:
            # the ARM error shape (azure-core's ODataV4Format reads error.code/message)
            return 404, {"error": {"code": "UserError", "message": f"Could not find job {name}"}}
        return 200, self.jobs[name]

    def _cancel_job(self, request: Any, *, sub: str, rg: str, ws: str, name: str) -> tuple[int, dict[str, Any], dict]:
        if name not in self.jobs:
            return 404, {"error": {"code": "UserError", "message": f"Could not find job {name}"}}, {}
        self.jobs[name]["properties"]["status"] = "CancelRequested"
        self._cancel_polls[name] = 0
        location = f"https://management.azure.com/subscriptions/{sub}/operationResults/cancel/{name}?api-version=x"
        return 202, {}, {"Location": location, "Retry-After": "1"}  # with "0" the poller waited its 30 s default

    def _cancel_result(self, request: Any, *, name: str) -> tuple[int, dict[str, Any], dict]:
        self._cancel_polls[name] += 1
        if self._cancel_polls[name] < 2:
            return 202, {}, {"Location": request.url, "Retry-After": "1"}
        self.jobs[name]["properties"]["status"] = "Canceled"
        return 200, {}, {}

    @staticmethod
    def _answer(request: Any, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        raw = requests.Response()
        raw.status_code = status
        raw.reason = requests.status_codes._codes.get(status, ("",))[0].upper()
        raw.headers.update({"Content-Type": "application/json; charset=utf-8", **(headers or {})})
        raw.raw = io.BytesIO(json.dumps(body).encode("utf-8"))  # read as requests reads a socket
        raw.url = request.url
        response = RestRequestsTransportResponse(request=request, internal_response=raw)
        response.read()
        return response
