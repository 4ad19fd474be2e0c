"""How both Azure ML engines reach a datastore's blobs: the datastore's kind and the credential that goes with it,
decided as Azure ML decides it.

A datastore that keeps a credential is read and written with it: its account key, its SAS token, or, for ADLS Gen2,
its service principal (the workspace caches these: "credential-based authentication ... storage account key or SAS
token ... service principal information", and "If a datastore has cached credentials, such as storage account key,
those credentials are used instead of user identity"). A datastore without one is *identity-based*: "your Azure
account (Microsoft Entra token) is used to confirm you have permission to access the storage service", which here is
the Airflow connection's identity, asked for a token for Azure Storage (``https://storage.azure.com/.default``, which
azure-storage-blob requests of a token credential). Source: https://learn.microsoft.com/azure/machine-learning/
how-to-identity-based-service-authentication, "Data storage" and "Accessing storage services".

| kind                  | what the datastore keeps             | what reads and writes it here                     |
|-----------------------|--------------------------------------|---------------------------------------------------|
| ``account_key``       | the storage account key              | the key                                           |
| ``sas``               | a SAS token                          | the token                                         |
| ``service_principal`` | ADLS Gen2: tenant, client id, secret | that service principal (azure-identity)           |
| ``identity``          | nothing (blob or ADLS Gen2)          | the connection's identity (Blob Data Contributor) |

ADLS Gen2 data is read and written through the Blob endpoint of its account (multi-protocol access: "Blob APIs and
Data Lake Storage Gen2 APIs can operate on the same data", https://learn.microsoft.com/azure/storage/blobs/
data-lake-storage-multi-protocol-access), its file system as the container.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azureml_parallel_r.models import StorageLocation

ACCOUNT_KEY, SAS, SERVICE_PRINCIPAL, IDENTITY = "account_key", "sas", "service_principal", "identity"
KIND_NAMES = {
    ACCOUNT_KEY: "account key",
    SAS: "SAS token",
    SERVICE_PRINCIPAL: "service principal",
    IDENTITY: "identity-based (no credential kept)",
}


class UnsupportedDatastoreError(ValueError):
    """The datastore is not one whose blobs the engines can read and write."""


@dataclass(frozen=True)
class DatastoreAccess:
    """A datastore as the engines reach it: where its blobs are and with what.

    :param name: the datastore's name.
    :param kind: :data:`ACCOUNT_KEY`, :data:`SAS`, :data:`SERVICE_PRINCIPAL` or :data:`IDENTITY`.
    :param account: the storage account.
    :param container: the blob container (an ADLS Gen2 datastore's file system).
    :param adls: whether it is an ADLS Gen2 datastore.
    :param endpoint: the storage endpoint suffix (``core.windows.net``).
    :param protocol: ``https`` or ``http``.
    :param secret: the account key or SAS token (never shown).
    :param service_principal: (tenant, client id, client secret, authority or None) of an ADLS Gen2 datastore (never
        shown).
    """

    name: str
    kind: str
    account: str
    container: str
    adls: bool = False
    endpoint: str | None = None
    protocol: str | None = None
    secret: str | None = field(default=None, repr=False)
    service_principal: tuple[str, str, str, str | None] | None = field(default=None, repr=False)

    def credential(self, identity: Any, authority: str | None = None) -> Any:
        """What azure-storage-blob signs this datastore's requests with.

        :param identity: the connection's azure-identity credential (an identity-based datastore's).
        :param authority: the connection's Entra ID authority, for a service principal that names none.
        """
        if self.kind in (ACCOUNT_KEY, SAS):
            return self.secret
        if self.kind == SERVICE_PRINCIPAL and self.service_principal:
            from azure.identity import ClientSecretCredential

            tenant, client_id, secret, own_authority = self.service_principal
            chosen = own_authority or authority
            return ClientSecretCredential(tenant, client_id, secret, **({"authority": chosen} if chosen else {}))
        return identity

    def client(self, identity: Any, authority: str | None = None) -> Any:
        """The datastore's container client (azure-storage-blob), signed with :meth:`credential`."""
        from azureml_parallel_r.backends.azure.storage import container_client

        return container_client(
            self.account,
            self.container,
            self.credential(identity, authority),
            endpoint=self.endpoint,
            protocol=self.protocol,
        )

    def location(self, path: str) -> StorageLocation:
        """Where ``path`` of this datastore lives, for lineage (:func:`~.storage.datastore_location`)."""
        from azureml_parallel_r.backends.azure.storage import datastore_location

        return datastore_location(
            self.account, self.container, path, adls_file_system=self.container if self.adls else None
        )

    def describe(self) -> str:
        """One line for the connection test and the preflight: the datastore, its kind and who reads it."""
        where = f"{'ADLS Gen2 file system' if self.adls else 'blob container'} {self.container} of {self.account}"
        if self.kind == SERVICE_PRINCIPAL and self.service_principal:
            who = f"its service principal {self.service_principal[1]}"
        elif self.kind == IDENTITY:
            who = "the connection's identity (needs Storage Blob Data Contributor on it)"
        else:
            who = f"its {KIND_NAMES[self.kind]}"
        return f"datastore {self.name}: {where}, {KIND_NAMES[self.kind]}; read and written with {who}"


