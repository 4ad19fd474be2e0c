"""A fake of the Azure ML workspace's HTTP services, as azureml-core 1.61 and azureml-pipeline-core 1.62
call them, answering on a :class:`tests.azure.wire.Wire`.

It models Azure, not this project: every route names the SDK code that calls it and the Microsoft document
(or SDK model) its answer follows. State is in memory. The pipeline service itself (modules, graphs,
pipeline runs) is the SDK's own in-memory ``DryRunServiceCaller``, extended in
:mod:`tests.azure.pipeline_service` so that runs really execute.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from tests.azure.wire import Call, Reply, Wire

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000aa"
TENANT = "00000000-0000-0000-0000-0000000000bb"
RESOURCE_GROUP = "rg-parallel-r"
WORKSPACE = "ws-parallel-r"
LOCATION = "westeurope"
WORKSPACE_ID = "11111111-2222-3333-4444-555555555555"
# Azurite's single account and its documented well-known key
# (https://learn.microsoft.com/azure/storage/common/storage-use-azurite#well-known-storage-account-and-key)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DATASTORE = "workspaceblobstore"
CONTAINER = "azureml-blobstore-parallel-r"

ARM = r"^management\.azure\.com$"
LOGIN = r"^login\.microsoftonline\.com$"
# the workspace's regional data-plane host, as discovery returns it (".api.azureml.ms")
REGION = rf"^{LOCATION}\.api\.azureml\.ms$"
WS_SCOPE = (
    rf"/subscriptions/{SUBSCRIPTION}/resource[gG]roups/{RESOURCE_GROUP}"
    rf"/providers/Microsoft\.MachineLearningServices/workspaces/{WORKSPACE}"
)


def _jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.unsigned"


SCOPE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
WORKSPACE_ARM_ID = f"{SCOPE}/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}"


def arm_workspace() -> dict[str, Any]:
    """Workspaces - Get (https://learn.microsoft.com/rest/api/azureml/workspaces/get): the fields the v1 SDK's
    model maps (azureml/_restclient/models/workspace.py); azure-ai-ml reads the same resource."""
    scope = SCOPE
    return {
        "id": WORKSPACE_ARM_ID,
        "name": WORKSPACE, "type": "Microsoft.MachineLearningServices/workspaces", "location": LOCATION,
        "sku": {"name": "Basic", "tier": "Basic"}, "identity": {"type": "SystemAssigned"},
        "properties": {
            "workspaceId": WORKSPACE_ID, "friendlyName": WORKSPACE, "provisioningState": "Succeeded",
            "discoveryUrl": f"https://{LOCATION}.api.azureml.ms/discovery",
            "storageAccount": f"{scope}/providers/Microsoft.Storage/storageAccounts/{AZURITE_ACCOUNT}",
            "keyVault": f"{scope}/providers/Microsoft.KeyVault/vaults/kv", "v1LegacyMode": False,
        },
    }  # fmt: skip


@dataclass
class WorkspaceService:
    """The workspace's services and their state."""

    wire: Wire
    azurite_url: str
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    saved_datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)  # by name: {"dto", "versions"}
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest_snapshot: str | None = None

    def install(self) -> None:
        """Answer every route below on the wire: (method, host, path regex, handler), grouped by service."""
        history = rf"/history/v1\.0{WS_SCOPE}"
        experiment = rf"{history}/experiments/(?P<experiment>[^/]+)"
        run = rf"{experiment}/runs/(?P<run>[^/]+)"
        snapshots = rf"{WS_SCOPE}/snapshots"
        artifacts = rf"/artifact/v2\.0{WS_SCOPE}/artifacts"
        routes = [
            # Microsoft Entra ID (msal, under azureml.core.authentication.ServicePrincipalAuthentication)
            ("GET", LOGIN, r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration", self.openid_configuration),
            ("POST", LOGIN, r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", self.token),
            # Azure Resource Manager and the workspace's discovery document
            ("GET", ARM, r"/subscriptions", self.subscriptions),
            ("GET", ARM, WS_SCOPE, self.workspace),
            ("GET", REGION, r"/discovery", self.discovery),
            # datastores (azureml/_restclient/operations/data_stores_operations.py)
            ("GET", REGION, rf"/datastore/v1\.0{WS_SCOPE}/default", self.datastore),
            ("GET", REGION, rf"/datastore/v1\.0{WS_SCOPE}/datastores/(?P<name>[^/]+)", self.datastore),
            # datasets (azureml/_restclient/operations/dataset_operations.py) and the data service
            ("POST", REGION, rf"/dataset/v1\.0{WS_SCOPE}/datasets", self.register_dataset),
            ("GET", REGION, rf"/dataset/v1\.0{WS_SCOPE}/datasets/query/name=(?P<name>[^/]+)", self.dataset_by_name),
            ("GET", REGION, rf"/data/v1\.0{WS_SCOPE}/dataversion/(?P<name>[^/]+)/versions/(?P<version>[^/]+)",
             self.dataversion),
            # snapshots (azureml/_restclient/snapshots_client.py, azureml/_base_sdk_common/project_snapshot_cache.py)
            ("GET", REGION, rf"/content/v1\.0{snapshots}/latest/metadata", self.latest_snapshot_metadata),
            ("POST", REGION, rf"/content/v2\.0{snapshots}/getblob", self.snapshot_blob_uris),
            ("POST", REGION, rf"/content/v2\.0{snapshots}/(?P<id>[0-9a-f-]{{36}})", self.create_snapshot),
            # run history (azureml/_restclient/operations/experiment_operations.py, run_operations.py)
            ("GET", REGION, experiment, self.get_experiment),
            ("POST", REGION, experiment, self.create_experiment),
            ("GET", REGION, run, self.get_run),
            ("PATCH", REGION, run, self.patch_run),
            ("GET", REGION, rf"{run}/details", self.run_details),
            ("GET", REGION, rf"{run}/children", self.child_runs),
            ("POST", REGION, rf"{experiment}/runs:query", self.query_runs),
            ("GET", REGION, rf"{history}/runs/(?P<run>[^/]+)", self.get_run_by_id),
            ("GET", REGION, rf"{history}/experimentids/(?P<id>[^/]+)", self.experiment_by_id),
            ("GET", REGION, rf"{history}/experimentids/[^/]+/runs/(?P<run>[^/]+)", self.get_run_by_id),
            # artifacts: a run's files (azureml/_restclient/artifacts_client.py)
            ("GET", REGION, rf"{artifacts}/contentinfo/ExperimentRun/(?P<container>[^/]+)/(?P<path>.+)",
             self.content_info),
            ("GET", REGION, rf"{artifacts}/ExperimentRun/(?P<container>[^/]+)", self.list_artifacts),
            ("GET", REGION, rf"{artifacts}/prefix/contentinfo/ExperimentRun/(?P<container>[^/]+)/(?P<prefix>.+)",
             self.content_info_by_prefix),
        ]  # fmt: skip
        for method, host, path, handler in routes:
            self.wire.route(method, host, path, handler)

    # -- Entra ID ---------------------------------------------------------------------------------------

    def openid_configuration(self, call: Call, match: Any) -> Reply:
        """OpenID Connect discovery document; msal reads authorization_endpoint and token_endpoint
        (msal/authority.py, Authority.__init__). Shape: https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc"""
        base = f"https://login.microsoftonline.com/{match['tenant']}"
        return Reply(body={"authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                           "token_endpoint": f"{base}/oauth2/v2.0/token", "issuer": f"{base}/v2.0"})  # fmt: skip

    def token(self, call: Call, match: Any) -> Reply:
        """Client-credentials token (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#successful-response)
        for the requested ``scope``, ``<resource>/.default``: the token's audience (``aud``) is that resource
        (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference). azure-ai-ml checks it
        for the ``https://ml.azure.com`` token it sends with a pipeline job (``JobOperations.
        _set_headers_with_user_aml_token`` compares ``aud`` with the cloud's AML resource id, slash stripped)."""
        scope = parse_qs(call.body.decode()).get("scope", [""])[0].split(" ")[0]
        claims = {
            "aud": scope.removesuffix("/.default"),
            "tid": match["tenant"],
            "oid": "fake-object-id",
            "appid": "fake-client",
            "exp": int(time.time()) + 3600,
        }
        return Reply(
            body={"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": _jwt(claims)}
        )

    # -- ARM --------------------------------------------------------------------------------------------

    def subscriptions(self, call: Call, match: Any) -> Reply:
        """Subscriptions - List (https://learn.microsoft.com/rest/api/resources/subscriptions/list); the SDK checks
        that the workspace's subscription is among them (azureml/core/authentication.py, _get_service_client)."""
        return Reply(body={"value": [{"id": f"/subscriptions/{SUBSCRIPTION}", "subscriptionId": SUBSCRIPTION,
                                      "tenantId": TENANT, "displayName": "fake", "state": "Enabled"}]})  # fmt: skip

    def workspace(self, call: Call, match: Any) -> Reply:
        """Workspaces - Get; Workspace.get calls it (azureml/_project/_commands.py, get_workspace)."""
        return Reply(body=arm_workspace())

    def discovery(self, call: Call, match: Any) -> Reply:
        """The workspace's discovery document: one base URL per service (keys read in
        azureml/_restclient/service_context.py, _ServiceKeys; fetched by azureml/_base_sdk_common/
        service_discovery.py, ServiceDiscovery.discover_services_uris)."""
        api = f"https://{LOCATION}.api.azureml.ms"
        keys = ("api", "catalog", "experimentation", "history", "hyperdrive", "labeling", "modelmanagement",
                "pipelines")  # fmt: skip
        return Reply(body={**{key: api for key in keys}, "studio": "https://ml.azure.com"})

    def datastore(self, call: Call, match: Any) -> Reply:
        """The workspace's blob datastore on the Azurite account, with an account key (the SDK's DataStore and
        AzureStorage models, azureml/_restclient/models/data_store.py and backends/azure/storage.py; read by
        Datastore.get and Workspace.get_default_datastore). Unknown names are 404 like the service."""
        name = match.groupdict().get("name") or DATASTORE
        if name != DATASTORE:
            return Reply(404, {"error": {"code": "UserError", "message": f"Datastore {name} not found"}})
        return Reply(body={
            "name": DATASTORE, "dataStoreType": "AzureBlob", "hasBeenValidated": True, "tags": {},
            "azureStorageSection": {
                "accountName": AZURITE_ACCOUNT, "containerName": CONTAINER, "endpoint": "core.windows.net",
                "protocol": "https", "credentialType": "AccountKey", "credential": AZURITE_KEY,
                "accountKey": AZURITE_KEY, "isSas": False, "blobCacheTimeout": 0,
                "subscriptionId": SUBSCRIPTION, "resourceGroup": RESOURCE_GROUP,
            },
        })  # fmt: skip

    # -- datasets ---------------------------------------------------------------------------------------

    def register_dataset(self, call: Call, match: Any) -> Reply:
        """DatasetOperations.register as AbstractDataset._register calls it (azureml/data/abstract_dataset.py):
        a new name creates version 1; an existing name with ``updateDefinitionIfExists=true``
        (create_new_version=True) adds the next version, else 409 (the SDK turns 409 into 'There is already a
        dataset registered under name'). Tags and description belong to the dataset, not to a version
        (DatasetDto carries them, DatasetDefinitionDto does not; azureml/_restclient/models), so a new
        version's tags replace the dataset's."""
        dto = call.json()
        name = dto["name"]
        update = call.query.get("updateDefinitionIfExists", ["false"])[0] == "true"
        entry = self.datasets.get(name)
        if entry is not None and not update:
            return Reply(409, {"error": {"code": "UserError", "message": f"Dataset {name} already exists"}})
        if entry is None:
            entry = self.datasets[name] = {"id": str(uuid.uuid4()), "versions": []}
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        definition = {**dto["latest"], "datasetId": entry["id"], "versionId": str(len(entry["versions"]) + 1),
                      "savedDatasetId": str(uuid.uuid4()), "createdTime": now, "modifiedTime": now}  # fmt: skip
        entry["versions"].append(definition)
        self.saved_datasets[definition["savedDatasetId"]] = {"id": definition["savedDatasetId"],
                                                             "dataflowJson": definition.get("dataflow")}  # fmt: skip
        entry["dto"] = {**dto, "datasetId": entry["id"], "createdTime": now, "modifiedTime": now, "etag": now}
        return Reply(body={**entry["dto"], "latest": definition})

    def dataset_by_name(self, call: Call, match: Any) -> Reply:
        """DatasetOperations.get_dataset_by_name (Dataset.get_by_name): the named version (``versionId``) or the
        latest; 404 for an unknown name or version, which the SDK reports as 'Cannot find dataset registered
        with name' (azureml/data/_dataset_rest_helper.py)."""
        entry = self.datasets.get(match["name"])
        version = call.query.get("versionId", [None])[0]
        if entry is None or (version and not 1 <= int(version) <= len(entry["versions"])):
            return Reply(404, {"error": {"code": "UserError", "message": f"Dataset {match['name']} not found"}})
        definition = entry["versions"][int(version) - 1] if version else entry["versions"][-1]
        return Reply(body={**entry["dto"], "latest": definition})

    def dataversion(self, call: Call, match: Any) -> Reply:
        """The data service's view of a saved dataset: ``legacyDataflow`` is its RSLex (MLTable) YAML, which the
        SDK fetches for every dataset it loads (azureml/data/_dataset_rest_helper.py, _fetch_rslex_dataflow_yaml)
        and which the SDK itself wrote into the dataflow JSON as ``meta.RsDataflow`` when the dataset was made."""
        name = match["name"]
        saved = self.saved_datasets.get(name[len("unregistered-") :]) if name.startswith("unregistered-") else None
        if saved is None:  # a v1 dataset is no v2 data asset: Dataset.get_by_name then reports the v1 404
            return Reply(404, {"error": {"code": "UserError", "message": "not found"}})
        return Reply(body={"legacyDataflow": json.loads(saved["dataflowJson"])["meta"]["RsDataflow"]})

    # -- snapshots --------------------------------------------------------------------------------------

    def blob_service(self) -> Any:
        """The Azurite account, straight on its loopback URL (the fake's own access, not the SDK's)."""
        from azure.storage.blob import BlobServiceClient

        credential = {"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
        return BlobServiceClient(f"{self.azurite_url}/{AZURITE_ACCOUNT}", credential=credential)

    def public_blob_url(self, container: str, blob: str, *, write: bool = False) -> str:
        """A SAS URL on the account's public host, as the service hands out for snapshot uploads (``blobUri``,
        which ``upload_blob_from_stream`` parses with ``get_block_blob_service_credentials``,
        azureml/_file_utils/upload.py) and for artifact downloads (``contentUri``, ArtifactsClient.
        download_artifact); the wire sends it to Azurite."""
        from datetime import UTC, datetime, timedelta
        from urllib.parse import quote

        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        sas = generate_blob_sas(AZURITE_ACCOUNT, container, blob, account_key=AZURITE_KEY,
                                permission=BlobSasPermissions(read=True, write=write, create=write),
                                expiry=datetime.now(UTC) + timedelta(hours=2))  # fmt: skip
        return f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{container}/{quote(blob)}?{sas}"

    def list_blobs_reply(self, call: Call) -> Reply:
        """The datastore container's List Blobs answer from what Azurite holds (for tests that replace some
        listings and leave the others as they are)."""
        prefix = call.query.get("prefix", [""])[0]
        container = self.blob_service().get_container_client(CONTAINER)
        return list_blobs_page(call, sorted(b.name for b in container.list_blobs(name_starts_with=prefix)), CONTAINER)

    def latest_snapshot_metadata(self, call: Call, match: Any) -> Reply:
        """The workspace's latest snapshot tree, which the SDK diffs against (ProjectSnapshotCache.
        get_latest_snapshot: reads ``id`` and ``root``; an empty ``root`` dict is an empty tree,
        DirTreeNode.load_children_from_dict). A workspace without snapshots answers an empty tree."""
        if self.latest_snapshot is None:
            return Reply(body={"id": None, "root": {}})
        snapshot = self.snapshots[self.latest_snapshot]
        return Reply(body={"id": self.latest_snapshot, "root": snapshot["DirTreeNode"]})

    def snapshot_blob_uris(self, call: Call, match: Any) -> Reply:
        """``snapshots/getblob``: one writable blob URL per file name (``fileNodes`` of ``fullName`` and
        ``blobUri``, SnapshotsClient._upload_snapshot_files); the SDK uploads each file there."""
        container = "snapshots"
        if not self.blob_service().get_container_client(container).exists():
            self.blob_service().create_container(container)
        upload = str(uuid.uuid4())
        nodes = [{"fullName": name, "blobUri": self.public_blob_url(container, f"{upload}/{name}", write=True)}
                 for name in call.json()["FileNames"]]  # fmt: skip
        return Reply(body={"fileNodes": nodes})

    def create_snapshot(self, call: Call, match: Any) -> Reply:
        """``snapshots/<id>``: the snapshot's tree and the blobs of its files (FileRevisionList.FileNodes with
        FullName and BlobUri, SnapshotsClient.create_snapshot). Files unchanged since the parent snapshot
        are not re-uploaded: they are taken from the parent (the SDK sends only the diff, compute_diff)."""
        body = call.json()
        files = {node["FullName"]: node["BlobUri"] for node in body["FileRevisionList"]["FileNodes"]}
        parent = self.snapshots.get(body.get("ParentSnapshotId") or "")
        if parent:
            files = {**parent["files"], **files}
        tree_files = set(_tree_files(body["DirTreeNode"]))
        self.snapshots[match["id"]] = {**body, "files": {k: v for k, v in files.items() if k in tree_files}}
        self.latest_snapshot = match["id"]
        return Reply(body={"id": match["id"]})

    # -- run history ------------------------------------------------------------------------------------

    def get_experiment(self, call: Call, match: Any) -> Reply:
        """ExperimentOperations.get: 404 for an unknown experiment; Experiment(ws, name) then creates it
        (azureml/core/experiment.py, Experiment.__init__ with _create_in_cloud)."""
        experiment = self.experiments.get(match["experiment"])
        return (
            Reply(body=experiment)
            if experiment
            else Reply(404, {"error": {"code": "UserError", "message": "Experiment not found"}})
        )

    def create_experiment(self, call: Call, match: Any) -> Reply:
        """ExperimentOperations.create: an ExperimentDto (azureml/_restclient/models/experiment_dto.py)."""
        name = match["experiment"]
        self.experiments.setdefault(name, {"experimentId": str(uuid.uuid4()), "name": name, "tags": {},
                                           "createdUtc": _now()})  # fmt: skip
        return Reply(body=self.experiments[name])

    def add_run(self, experiment: str, run_id: str, **fields: Any) -> dict[str, Any]:
        """Create a run record (a RunDto, azureml/_restclient/models/run_dto.py), as the pipeline service does
        when it creates a pipeline run or a step run. ``dataContainerId`` names the run's artifact container
        (``Run._container``, azureml/core/run.py, reads it; artifacts live at ``ExperimentRun/<container>``)."""
        self.create_experiment(Call("POST", "", "", "", {}, {}, b""), {"experiment": experiment})
        run = {"runId": run_id, "dataContainerId": f"dcid.{run_id}", "runUuid": str(uuid.uuid4()),
               "experimentId": self.experiments[experiment]["experimentId"], "status": "NotStarted",
               "createdUtc": _now(), "tags": {}, "properties": {}, "runNumber": len(self.runs) + 1,
               **fields}  # fmt: skip
        run.setdefault("rootRunId", run.get("parentRunId") or run_id)
        self.runs[run_id] = {"experiment": experiment, "dto": run}
        return run

    def get_run(self, call: Call, match: Any) -> Reply:
        """RunOperations.get (azureml/core/run.py, Run.__init__ and Run.get reads it): 404 for an unknown id."""
        record = self.runs.get(match["run"])
        if record is None or record["experiment"] != match["experiment"]:
            return Reply(404, {"error": {"code": "UserError", "message": f"Run {match['run']} not found"}})
        return Reply(body=record["dto"])

    def set_run_status(self, run_id: str, status: str) -> None:
        """The service moves a run through its statuses and stamps its start and end (RunDto startTimeUtc,
        endTimeUtc), which ``Run.get_details`` returns; a v1 run ends Finished, a v2 job Completed."""
        dto = self.runs[run_id]["dto"]
        dto["status"] = status
        if status == "Running":
            dto["startTimeUtc"] = _now()
        if status in ("Finished", "Completed", "Failed", "Canceled"):
            dto.setdefault("startTimeUtc", _now())
            dto["endTimeUtc"] = _now()

    def get_run_by_id(self, call: Call, match: Any) -> Reply:
        """RunOperations.get_by_id at workspace scope (Run.get(workspace, run_id): WorkspaceClient.get_run)."""
        record = self.runs.get(match["run"])
        return (
            Reply(body=record["dto"])
            if record
            else Reply(404, {"error": {"code": "UserError", "message": "Run not found"}})
        )

    def experiment_by_id(self, call: Call, match: Any) -> Reply:
        """ExperimentOperations.get_by_id (Run.get reads the run's experiment by its experimentId)."""
        for experiment in self.experiments.values():
            if experiment["experimentId"] == match["id"]:
                return Reply(body=experiment)
        return Reply(404, {"error": {"code": "UserError", "message": "Experiment not found"}})

    def run_details(self, call: Call, match: Any) -> Reply:
        """RunOperations.get_details (Run.get_details): the RunDetailsDto fields the backend reads (status,
        startTimeUtc, endTimeUtc) are the run's own."""
        record = self.runs.get(match["run"])
        if record is None:
            return Reply(404, {"error": {"code": "UserError", "message": "Run not found"}})
        dto = record["dto"]
        keys = ("runId", "status", "startTimeUtc", "endTimeUtc", "tags", "properties", "target", "runDefinition")
        return Reply(body={**{k: dto[k] for k in keys if k in dto}, "logFiles": {}})

    def query_runs(self, call: Call, match: Any) -> Reply:
        """RunOperations.get_by_query (Experiment.get_runs, Run.get_children): the experiment's runs that
        match the OData ``filter``, newest first, in pages of ``top`` with a ``continuationToken``
        (PaginatedRunDto; the SDK pages with azureml/_restclient/clientbase.py, _execute_with_arguments)."""
        body = call.json() or {}
        runs = [r["dto"] for r in self.runs.values() if r["experiment"] == match["experiment"]]
        if body.get("filter"):
            matches = _ODataFilter(body["filter"]).parse()
            runs = [run for run in runs if matches(run)]
        runs.sort(key=lambda run: (run["createdUtc"], run["runNumber"]), reverse=True)
        start = int(body.get("continuationToken") or 0)
        top = int(body.get("top") or 100)
        page = runs[start : start + top]
        token = str(start + top) if start + top < len(runs) else None
        return Reply(body={"value": page, "continuationToken": token})

    def child_runs(self, call: Call, match: Any) -> Reply:
        """RunOperations.get_child (Run.get_children): the runs whose parentRunId is this run, one page."""
        children = [r["dto"] for r in self.runs.values() if r["dto"].get("parentRunId") == match["run"]]
        return Reply(body={"value": children, "continuationToken": None})

    def upload_run_file(self, run_id: str, name: str, content: bytes | str) -> None:
        """A file of a run: an artifact of origin ``ExperimentRun`` in the run's data container (RUN_ORIGIN and
        ``Run._container``, azureml/core/run.py), kept in the workspace's storage account."""
        data = content.encode() if isinstance(content, str) else content
        service = self.blob_service()
        if not service.get_container_client("azureml").exists():
            service.create_container("azureml")
        service.get_blob_client("azureml", f"ExperimentRun/dcid.{run_id}/{name}").upload_blob(data, overwrite=True)

    def list_artifacts(self, call: Call, match: Any) -> Reply:
        """ArtifactOperations.list_in_container (Run.get_file_names): the run's files as ArtifactDto
        (origin, container, path), one page."""
        container = self.blob_service().get_container_client("azureml")
        prefix = f"ExperimentRun/{match['container']}/"
        names = (
            [b.name[len(prefix) :] for b in container.list_blobs(name_starts_with=prefix)] if container.exists() else []
        )
        value = [{"origin": "ExperimentRun", "container": match["container"], "path": n} for n in names]
        return Reply(body={"value": value, "continuationToken": None})

    def content_info(self, call: Call, match: Any) -> Reply:
        """ArtifactOperations.get_content_information (Run.download_file): a readable blob URL (contentUri)
        that the SDK then downloads."""
        path = unquote(match["path"])
        blob = f"ExperimentRun/{match['container']}/{path}"
        if not self.blob_service().get_blob_client("azureml", blob).exists():
            return Reply(404, {"error": {"code": "UserError", "message": f"artifact {path} not found"}})
        return Reply(body={"contentUri": self.public_blob_url("azureml", blob), "origin": "ExperimentRun",
                           "container": match["container"], "path": path})  # fmt: skip

    def content_info_by_prefix(self, call: Call, match: Any) -> Reply:
        """ArtifactOperations.list_sas_by_prefix (Run.get_details looks for the common runtime's logs under
        ``user_logs``, ``system_logs``...): the content information of the run's files under the prefix."""
        container = self.blob_service().get_container_client("azureml")
        base = f"ExperimentRun/{match['container']}/"
        prefix = base + unquote(match["prefix"])
        names = [b.name for b in container.list_blobs(name_starts_with=prefix)] if container.exists() else []
        value = [{"contentUri": self.public_blob_url("azureml", n), "origin": "ExperimentRun",
                  "container": match["container"], "path": n[len(base):]} for n in names]  # fmt: skip
        return Reply(body={"value": value, "continuationToken": None})

    def dataset_rslex_yaml(self, dataset_id: str, version: str | None) -> str:
        """The RSLex YAML of a registered dataset version (what the data service returns as legacyDataflow)."""
        for entry in self.datasets.values():
            if entry["id"] == dataset_id:
                definition = entry["versions"][int(version) - 1] if version else entry["versions"][-1]
                return json.loads(definition["dataflow"])["meta"]["RsDataflow"]
        raise KeyError(f"no dataset {dataset_id}")

    def patch_run(self, call: Call, match: Any) -> Reply:
        """RunOperations.patch: merges tags and properties and sets the other given fields; Experiment.submit
        sets a pipeline run's tags this way, after the run exists (azureml/core/experiment.py, submit ->
        run.set_tags)."""
        record = self.runs.get(match["run"])
        if record is None:
            return Reply(404, {"error": {"code": "UserError", "message": f"Run {match['run']} not found"}})
        body = call.json() or {}
        dto = record["dto"]
        for key, value in body.items():
            if key in ("tags", "properties") and value is not None:
                dto[key] = {**dto.get(key, {}), **value}
            elif value is not None and key not in ("runId",):
                dto[key] = value
        return Reply(body=dto)


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _tree_files(node: dict[str, Any], prefix: str = "") -> list[str]:
    """File paths of a snapshot DirTreeNode (V2 encoding: ``children`` by name, ``type`` File/Directory)."""
    found = []
    for name, child in (node.get("children") or {}).items():
        if child.get("type") == "File":
            found.append(prefix + name)
        else:
            found.extend(_tree_files(child, f"{prefix}{name}/"))
    return found


class _ODataFilter:
    """The run filters the SDK builds (azureml/_restclient/_odata/constants.py and runs.py): comparisons
    ``Field eq value`` / ``Field ne value`` on RunType, Status, ParentRunId, Tags/<k> and Properties/<k>,
    joined with ``and`` / ``or`` and parentheses; values are JSON strings (value_to_odata_string), quoted
    strings, null, or bare words (run types)."""

    TOKEN = re.compile(r"""\s*(\(|\)|"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s()]+)""")

    def __init__(self, text: str) -> None:
        self.tokens = [t for t in self.TOKEN.findall(text) if t]
        self.position = 0

    def parse(self) -> Callable[[dict[str, Any]], bool]:
        expression = self._or()
        if self.position != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.position]!r} in the filter")
        return expression

    def _next(self) -> str:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _or(self) -> Callable[[dict[str, Any]], bool]:
        parts = [self._and()]
        while self._peek() == "or":
            self._next()
            parts.append(self._and())
        return lambda run: any(part(run) for part in parts)

    def _and(self) -> Callable[[dict[str, Any]], bool]:
        parts = [self._atom()]
        while self._peek() == "and":
            self._next()
            parts.append(self._atom())
        return lambda run: all(part(run) for part in parts)

    def _atom(self) -> Callable[[dict[str, Any]], bool]:
        if self._peek() == "(":
            self._next()
            inner = self._or()
            self._next()  # ")"
            return inner
        name, operator, raw = self._next(), self._next(), self._next()
        value: str | None = raw
        if raw == "null":
            value = None
        elif raw.startswith('"'):  # value_to_odata_string: a JSON string (azureml/_restclient/_odata/helpers.py)
            value = json.loads(raw)
        elif raw.startswith("'"):
            value = raw[1:-1].replace("''", "'")

        def field(run: dict[str, Any]) -> Any:
            if "/" in name:
                section, _, key = name.partition("/")
                return (run.get(section[0].lower() + section[1:]) or {}).get(key)
            return run.get(name[0].lower() + name[1:])

        if operator == "eq":
            return lambda run: field(run) == value
        if operator == "ne":
            return lambda run: field(run) != value
        raise ValueError(f"operator {operator!r} is not one the SDK sends")


def list_blobs_page(call: Call, names: list[str], container: str) -> Reply:
    """One page of Azure Storage's List Blobs answer over ``names`` (sorted), as the REST reference shows it
    (https://learn.microsoft.com/rest/api/storageservices/list-blobs#response-body): ``prefix``, ``marker``
    and ``maxresults`` (at most 5000) from the query, ``NextMarker`` empty on the last page."""
    from xml.sax.saxutils import escape

    prefix = call.query.get("prefix", [""])[0]
    marker = call.query.get("marker", [""])[0]
    size = min(int(call.query.get("maxresults", ["5000"])[0]), 5000)
    matching = [name for name in names if name.startswith(prefix) and (not marker or name >= marker)]
    page, rest = matching[:size], matching[size : size + 1]
    blobs = "".join(
        f"<Blob><Name>{escape(name)}</Name><Properties><Last-Modified>Wed, 25 Nov 2026 10:00:00 GMT</Last-Modified>"
        "<Etag>0x8DD0000000000</Etag><Content-Length>1</Content-Length><Content-Type>application/octet-stream"
        "</Content-Type><BlobType>BlockBlob</BlobType><LeaseStatus>unlocked</LeaseStatus><LeaseState>available"
        "</LeaseState></Properties></Blob>"
        for name in page
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<EnumerationResults ServiceEndpoint="https://{AZURITE_ACCOUNT}.blob.core.windows.net/" '
        f'ContainerName="{container}"><Prefix>{escape(prefix)}</Prefix><Marker>{escape(marker)}</Marker>'
        f"<MaxResults>{size}</MaxResults><Blobs>{blobs}</Blobs><NextMarker>{escape(rest[0]) if rest else ''}"
        "</NextMarker></EnumerationResults>"
    )
    return Reply(raw=body.encode(), headers={"Content-Type": "application/xml", "x-ms-version": "2021-12-02"})
