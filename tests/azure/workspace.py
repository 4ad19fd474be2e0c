"""The fake Azure ML workspace's identity and storage: its ids and hosts, its ARM resource, the time stamps its
services write, and Azurite as its storage account (the account's client, SAS URLs on the public host, List Blobs
answers). Shared by every service of the fake (:mod:`tests.azure.workspace_service`, :mod:`tests.azure.ml_service`).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from tests.azure.wire import Call, Reply

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
ARTIFACT_STORE = "workspaceartifactstore"
ARTIFACT_CONTAINER = "azureml"  # where run history keeps a run's files (ExperimentRun/dcid.<run id>/...)

# the connection's service principal, and the one an ADLS Gen2 datastore carries (a different application)
CLIENT_ID = "00000000-0000-0000-0000-0000000000cc"
CLIENT_SECRET = "fake-client-secret-never-logged"
ADLS_CLIENT_ID = "00000000-0000-0000-0000-0000000000dd"
ADLS_CLIENT_SECRET = "fake-adls-secret-never-logged"
APPLICATIONS = {CLIENT_ID: CLIENT_SECRET, ADLS_CLIENT_ID: ADLS_CLIENT_SECRET}
STORAGE_RESOURCE = "https://storage.azure.com/"


@dataclass(frozen=True)
class FakeDatastore:
    """One datastore of the fake workspace, of one of the kinds Azure ML supports for blob data
    (https://learn.microsoft.com/azure/machine-learning/how-to-datastore): ``account_key`` and ``sas`` (credential
    based: the workspace keeps the secret), ``identity`` (a blob datastore without credentials: "identity-based data
    access ... no authentication credentials are saved", how-to-identity-based-service-authentication#data-storage),
    ``adls_sp`` (ADLS Gen2 with a service principal) and ``adls_identity`` (ADLS Gen2 without credentials). An ADLS
    Gen2 account has a hierarchical namespace, so its directories are objects of their own: List Blobs shows them
    as zero-length blobs (https://learn.microsoft.com/azure/storage/blobs/storage-blobs-list#flat-listing-versus-
    hierarchical-listing) marked with the metadata ``hdi_isfolder=true``.

    :param name: the datastore's name.
    :param kind: one of the kinds above.
    :param container: its blob container (an ADLS Gen2 file system).
    """

    name: str
    kind: str
    container: str

    @property
    def adls(self) -> bool:
        return self.kind.startswith("adls")

    @property
    def credential_less(self) -> bool:
        return self.kind in ("identity", "adls_identity")


DATASTORES = {
    store.name: store
    for store in (
        FakeDatastore(DATASTORE, "account_key", CONTAINER),
        FakeDatastore(ARTIFACT_STORE, "account_key", ARTIFACT_CONTAINER),
        FakeDatastore("sasstore", "sas", "sas-data"),
        FakeDatastore("identitystore", "identity", "identity-data"),
        FakeDatastore("adlsstore", "adls_sp", "adls-data"),
        FakeDatastore("adlsidentity", "adls_identity", "adls-identity-data"),
    )
}
DATASTORE_KINDS = ("account_key", "sas", "identity", "adls_sp", "adls_identity")


def datastore_of_kind(kind: str) -> FakeDatastore:
    """The (data) datastore of a kind: the workspace default for ``account_key``."""
    return next(store for store in DATASTORES.values() if store.kind == kind and store.name != ARTIFACT_STORE)


def add_directories(container: Any, names: list[str]) -> None:
    """On a container of an ADLS Gen2 datastore (a hierarchical namespace), make every folder on the way to ``names``
    the directory object the service makes of it (:class:`FakeDatastore`); elsewhere folders are only name prefixes.

    :param container: the fake's own client of the container.
    :param names: the blobs just written.
    """
    if not any(store.adls and store.container == container.container_name for store in DATASTORES.values()):
        return
    directories = {"/".join(name.split("/")[:depth]) for name in names for depth in range(1, name.count("/") + 1)}
    for directory in sorted(directories):
        container.upload_blob(directory, b"", overwrite=True, metadata={"hdi_isfolder": "true"})


def container_sas(container: str) -> str:
    """A SAS datastore's token: a container SAS (read, add, create, write, delete, list) signed with the account
    key, as a user registers one (https://learn.microsoft.com/rest/api/storageservices/create-service-sas)."""
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    permission = ContainerSasPermissions(read=True, add=True, create=True, write=True, delete=True, list=True)
    return generate_container_sas(
        AZURITE_ACCOUNT,
        container,
        account_key=AZURITE_KEY,
        permission=permission,
        expiry=datetime.now(UTC) + timedelta(hours=4),
    )


ARM = r"^management\.azure\.com$"
LOGIN = r"^login\.microsoftonline\.com$"
# the workspace's regional data-plane host, as discovery returns it (".api.azureml.ms")
REGION = rf"^{LOCATION}\.api\.azureml\.ms$"
WS_SCOPE = (
    rf"/subscriptions/{SUBSCRIPTION}/resource[gG]roups/{RESOURCE_GROUP}"
    rf"/providers/Microsoft\.MachineLearningServices/workspaces/{WORKSPACE}"
)


def jwt(claims: dict[str, Any]) -> str:
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
        "name": WORKSPACE,
        "type": "Microsoft.MachineLearningServices/workspaces",
        "location": LOCATION,
        "sku": {"name": "Basic", "tier": "Basic"},
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "workspaceId": WORKSPACE_ID,
            "friendlyName": WORKSPACE,
            "provisioningState": "Succeeded",
            "discoveryUrl": f"https://{LOCATION}.api.azureml.ms/discovery",
            "storageAccount": f"{scope}/providers/Microsoft.Storage/storageAccounts/{AZURITE_ACCOUNT}",
            "keyVault": f"{scope}/providers/Microsoft.KeyVault/vaults/kv",
            "v1LegacyMode": False,
        },
    }


def now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def blob_service(azurite_url: str, ca: str | None = None) -> Any:
    """The Azurite account, straight on its loopback URL (the fake's own access, not the SDK's).

    :param azurite_url: Azurite's base URL.
    :param ca: the certificate Azurite serves HTTPS with (:attr:`tests.azure.azurite.Azurite.ca`).
    """
    from azure.storage.blob import BlobServiceClient

    credential = {"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
    return BlobServiceClient(f"{azurite_url}/{AZURITE_ACCOUNT}", credential=credential, connection_verify=ca or True)


def public_blob_url(container: str, blob: str, *, write: bool = False) -> str:
    """A SAS URL on the account's public host, as the service hands out for snapshot uploads (``blobUri``,
    which ``upload_blob_from_stream`` parses with ``get_block_blob_service_credentials``,
    azureml/_file_utils/upload.py) and for artifact downloads (``contentUri``, ArtifactsClient.
    download_artifact); the wire sends it to Azurite."""
    from datetime import UTC, datetime, timedelta
    from urllib.parse import quote

    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    sas = generate_blob_sas(
        AZURITE_ACCOUNT,
        container,
        blob,
        account_key=AZURITE_KEY,
        permission=BlobSasPermissions(read=True, write=write, create=write),
        expiry=datetime.now(UTC) + timedelta(hours=2),
    )
    return f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{container}/{quote(blob)}?{sas}"


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
