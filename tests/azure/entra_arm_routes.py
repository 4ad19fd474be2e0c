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
    ADLS_CLIENT_ID,
    ADLS_CLIENT_SECRET,
    APPLICATIONS,
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    DATASTORE,
    DATASTORES,
    LOCATION,
    RESOURCE_GROUP,
    STORAGE_RESOURCE,
    SUBSCRIPTION,
    TENANT,
    arm_workspace,
    container_sas,
    jwt,
)


def entra_error(status: int, error: str, code: int, description: str) -> Reply:
    """Microsoft Entra ID's token error response (``error``, ``error_description`` starting with the AADSTS code,
    ``error_codes``)."""
    return Reply(status, {"error": error, "error_description": f"AADSTS{code}: {description}", "error_codes": [code]})


class EntraArmRoutes:
    """Entra ID, ARM, discovery and the datastore."""

    def openid_configuration(self, call: Call, match: Any) -> Reply:
        """OpenID Connect discovery document; msal reads authorization_endpoint and token_endpoint
        (msal/authority.py, Authority.__init__). Shape: https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc"""
        base = f"https://login.microsoftonline.com/{match['tenant']}"
        return Reply(
            body={
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "issuer": f"{base}/v2.0",
            }
        )

    def token(self, call: Call, match: Any) -> Reply:
        """Client-credentials token (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#successful-response)
        for the requested ``scope``, ``<resource>/.default``: the token's audience (``aud``) is that resource, its
        issuer (``iss``) the tenant's v1 token service ``https://sts.windows.net/<tenant>/`` (the issuer of the v1
        tokens Azure Storage and ARM receive), with ``iat``, ``nbf`` and ``exp`` and the application's id as ``appid``
        (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference). azure-ai-ml checks ``aud``
        for the ``https://ml.azure.com`` token it sends with a pipeline job (``JobOperations.
        _set_headers_with_user_aml_token``); Azurite (``--oauth basic``) checks ``iss``, ``aud`` and the lifetime of a
        storage token. An application the tenant does not know, or a wrong secret, is refused with the error response
        of the same page (``invalid_client``; AADSTS700016 and AADSTS7000215,
        https://learn.microsoft.com/entra/identity-platform/reference-error-codes)."""
        form = parse_qs(call.body.decode())
        scope = form.get("scope", [""])[0].split(" ")[0]
        client_id, secret = form.get("client_id", [""])[0], form.get("client_secret", [""])[0]
        if client_id not in APPLICATIONS:
            return entra_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if secret != APPLICATIONS[client_id]:
            return entra_error(
                401, "invalid_client", 7000215, f"Invalid client secret provided for application '{client_id}'."
            )
        issued = int(time.time())
        claims = {
            "aud": scope.removesuffix("/.default"),
            "iss": f"https://sts.windows.net/{match['tenant']}/",
            "iat": issued,
            "nbf": issued,
            "exp": issued + 3600,
            "tid": match["tenant"],
            "oid": f"object-of-{client_id}",
            "appid": client_id,
        }
        return Reply(
            body={"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": jwt(claims)}
        )

    def instance_discovery(self, call: Call, match: Any) -> Reply:
        """Microsoft Entra ID's instance discovery document, which msal reads for the public cloud's host aliases
        (``ClientApplication._get_instance_metadata`` reads ``metadata``, msal/application.py; azureml-core's service
        principal sign-in reaches it after a refused secret): the public cloud's one entry, its hosts as the
        document lists them."""
        base = "https://login.microsoftonline.com"
        return Reply(
            body={
                "tenant_discovery_endpoint": f"{base}/common/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [
                    {
                        "preferred_network": "login.microsoftonline.com",
                        "preferred_cache": "login.windows.net",
                        "aliases": [
                            "login.microsoftonline.com",
                            "login.windows.net",
                            "login.microsoft.com",
                            "sts.windows.net",
                        ],
                    }
                ],
            }
        )

    def subscriptions(self, call: Call, match: Any) -> Reply:
        """Subscriptions - List (https://learn.microsoft.com/rest/api/resources/subscriptions/list); the SDK checks
        that the workspace's subscription is among them (azureml/core/authentication.py, _get_service_client)."""
        return Reply(
            body={
                "value": [
                    {
                        "id": f"/subscriptions/{SUBSCRIPTION}",
                        "subscriptionId": SUBSCRIPTION,
                        "tenantId": TENANT,
                        "displayName": "fake",
                        "state": "Enabled",
                    }
                ]
            }
        )

    def workspace(self, call: Call, match: Any) -> Reply:
        """Workspaces - Get; Workspace.get calls it (azureml/_project/_commands.py, get_workspace)."""
        return Reply(body=arm_workspace())

    def discovery(self, call: Call, match: Any) -> Reply:
        """The workspace's discovery document: one base URL per service (keys read in
        azureml/_restclient/service_context.py, _ServiceKeys; fetched by azureml/_base_sdk_common/
        service_discovery.py, ServiceDiscovery.discover_services_uris)."""
        api = f"https://{LOCATION}.api.azureml.ms"
        keys = (
            "api",
            "catalog",
            "experimentation",
            "history",
            "hyperdrive",
            "labeling",
            "modelmanagement",
            "pipelines",
        )
        return Reply(body={**{key: api for key in keys}, "studio": "https://ml.azure.com"})

    def datastore(self, call: Call, match: Any) -> Reply:
        """A datastore of the workspace on the Azurite account, of its kind (:data:`tests.azure.workspace.DATASTORES`),
        as the SDK's DataStore and AzureStorage models carry it (azureml/_restclient/models/data_store.py,
        azure_storage.py, client_credentials.py; turned into AzureBlobDatastore or AzureDataLakeGen2Datastore by
        ``_DatastoreClient._dto_to_datastore``, azureml/data/datastore_client.py; read by Datastore.get and
        Workspace.get_default_datastore). The credential types are the SDK's AzureStorageCredentialTypes (None, Sas,
        AccountKey, ClientCredentials); an ADLS Gen2 service principal is registered with the storage resource
        (``_register_azure_data_lake_gen2``: ``resource_url or STORAGE_RESOURCE_URI``). Unknown names are 404."""
        name = match.groupdict().get("name") or DATASTORE
        store = DATASTORES.get(name)
        if store is None:
            return Reply(404, {"error": {"code": "UserError", "message": f"Datastore {name} not found"}})
        section: dict[str, Any] = {
            "accountName": AZURITE_ACCOUNT,
            "containerName": store.container,
            "endpoint": "core.windows.net",
            "protocol": "https",
            "blobCacheTimeout": 0,
            "subscriptionId": SUBSCRIPTION,
            "resourceGroup": RESOURCE_GROUP,
            "credentialType": "None",
            "isSas": False,
        }
        if store.kind == "account_key":
            section.update(credentialType="AccountKey", credential=AZURITE_KEY, accountKey=AZURITE_KEY)
        elif store.kind == "sas":
            token = container_sas(store.container)
            section.update(credentialType="Sas", credential=token, sasToken=token, isSas=True)
        elif store.kind == "adls_sp":
            section.update(
                credentialType="ClientCredentials",
                clientCredentials={
                    "clientId": ADLS_CLIENT_ID,
                    "tenantId": TENANT,
                    "clientSecret": ADLS_CLIENT_SECRET,
                    "isCertAuth": False,
                    "resourceUri": STORAGE_RESOURCE,
                    "authorityUrl": "https://login.microsoftonline.com",
                },
            )
        kind = "AzureDataLakeGen2" if store.adls else "AzureBlob"
        return Reply(
            body={
                "name": name,
                "dataStoreType": kind,
                "hasBeenValidated": True,
                "tags": {},
                "azureStorageSection": section,
            }
        )
