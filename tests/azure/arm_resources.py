"""The ARM resources of the fake workspace's v2 services: their shape and the service's refusals, shared by the
routes of :mod:`tests.azure.ml_service` and :mod:`tests.azure.ml_resource_routes`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.azure.wire import Reply
from tests.azure.workspace import WORKSPACE_ARM_ID

WORKSPACE_ID = WORKSPACE_ARM_ID


def not_found(kind: str, name: str) -> Reply:
    """ARM's 404 (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-not-found)."""
    return Reply(404, {"error": {"code": "ResourceNotFound", "message": f"The {kind} '{name}' was not found."}})


def bad_request(message: str) -> Reply:
    """The service refusing a request it validated: a UserError (the ARM error body's code, as the service answers a
    job whose environment does not exist: "(UserError) No environment exists for name: ...",
    https://github.com/Azure/azure-sdk-for-python/issues/38594)."""
    return Reply(400, {"error": {"code": "UserError", "message": message}})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def resource(kind: str, path: str, properties: dict[str, Any]) -> dict[str, Any]:
    """An ARM resource of the workspace: ``kind`` is its type below the workspace (``codes/versions``), ``path`` its
    id below the workspace (``codes/abc/versions/1``); ``name`` is the id's last segment."""
    return {
        "id": f"{WORKSPACE_ID}/{path}",
        "name": path.rsplit("/", 1)[1],
        "type": f"Microsoft.MachineLearningServices/workspaces/{kind}",
        "properties": properties,
        "systemData": {
            "createdAt": _now(),
            "createdBy": "fake-client",
            "createdByType": "Application",
            "lastModifiedAt": _now(),
        },
    }
