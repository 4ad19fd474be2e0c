"""The Azure ML v2 jobs routes behind azure-ai-ml, as routes on the same :class:`~tests.azure.wire.Wire` the v1
fake uses: azure-ai-ml runs on azure-core, whose default transport (``RequestsTransport``) sends through
``requests``, so its calls reach ``HTTPAdapter.send`` like the v1 SDK's (shared DESIGN.md measured that
``jobs.get(name)`` is one GET on ``management.azure.com``).

Routes (this slice: jobs by name), each from azure-ai-ml 1.35.2:
- ``GET .../workspaces/{ws}``: the ARM workspace (:func:`tests.azure.workspace_service.arm_workspace`, the v1
  fake's body); ``jobs.get`` reads it while resolving the job's ids (``JobOperations._resolve_azureml_id``).
- ``GET .../workspaces/{ws}/jobs/{name}``: the job (``JobsOperations.get``, api-version 2024-01-01-preview in
  its ``_restclient/arm_ml_service``), 404 with an ARM error body when there is none (``jobs.get`` raises
  ``ResourceNotFoundError``; azure-core's ODataV4Format reads ``error.code``/``error.message``).
- ``POST .../workspaces/{ws}/jobs/{name}/cancel``: ``jobs.begin_cancel`` (``build_jobs_cancel_request`` and
  ``_cancel_initial`` in ``_restclient/arm_ml_service/operations/_operations.py``: 200 or 202 with
  ``Location`` and ``Retry-After``, then ``ARMPolling`` on the Location). The job goes to CancelRequested; the
  operation's Location answers 202 once more, then 200, and the job is Canceled (ARM asynchronous operations:
  https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations; the Location's path
  is this fake's own, the poller follows whatever URL it is given).
"""

from __future__ import annotations

from typing import Any

from tests.azure.wire import Call, Reply, Wire
from tests.azure.workspace_service import ARM, SUBSCRIPTION, WS_SCOPE, arm_workspace


class JobsService:
    """The workspace's jobs by name.

    :param wire: the wire the routes go on.
    """

    def __init__(self, wire: Wire) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}  # name -> the job's REST body
        self._cancel_polls: dict[str, int] = {}
        jobs = rf"{WS_SCOPE}/jobs/(?P<name>[^/]+)"
        for method, path, handler in [
            ("GET", WS_SCOPE, lambda call, match: Reply(body=arm_workspace())),
            ("GET", jobs, self.get_job),
            ("POST", rf"{jobs}/cancel", self.cancel_job),
            ("GET", rf"/subscriptions/{SUBSCRIPTION}/operationResults/cancel/(?P<name>[^/]+)", self.cancel_result),
        ]:
            wire.route(method, ARM, path, handler)

    def get_job(self, call: Call, match: Any) -> Reply:
        if match["name"] not in self.jobs:
            return _not_found(match["name"])
        return Reply(body=self.jobs[match["name"]])

    def cancel_job(self, call: Call, match: Any) -> Reply:
        name = match["name"]
        if name not in self.jobs:
            return _not_found(name)
        self.jobs[name]["properties"]["status"] = "CancelRequested"
        self._cancel_polls[name] = 0
        version = call.query["api-version"][0]
        location = (
            f"https://{call.host}/subscriptions/{SUBSCRIPTION}/operationResults/cancel/{name}?api-version={version}"
        )
        return Reply(202, {}, {"Location": location, "Retry-After": "1"})  # with "0" the poller waited its 30 s

    def cancel_result(self, call: Call, match: Any) -> Reply:
        name = match["name"]
        self._cancel_polls[name] += 1
        if self._cancel_polls[name] < 2:
            return Reply(202, {}, {"Location": call.url, "Retry-After": "1"})
        self.jobs[name]["properties"]["status"] = "Canceled"
        return Reply(200, {})


def _not_found(name: str) -> Reply:
    return Reply(404, {"error": {"code": "UserError", "message": f"Could not find job {name}"}})
