"""The fake workspace's v2 datastores and computes as azure-ai-ml (and, for a compute, azureml-core) reads them: a
mixin of :class:`tests.azure.ml_service.MLService`, whose routes point here. Every route names the SDK code that calls
it and the model or Microsoft document its answer follows."""

from __future__ import annotations

from typing import Any

from tests.azure.arm_resources import bad_request, not_found, resource
from tests.azure.storage_roles import COMPUTE_IDENTITY
from tests.azure.wire import Call, Reply
from tests.azure.workspace import (
    ADLS_CLIENT_ID,
    ADLS_CLIENT_SECRET,
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    DATASTORES,
    LOCATION,
    RESOURCE_GROUP,
    STORAGE_RESOURCE,
    SUBSCRIPTION,
    TENANT,
    container_sas,
)

DEFAULT_DATASTORE = "workspaceblobstore"
COMPUTES = ("r-cluster", "cpu-cluster")


class DatastoreComputeRoutes:
    """Datastores (with their secrets) and compute clusters."""

    # -- datastores ---------------------------------------------------------------------------------------

    def datastore_body(self, name: str) -> dict[str, Any]:
        """A datastore of the workspace, of its kind (:data:`tests.azure.workspace.DATASTORES`), whose secrets are not
        returned (Datastores - Get, https://learn.microsoft.com/rest/api/azureml/datastores/get): an AzureBlobDatastore
        with AccountKey, Sas or None credentials, or an AzureDataLakeGen2Datastore (``filesystem``) with
        ServicePrincipal (``tenantId``, ``clientId``, ``authorityUrl``, ``resourceUrl``) or None credentials (the
        generated models ``AzureBlobDatastore``, ``AzureDataLakeGen2Datastore``, ``*DatastoreCredentials``,
        azure/ai/ml/_restclient/arm_ml_service/models/_models.py). ``workspaceblobstore`` is the default and
        ``workspaceartifactstore`` (container ``azureml``) holds the runs' files, as in every workspace."""
        store = DATASTORES[name]
        credentials: dict[str, Any] = {
            "account_key": {"credentialsType": "AccountKey"},
            "sas": {"credentialsType": "Sas"},
            "adls_sp": {
                "credentialsType": "ServicePrincipal",
                "tenantId": TENANT,
                "clientId": ADLS_CLIENT_ID,
                "authorityUrl": "https://login.microsoftonline.com",
                "resourceUrl": STORAGE_RESOURCE,
            },
        }.get(store.kind, {"credentialsType": "None"})
        properties = {
            "accountName": AZURITE_ACCOUNT,
            "endpoint": "core.windows.net",
            "protocol": "https",
            "isDefault": name == DEFAULT_DATASTORE,
            "credentials": credentials,
            "serviceDataAccessAuthIdentity": "None",
            "subscriptionId": SUBSCRIPTION,
            "resourceGroup": RESOURCE_GROUP,
            "tags": {},
        }
        if store.adls:
            properties.update(datastoreType="AzureDataLakeGen2", filesystem=store.container)
        else:
            properties.update(datastoreType="AzureBlob", containerName=store.container)
        return resource("datastores", f"datastores/{name}", properties)

    def get_datastore(self, call: Call, match: Any) -> Reply:
        """Datastores - Get (``DatastoreOperations.get``, azure/ai/ml/operations/_datastore_operations.py)."""
        name = match["name"]
        return Reply(body=self.datastore_body(name)) if name in DATASTORES else not_found("datastore", name)

    def list_datastores(self, call: Call, match: Any) -> Reply:
        """Datastores - List; ``DatastoreOperations.get_default`` asks for ``isDefault=true``."""
        names = [n for n in DATASTORES if call.query.get("isDefault", [""])[0] != "true" or n == DEFAULT_DATASTORE]
        return Reply(body={"value": [self.datastore_body(n) for n in names], "nextLink": None})

    def datastore_secrets(self, call: Call, match: Any) -> Reply:
        """Datastores - List Secrets: AccountKeyDatastoreSecrets (``key``), SasDatastoreSecrets (``sasToken``) or
        ServicePrincipalDatastoreSecrets (``clientSecret``), by ``secretsType``; azure-ai-ml calls it for
        ``datastores.get(name, include_secrets=True)`` unless the credentials are None (``_fetch_and_populate_secret``)
        and before uploading an environment's build context (``get_datastore_info``, azure/ai/ml/_artifacts/
        _artifact_utilities.py). A datastore without credentials has no secrets to list: no document says what the
        service answers then, so the fake refuses the call."""
        name = match["name"]
        if name not in DATASTORES:
            return not_found("datastore", name)
        store = DATASTORES[name]
        if store.kind == "account_key":
            return Reply(body={"secretsType": "AccountKey", "key": AZURITE_KEY})
        if store.kind == "sas":
            return Reply(body={"secretsType": "Sas", "sasToken": container_sas(store.container)})
        if store.kind == "adls_sp":
            return Reply(body={"secretsType": "ServicePrincipal", "clientSecret": ADLS_CLIENT_SECRET})
        return bad_request(f"datastore {name} has no credentials: there are no secrets to list (not modelled)")

    # -- computes ---------------------------------------------------------------------------------------

    def get_compute(self, call: Call, match: Any) -> Reply:
        """Compute - Get (https://learn.microsoft.com/rest/api/azureml/compute/get): an AmlCompute cluster, with the
        fields both SDKs read: azure-ai-ml's ``compute.get`` and ``jobs.create_or_update``, which reads it while
        validating the job (``JobOperations._try_get_compute_arm_id``: an unknown cluster fails the submission), and
        azureml-core's ``ComputeTarget`` (``AmlCompute._initialize``, azureml/core/compute/amlcompute.py, reads
        ``tags``, ``description``, ``resourceId``, ``provisioningErrors``, ``vmPriority``, ``subnet`` and the scale
        settings by key). ``r-cluster`` has a system-assigned managed identity (the response's ``identity``, a
        ManagedServiceIdentity); ``cpu-cluster`` has none."""
        name = match["name"]
        if name not in COMPUTES:
            return not_found("compute", name)
        cluster = {
            "vmSize": "STANDARD_D4S_V3",
            "vmPriority": "Dedicated",
            "subnet": None,
            "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 4, "nodeIdleTimeBeforeScaleDown": "PT120S"},
            "currentNodeCount": 0,
            "targetNodeCount": 0,
            "allocationState": "Steady",
        }
        properties = {
            "computeType": "AmlCompute",
            "provisioningState": "Succeeded",
            "description": None,
            "resourceId": None,
            "provisioningErrors": None,
            "computeLocation": LOCATION,
            "isAttachedCompute": False,
            "properties": cluster,
        }
        body = {**resource("computes", f"computes/{name}", properties), "location": LOCATION, "tags": {}}
        if name == COMPUTES[0]:
            body["identity"] = {"type": "SystemAssigned", "principalId": COMPUTE_IDENTITY, "tenantId": TENANT}
        return Reply(body=body)
