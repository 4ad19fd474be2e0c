"""The fake workspace's identity routes: Microsoft Entra ID (tokens), Azure Resource Manager (the subscription and
the workspace), the workspace's discovery document and its datastore. A mixin of
:class:`tests.azure.workspace_service.WorkspaceService`; every route names the SDK code that calls it and the document
its answer follows."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from tests.azure.wire import Call, Reply
from tests.azure.workspace import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    CONTAINER,
    DATASTORE,
    LOCATION,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    TENANT,
    arm_workspace,
    jwt,
)


class EntraArmRoutes:
    """Entra ID, ARM, discovery and the datastore."""

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
            body={"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": jwt(claims)}
        )

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
