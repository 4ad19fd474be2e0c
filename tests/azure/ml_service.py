"""The workspace's Azure Resource Manager resources as azure-ai-ml 1.35 (SDK v2) creates and reads them, as routes
on the same :class:`~tests.azure.wire.Wire` the v1 fake uses: azure-ai-ml runs on azure-core, whose default
transport (``RequestsTransport``) sends through ``requests``, so its calls reach ``HTTPAdapter.send`` like the v1
SDK's. Entra ID, the ARM workspace, discovery and run history are the v1 fake's
(:mod:`tests.azure.workspace_service`); storage is Azurite.

Every route names the azure-ai-ml code that calls it (``azure/ai/ml/...``) and the model or Microsoft document its
answer follows; resource bodies are ARM resources (``id``, ``name``, ``type``, ``properties``, ``systemData``,
https://learn.microsoft.com/azure/azure-resource-manager/management/resource-api-reference) with the properties of
the SDK's generated models (``azure/ai/ml/_restclient/arm_ml_service/models/_models.py``). An unknown resource is
404 with an ARM error body (azure-core raises ``ResourceNotFoundError``). State is in memory. A submitted job runs
in :class:`tests.azure.job_runner.JobRunner`.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import requests

from tests.azure.arm_resources import bad_request, not_found, resource
from tests.azure.ml_resource_routes import COMPUTES, DatastoreComputeRoutes
from tests.azure.storage_roles import token_claims
from tests.azure.wire import Call, Reply, Wire
from tests.azure.workspace import (
    ARM,
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    DATASTORES,
    REGION,
    SUBSCRIPTION,
    WORKSPACE,
    WS_SCOPE,
    FakeDatastore,
)
from tests.azure.workspace_service import WorkspaceService

TERMINAL = ("Completed", "Failed", "Canceled", "NotResponding", "Paused")
SCHEMA_HOST = r"^azuremlschemasprod\.azureedge\.net$"  # azure-ai-ml's MLTABLE_METADATA_SCHEMA_URL_FALLBACK's host


def arm_id_path(arm_id: str) -> str:
    """The part of an ARM id (or an ``azureml:`` id) below the workspace: ``codes/abc/versions/1``."""
    return arm_id.removeprefix("azureml:").split(f"/workspaces/{WORKSPACE}/", 1)[1]


class MLService(DatastoreComputeRoutes):
    """The workspace's v2 resources: computes, code, environments, components, datastores, data assets and jobs.

    :param wire: the wire the routes go on.
    :param workspace: the v1 fake's services (run history, storage).
    """

    def __init__(self, wire: Wire, workspace: WorkspaceService) -> None:
        self.wire = wire  # a request the fake does not model is recorded in wire.unrouted, which fails the test
        self.workspace = workspace
        self.codes: dict[str, dict[str, Any]] = {}  # id path -> resource
        self.environments: dict[str, dict[str, Any]] = {}
        self.components: dict[str, dict[str, Any]] = {}
        self.data: dict[str, dict[str, dict[str, Any]]] = {}  # name -> version -> resource
        self.jobs: dict[str, dict[str, Any]] = {}  # name -> the job resource as stored
        self.job_puts: list[dict[str, Any]] = []  # every job PUT body, in order
        self.submitters: dict[str, str] = {}  # job name -> the application id that created it
        self.runner: Any = None  # set by the fake: runs a created job (tests.azure.job_runner.JobRunner)
        self._lock = threading.Lock()
        scope = WS_SCOPE
        versions = r"/(?P<name>[^/]+)/versions"
        version = rf"{versions}/(?P<version>[^/]+)"
        routes = [
            ("GET", ARM, rf"{scope}/computes/(?P<name>[^/]+)", self.get_compute),
            # azureml-core reads a compute through the workspace's regional resource-provider proxy
            # (ComputeTarget._get_rp_compute_endpoint, azureml/core/compute/compute.py): the same resource
            ("GET", REGION, rf"/rp/workspaces{scope}/computes/(?P<name>[^/]+)", self.get_compute),
            ("GET", ARM, rf"{scope}/codes{versions}", self.list_code_versions),
            ("POST", ARM, rf"{scope}/codes{version}/startPendingUpload", self.start_pending_upload),
            ("PUT", ARM, rf"{scope}/codes{version}", self.put_versioned("codes", self.codes)),
            ("GET", ARM, rf"{scope}/codes{version}", self.get_versioned("codes", self.codes)),
            ("PUT", ARM, rf"{scope}/environments{version}", self.put_versioned("environments", self.environments)),
            ("GET", ARM, rf"{scope}/environments{version}", self.get_versioned("environments", self.environments)),
            ("GET", ARM, rf"{scope}/environments{versions}", self.list_versions("environments", self.environments)),
            ("PUT", ARM, rf"{scope}/components{version}", self.put_versioned("components", self.components)),
            ("GET", ARM, rf"{scope}/components{version}", self.get_versioned("components", self.components)),
            ("GET", ARM, rf"{scope}/datastores", self.list_datastores),
            ("GET", ARM, rf"{scope}/datastores/(?P<name>[^/]+)", self.get_datastore),
            ("POST", ARM, rf"{scope}/datastores/(?P<name>[^/]+)/listSecrets", self.datastore_secrets),
            ("GET", ARM, rf"{scope}/data/(?P<name>[^/]+)", self.get_data_container),
            ("GET", ARM, rf"{scope}/data{versions}", self.list_data_versions),
            ("PUT", ARM, rf"{scope}/data{version}", self.put_data_version),
            ("GET", ARM, rf"{scope}/data{version}", self.get_data_version),
            ("PUT", ARM, rf"{scope}/jobs/(?P<name>[^/]+)", self.put_job),
            ("GET", ARM, rf"{scope}/jobs/(?P<name>[^/]+)", self.get_job),
            ("POST", ARM, rf"{scope}/jobs/(?P<name>[^/]+)/cancel", self.cancel_job),
            ("GET", ARM, rf"/subscriptions/{SUBSCRIPTION}/operationResults/cancel/(?P<name>[^/]+)", self.cancel_result),
            ("GET", REGION, rf"/history/v1\.0{scope}/runs/(?P<run>[^/]+)/children", self.run_children),
            ("GET", SCHEMA_HOST, r"/latest/MLTable\.schema\.json$", self.mltable_schema),
        ]
        for method, host, path, handler in routes:
            wire.route(method, host, path, handler)

    def mltable_schema(self, call: Call, match: Any) -> Reply:
        """The public MLTable schema azure-ai-ml downloads to check an ``mltable`` data asset's MLTable file before
        registering it (``DataOperations._validate``, ``MLTABLE_METADATA_SCHEMA_URL_FALLBACK``). Its host is a public
        CDN, not the workspace, and this machine cannot reach it: the request fails as it does here, and azure-ai-ml
        then skips that check ("Failed to download MLTable metadata jsonschema ... skipping validation",
        ``_try_get_mltable_metadata_jsonschema``). The backend checks the MLTable itself before registering."""
        raise requests.exceptions.ConnectionError(f"{call.url} cannot be reached from this machine")

    # -- computes, code, environments, components -------------------------------------------------------

    def list_code_versions(self, call: Call, match: Any) -> Reply:
        """Code Versions - List filtered by ``hash``/``hashVersion``: ``CodeOperations.create_or_update`` looks for
        an existing code asset with the same content hash before uploading (azure/ai/ml/operations/
        _code_operations.py); the answer is a page (``value``, ``nextLink``)."""
        wanted = call.query.get("hash", [None])[0]
        found = [
            code
            for path, code in self.codes.items()
            if path.startswith(f"codes/{match['name']}/")
            and code["properties"].get("properties", {}).get("hash_sha256") == wanted
        ]
        return Reply(body={"value": found, "nextLink": None})

    def start_pending_upload(self, call: Call, match: Any) -> Reply:
        """Code Versions - Create Or Get Start Pending Upload: a PendingUploadResponseDto whose
        ``blobReferenceForConsumption`` is a "Container level read, write, list SAS" (the model's docstring) in
        the workspace's storage account; azure-ai-ml uploads the code folder to the root of that container
        (``get_storage_info_for_non_registry_asset``, azure/ai/ml/_utils/_asset_utils.py, then
        ``BlobStorageClient`` with no container name: ``ContainerClient.from_container_url``). Each upload gets
        a container of its own."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        container = f"pending-{uuid.uuid4().hex[:24]}"
        self.workspace.blob_service().create_container(container)
        sas = generate_container_sas(
            AZURITE_ACCOUNT,
            container,
            account_key=AZURITE_KEY,
            permission=ContainerSasPermissions(read=True, write=True, list=True, add=True, create=True),
            expiry=datetime.now(UTC) + timedelta(hours=2),
        )
        url = f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{container}"
        return Reply(
            body={
                "blobReferenceForConsumption": {
                    "blobUri": url,
                    "credential": {"credentialType": "SAS", "sasUri": f"{url}?{sas}"},
                },
                "pendingUploadId": str(uuid.uuid4()),
                "pendingUploadType": "TemporaryBlobReference",
            }
        )

    def put_versioned(self, kind: str, store: dict[str, dict[str, Any]]) -> Any:
        """Versions - Create Or Update for codes, environments and components (CodeVersion, EnvironmentVersion,
        ComponentVersion): the body's properties stored under ``<kind>/<name>/versions/<version>`` and returned as
        the resource, which azure-ai-ml reads back (its ``id`` becomes the asset's ARM id in the job)."""

        def handler(call: Call, match: Any) -> Reply:
            path = f"{kind}/{match['name']}/versions/{match['version']}"
            stored = resource(f"{kind}/versions", path, {**call.json()["properties"], "provisioningState": "Succeeded"})
            with self._lock:
                store.setdefault(path, stored)  # versions are immutable: the first one stays
            return Reply(body=store[path])

        return handler

    def get_versioned(self, kind: str, store: dict[str, dict[str, Any]]) -> Any:
        """Versions - Get for codes, environments and components: azure-ai-ml reads a version back by name and
        version (``CodeOperations.get``, ``EnvironmentOperations.get``, ``ComponentOperations.get``,
        azure/ai/ml/operations/); 404 for one that does not exist."""

        def handler(call: Call, match: Any) -> Reply:
            path = f"{kind}/{match['name']}/versions/{match['version']}"
            return Reply(body=store[path]) if path in store else not_found(kind, path)

        return handler

    def list_versions(self, kind: str, store: dict[str, dict[str, Any]]) -> Any:
        """Versions - List, newest first (``$orderBy=createdtime desc``, ``$top``): azure-ai-ml resolves
        ``<name>@latest`` with it (``_resolve_label_to_asset`` -> ``_get_latest_version_from_container``,
        azure/ai/ml/_utils/_asset_utils.py)."""

        def handler(call: Call, match: Any) -> Reply:
            prefix = f"{kind}/{match['name']}/versions/"
            found = [item for path, item in store.items() if path.startswith(prefix)]  # insertion order = creation
            found.sort(key=lambda item: item["systemData"]["createdAt"])
            if call.query.get("$orderBy", [""])[0].endswith("desc"):
                found.reverse()
            top = int(call.query.get("$top", [str(len(found))])[0])
            return Reply(body={"value": found[:top], "nextLink": None})

        return handler

    # -- data assets --------------------------------------------------------------------------------------

    def get_data_container(self, call: Call, match: Any) -> Reply:
        """Data Containers - Get: a DataContainer whose ``nextVersion`` azure-ai-ml creates a data asset without a
        version as, and ``latestVersion`` (``_create_or_update_autoincrement``, azure/ai/ml/_utils/_asset_utils.py,
        reads ``container.properties.next_version``; 404 for a name with no version yet makes it version 1)."""
        versions = self.data.get(match["name"])
        if not versions:
            return not_found("data container", match["name"])
        latest = max(int(v) for v in versions)
        properties = {"latestVersion": str(latest), "nextVersion": str(latest + 1), "isArchived": False}
        return Reply(body=resource("data", f"data/{match['name']}", properties))

    def list_data_versions(self, call: Call, match: Any) -> Reply:
        """Data Versions - List (``DataOperations.list(name=...)``): a page of the versions; 404 for a name that has
        none (the parent data container does not exist). ``listViewType`` (``ActiveOnly``, azure-ai-ml's default;
        ``ArchivedOnly``; ``All``) picks by ``isArchived`` ("Archived data assets ... hidden by default from list
        queries", how-to-create-data-assets#archive-and-restore)."""
        versions = self.data.get(match["name"])
        if not versions:
            return not_found("data container", match["name"])
        view = call.query.get("listViewType", ["ActiveOnly"])[0]
        shown = [
            v
            for v in versions.values()
            if view == "All" or bool(v["properties"].get("isArchived")) == (view == "ArchivedOnly")
        ]
        return Reply(body={"value": shown, "nextLink": None})

    def put_data_version(self, call: Call, match: Any) -> Reply:
        """Data Versions - Create Or Update (``DataOperations.create_or_update``): a ``uri_folder`` version whose
        ``dataUri`` is on a datastore of the workspace. A version is immutable
        (https://learn.microsoft.com/azure/machine-learning/concept-data#data-asset: "a data asset ... version is
        immutable"): a version that exists is a 409, the conflict azure-ai-ml's auto-increment retries on with the
        next version (``_create_or_update_autoincrement`` retries ResourceExistsError). The exception is archiving:
        a version can be archived and restored ("Archive and restore": https://learn.microsoft.com/azure/
        machine-learning/how-to-create-data-assets#archive-and-restore), which azure-ai-ml does with a GET and a PUT
        of the same version, ``isArchived`` changed (``_archive_or_restore``, azure/ai/ml/_utils/_asset_utils.py): a
        PUT that differs from the stored version in ``isArchived`` only is that, and succeeds. Its ``tags`` are the
        version's own (DataVersionBaseProperties)."""
        name, version = match["name"], match["version"]
        properties = call.json()["properties"]
        datastore = str(properties.get("dataUri", "")).removeprefix("azureml://datastores/").split("/", 1)[0]
        if datastore not in DATASTORES:
            return bad_request(f"datastore {datastore!r} of {properties.get('dataUri')!r} does not exist")
        with self._lock:
            versions = self.data.setdefault(name, {})
            if version in versions:
                stored = versions[version]["properties"]
                if _same_but_archived(stored, properties):  # archive or restore: the one change a version takes
                    stored["isArchived"] = bool(properties.get("isArchived"))
                    return Reply(200, versions[version])
                conflict = {"code": "UserError", "message": f"data {name} version {version} exists and cannot change"}
                return Reply(409, {"error": conflict})
            versions[version] = resource(
                "data/versions", f"data/{name}/versions/{version}", {**properties, "provisioningState": "Succeeded"}
            )
        return Reply(201, versions[version])

    def get_data_version(self, call: Call, match: Any) -> Reply:
        """Data Versions - Get."""
        found = self.data.get(match["name"], {}).get(match["version"])
        return Reply(body=found) if found else not_found("data version", f"{match['name']}:{match['version']}")

    # -- jobs ---------------------------------------------------------------------------------------------

    def put_job(self, call: Call, match: Any) -> Reply:
        """Jobs - Create Or Update (https://learn.microsoft.com/rest/api/azureml/jobs/create-or-update), as
        ``jobs.create_or_update`` sends a pipeline job (api-version 2024-01-01-preview client,
        ``_create_or_update_with_different_version_api``): 201 with the job, status NotStarted, and the job starts.
        Its compute, code, environment and components must exist: the service refuses a job whose references it
        cannot resolve (azure-ai-ml turns ``azureml:<name>:<version>`` into an ARM id without reading it, and the
        service answers "(UserError) No environment exists for name: ..." for a missing environment,
        https://github.com/Azure/azure-sdk-for-python/issues/38594). What the service does with a PUT on a job that
        exists is not documented, and the backend never sends one (it reads the name first): such a PUT is recorded
        as not modelled, which fails the test. So is a node with two outputs of which one lies inside the other:
        Microsoft documents a ``uri_folder`` or ``uri_file`` output mounted read-write at its own path ("Read and
        write data in a job", https://learn.microsoft.com/azure/machine-learning/how-to-read-write-data-v2) and
        nothing about one write mount inside another."""
        name = match["name"]
        body = call.json()
        self.job_puts.append(body)
        properties = body["properties"]
        with self._lock:
            if name in self.jobs:
                self.wire.unrouted.append(f"PUT on job {name}, which exists (not modelled)")
                return Reply(501, {"error": {"code": "NotModelled", "message": f"job {name} exists"}})
            nested = _nested_outputs(properties)
            if nested:
                self.wire.unrouted.append(f"job {name}: {nested} (not modelled)")
                return Reply(501, {"error": {"code": "NotModelled", "message": nested}})
            problem = self._missing_reference(properties)
            if problem:
                return bad_request(problem)
            job = {**resource("jobs", f"jobs/{name}", {**properties, "status": "NotStarted"}), "name": name}
            job["properties"].setdefault("experimentName", "Default")
            self.jobs[name] = job
            self.submitters[name] = str((token_claims(call) or {}).get("appid", ""))  # a user identity job's user
            self.workspace.add_run(
                job["properties"]["experimentName"],
                name,
                runType="azureml.PipelineRun",
                status="NotStarted",
                tags=dict(properties.get("tags") or {}),
                properties={"azureml.runsource": "azureml.PipelineRun"},
            )
        if self.runner is not None:
            self.runner.start(name)
        return Reply(201, job)

    def _missing_reference(self, properties: dict[str, Any]) -> str | None:
        compute = str(properties.get("computeId") or "").rsplit("/", 1)[-1]
        if compute and compute not in COMPUTES:
            return f"compute {compute} does not exist"
        for node in (properties.get("jobs") or {}).values():
            component = arm_id_path(node.get("componentId", ""))
            if component not in self.components:
                return f"component {component} does not exist"
            task = self.components[component]["properties"]["componentSpec"]["task"]
            for key, store in (("code", self.codes), ("environment", self.environments)):
                if arm_id_path(str(task.get(key, ""))) not in store:
                    return f"{key} {task.get(key)} does not exist"
        return None

    def get_job(self, call: Call, match: Any) -> Reply:
        """Jobs - Get (``JobsOperations.get``); 404 when there is none: ``jobs.get`` raises ResourceNotFoundError."""
        job = self.jobs.get(match["name"])
        return Reply(body=job) if job else not_found("job", match["name"])

    def set_status(self, name: str, status: str) -> None:
        """The service moves a job through its statuses; run history keeps the same status and stamps the start
        and end (a v2 job is a run: ``RunOperations.get_run`` reads it, azure/ai/ml/operations/_run_operations.py)."""
        with self._lock:
            if name in self.jobs:
                self.jobs[name]["properties"]["status"] = status
            self.workspace.set_run_status(name, status)

    def cancel_job(self, call: Call, match: Any) -> Reply:
        """Jobs - Cancel (``jobs.begin_cancel``: ``build_jobs_cancel_request`` and ``_cancel_initial`` in
        azure/ai/ml/_restclient/arm_ml_service/operations/_operations.py): 202 with ``Location`` and
        ``Retry-After``, then ``ARMPolling`` on the Location (ARM asynchronous operations:
        https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations). The job goes to
        CancelRequested and its runner is told to stop; a job that has ended is left as it is."""
        name = match["name"]
        job = self.jobs.get(name)
        if job is None:
            return not_found("job", name)
        if job["properties"]["status"] not in TERMINAL:
            self.set_status(name, "CancelRequested")
            if self.runner is not None:
                self.runner.cancel(name)
        version = call.query["api-version"][0]
        location = (
            f"https://{call.host}/subscriptions/{SUBSCRIPTION}/operationResults/cancel/{name}?api-version={version}"
        )
        return Reply(202, {}, {"Location": location, "Retry-After": "1"})  # with "0" the poller waited its 30 s

    def cancel_result(self, call: Call, match: Any) -> Reply:
        """The cancel operation's status: 202 (with ``Retry-After``) until the job has stopped, then 200. The
        Location's path is this fake's own; the poller follows whatever URL it is given."""
        job = self.jobs.get(match["name"])
        if job is None or job["properties"]["status"] in TERMINAL:
            return Reply(200, {})
        return Reply(202, {}, {"Location": call.url, "Retry-After": "1"})

    def run_children(self, call: Call, match: Any) -> Reply:
        """Runs - Get Child at workspace scope (run history ``/runs/{runId}/children``, a PaginatedRunList:
        ``value`` and ``nextLink``; ``jobs.list(parent_job_name=...)`` -> ``RunOperations.get_run_children``):
        the runs whose parent is this run, the pipeline job's step jobs."""
        children = [r["dto"] for r in self.workspace.runs.values() if r["dto"].get("parentRunId") == match["run"]]
        return Reply(body={"value": children, "nextLink": None})


def _nested_outputs(properties: dict[str, Any]) -> str | None:
    """What says that two outputs of a node share a prefix (one is inside the other), or None."""
    for node_name, node in (properties.get("jobs") or {}).items():
        paths = {
            name: datastore_path(output["uri"])
            for name, output in (node.get("outputs") or {}).items()
            if str((output or {}).get("uri") or "").startswith("azureml://datastores/")
        }
        for name, (container, path) in paths.items():
            for other, (other_container, other_path) in paths.items():
                folder = path.rstrip("/") + "/"
                if other != name and container == other_container and (other_path + "/").startswith(folder):
                    return f"node {node_name}: output {other} ({other_path}) is inside output {name} ({path})"
    return None


def blob_path(uri: str) -> tuple[str, str]:
    """(container, path) of a blob URL on the account's public host (a code asset's ``codeUri``)."""
    container, _, path = unquote(uri.split(".blob.core.windows.net/", 1)[1].split("?", 1)[0]).partition("/")
    return container, path


def datastore_path(uri: str) -> tuple[str, str]:
    """(container, path) of an ``azureml://datastores/<name>/paths/<path>`` URI on this workspace's datastores."""
    rest = uri.removeprefix("azureml://datastores/")
    datastore, _, path = rest.partition("/paths/")
    return DATASTORES[datastore].container, path


def datastore_of(uri: str) -> FakeDatastore:
    """The datastore of an ``azureml://datastores/<name>/paths/<path>`` URI."""
    return DATASTORES[uri.removeprefix("azureml://datastores/").partition("/paths/")[0]]


def _same_but_archived(stored: dict[str, Any], sent: dict[str, Any]) -> bool:
    """Whether ``sent`` is ``stored`` as read back, with at most ``isArchived`` changed (read-only and unset
    properties aside: the PUT drops ``None`` values and ``stage``, ``_archive_restore_body``)."""
    ignored = {"isArchived", "provisioningState", "stage"}

    def kept(properties: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in properties.items() if k not in ignored and v is not None}

    return kept(stored) == kept(sent)