def _refuse(name: str, kind: str) -> UnsupportedDatastoreError:
    return UnsupportedDatastoreError(
        f"datastore {name} is of type {kind}: the engines read and write blob containers, so it must be an Azure Blob "
        "or an ADLS Gen2 datastore; set the connection's datastore to one of those"
    )


def v1_access(store: Any) -> DatastoreAccess:
    """A datastore of azureml-core (``AzureBlobDatastore`` or ``AzureDataLakeGen2Datastore``, as
    ``_DatastoreClient._dto_to_datastore`` builds them, azureml/data/datastore_client.py).

    :param store: the SDK's datastore.
    """
    kind = str(getattr(store, "datastore_type", ""))
    common = {
        "name": store.name,
        "account": store.account_name,
        "container": store.container_name,
        "endpoint": store.endpoint,
        "protocol": store.protocol,
    }
    if kind == "AzureBlob":
        if store.account_key:
            return DatastoreAccess(kind=ACCOUNT_KEY, secret=store.account_key, **common)
        if store.sas_token:
            return DatastoreAccess(kind=SAS, secret=store.sas_token, **common)
        return DatastoreAccess(kind=IDENTITY, **common)
    if kind == "AzureDataLakeGen2":
        if store.tenant_id and store.client_id and store.client_secret:
            principal = (store.tenant_id, store.client_id, store.client_secret, store.authority_url or None)
            return DatastoreAccess(kind=SERVICE_PRINCIPAL, adls=True, service_principal=principal, **common)
        return DatastoreAccess(kind=IDENTITY, adls=True, **common)
    raise _refuse(store.name, kind or type(store).__name__)


def v2_access(store: Any) -> DatastoreAccess:
    """A datastore of azure-ai-ml read with its secrets (``AzureBlobDatastore`` or ``AzureDataLakeGen2Datastore``,
    azure/ai/ml/entities/_datastore/azure_storage.py; credentials from azure/ai/ml/entities/_credentials.py).

    :param store: the SDK's datastore, got with ``include_secrets=True``.
    """
    kind = str(getattr(store, "type", "")).lower().rsplit(".", 1)[-1]
    credentials = getattr(store, "credentials", None)
    adls = kind.endswith("azure_data_lake_gen2")
    if not adls and not kind.endswith("azure_blob"):
        raise _refuse(store.name, str(getattr(store, "type", type(store).__name__)))
    common = {
        "name": store.name,
        "account": store.account_name,
        "adls": adls,
        "endpoint": store.endpoint,
        "protocol": store.protocol,
        "container": store.filesystem if adls else store.container_name,
    }
    if account_key := getattr(credentials, "account_key", None):
        return DatastoreAccess(kind=ACCOUNT_KEY, secret=account_key, **common)
    if sas_token := getattr(credentials, "sas_token", None):
        return DatastoreAccess(kind=SAS, secret=sas_token, **common)
    if credentials is not None and getattr(credentials, "client_secret", None):
        principal = (
            credentials.tenant_id,
            credentials.client_id,
            credentials.client_secret,
            getattr(credentials, "authority_url", None) or None,
        )
        return DatastoreAccess(kind=SERVICE_PRINCIPAL, service_principal=principal, **common)
    return DatastoreAccess(kind=IDENTITY, **common)
