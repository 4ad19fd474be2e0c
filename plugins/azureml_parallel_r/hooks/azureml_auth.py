"""Authentication for the Azure ML engines, from an Airflow connection: the same connection fields for both SDKs.

Follows the Microsoft Azure provider's conventions: the client id in the connection's login, the client
secret in its password (Airflow masks it in logs and the UI), the tenant and other settings in the extra.
``extra["auth"]`` picks the mode; without it, a login and password mean a service principal, and anything
else means ``DefaultAzureCredential``.

| ``auth``              | needs                                                   | v1 (azureml-core)              | v2 (azure-identity)          |
|-----------------------|---------------------------------------------------------|--------------------------------|------------------------------|
| ``service_principal`` | login = client id, password = secret, ``tenantId``      | ServicePrincipalAuthentication | ClientSecretCredential       |
| ``managed_identity``  | optional ``managed_identity_client_id`` (user-assigned) | MsiAuthentication              | ManagedIdentityCredential    |
| ``cli``               | ``az login`` done on the worker (``az`` on PATH)        | TokenAuthentication bridge     | AzureCliCredential           |
| ``default``           | azure-identity's DefaultAzureCredential chain           | TokenAuthentication bridge     | DefaultAzureCredential       |
| ``workload_identity`` | AZURE_FEDERATED_TOKEN_FILE etc. (AKS)                   | TokenAuthentication bridge     | WorkloadIdentityCredential   |

SDK v2 takes azure-identity credentials directly (:func:`build_credential`); SDK v1 gets its own classes where it
has them and a bridge to the same azure-identity credential otherwise (:func:`build_auth`).

The Microsoft Azure provider's conventions, and where its code is used:

- ``cloud_environment`` (``AzurePublicCloud``, the default, ``AzureUSGovernment``, ``AzureChinaCloud``: the values
  of its own connection forms) picks the sovereign cloud: the Entra ID authority of every azure-identity credential
  that has one, and the SDKs' ``cloud``. The provider falls back to the public cloud for a name it does not know;
  here an unknown name is refused, since signing in to the wrong cloud fails later and less clearly.
- ``workload_identity_tenant_id`` with ``managed_identity_client_id`` under ``"auth": "default"`` is the provider's
  own pair, and on the public cloud the credential is built by its helper,
  ``airflow.providers.microsoft.azure.utils.get_sync_default_azure_credential``. It is not used where it cannot do
  the job: it takes no authority (sovereign clouds), and it drops a ``managed_identity_client_id`` given without a
  tenant, which here selects a user-assigned identity as azure-identity documents.
- The connection fields keep the provider's names (``tenantId``, ``subscriptionId``, ``resource_group_name``,
  ``managed_identity_client_id``, ``workload_identity_tenant_id``, ``cloud_environment``) and the client id and
  secret in login and password; ``extra__azureml_parallel_r__`` prefixes are read as its ``get_field`` reads them.
- Its storage hooks (``WasbHook``, ``AzureDataLakeStorageV2Hook``) are not used for the datastore's blobs: they are
  built from an Airflow connection of their own, while an Azure ML datastore carries its credential in the
  workspace (an account key, a SAS token, an ADLS Gen2 service principal, or none: then the connection's identity),
  which the backends read from the workspace so that one connection is all a user configures
  (:mod:`azureml_parallel_r.backends.azure.datastore_access`). Both engines read storage with :func:`build_credential`'s
  azure-identity credential, never with azureml-core's authentication object, whose ``get_token`` returns a token for
  Azure Resource Manager whatever scope it is asked for.
"""  # noqa: E501

from __future__ import annotations

from typing import Any

from azureml_parallel_r.get_provider_info import AUTH_MODES as _FORM_AUTH_MODES
from azureml_parallel_r.get_provider_info import CLOUDS as _FORM_CLOUDS

INFERRED = "auto"  # the connection form's default: ``auth`` absent means the same
AUTH_MODES = tuple(mode for mode in _FORM_AUTH_MODES if mode != INFERRED)


class AzureAuthConfigError(ValueError):
    """The connection does not hold what its authentication mode needs."""


def auth_mode(extras: dict[str, Any], login: str | None, password: str | None) -> str:
    """The authentication mode the connection asks for (explicit ``auth``, else inferred)."""
    mode = extras.get("auth")
    if mode in (None, "", INFERRED):  # a login and password mean a service principal
        mode = "service_principal" if login and password else "default"
    if mode not in AUTH_MODES:
        raise AzureAuthConfigError(f"auth={mode!r} in the connection extra; expected one of {', '.join(AUTH_MODES)}")
    return mode


PUBLIC_CLOUD = _FORM_CLOUDS[0]
# the provider's cloud_environment -> (the SDKs' ``cloud``: azureml-core's authentication classes and azure-ai-ml's
# MLClient both take "AzureCloud", "AzureUSGovernment", "AzureChinaCloud"; the Entra ID authority host:
# azure.identity.AzureAuthorityHosts)
CLOUD_ENVIRONMENTS = {
    PUBLIC_CLOUD: ("AzureCloud", "login.microsoftonline.com"),
    "AzureUSGovernment": ("AzureUSGovernment", "login.microsoftonline.us"),
    "AzureChinaCloud": ("AzureChinaCloud", "login.chinacloudapi.cn"),
}


def cloud_environment(extras: dict[str, Any]) -> tuple[str, str, str]:
    """The connection's cloud: its ``cloud_environment`` name, the SDKs' cloud name and the Entra ID authority.

    :param extras: the connection's extra.
    """
    name = extras.get("cloud_environment") or PUBLIC_CLOUD
    if name not in CLOUD_ENVIRONMENTS:
        raise AzureAuthConfigError(
            f"cloud_environment={name!r} in the connection extra; expected one of {', '.join(CLOUD_ENVIRONMENTS)}"
        )
    sdk_cloud, authority = CLOUD_ENVIRONMENTS[name]
    return name, sdk_cloud, authority


def token_bridge(credential: Any, cloud: str = "AzureCloud") -> Any:
    """Wrap an azure-identity credential for azureml-core (which asks for tokens by audience).

    :param credential: an azure-identity credential.
    :param cloud: the SDKs' cloud name (without one, azureml-core would take the Azure CLI's default cloud).
    """
    from azureml.core.authentication import TokenAuthentication

    def get_token_for_audience(audience: str) -> str:
        return credential.get_token(audience.rstrip("/") + "/.default").token

    return TokenAuthentication(get_token_for_audience, cloud=cloud)


def _service_principal(extras: dict[str, Any], login: str | None, password: str | None) -> str:
    """The tenant of a service principal connection; says what is missing."""
    tenant = extras.get("tenant_id") or extras.get("tenantId")
    missing = [
        name
        for name, value in (
            ("login (client id)", login),
            ("password (client secret)", password),
            ("extra tenantId", tenant),
        )
        if not value
    ]
    if missing:
        raise AzureAuthConfigError(f"service principal authentication needs {', '.join(missing)}")
    return str(tenant)


def _managed_identity(extras: dict[str, Any]) -> tuple[str | None, str]:
    """The user-assigned identity's client id (None: the system-assigned one) and its description."""
    client_id = extras.get("managed_identity_client_id") or None
    if client_id:
        return client_id, f"user-assigned managed identity {client_id}"
    return None, "system-assigned managed identity"


def build_credential(extras: dict[str, Any], login: str | None, password: str | None) -> tuple[Any, str]:
    """Return the azure-identity credential of the connection and a description safe to log (no secrets).

    :param extras: the connection's extra.
    :param login: the connection's login (a client id).
    :param password: the connection's password (a client secret); never logged or returned.
    """
    from azure import identity

    mode = auth_mode(extras, login, password)
    cloud, _sdk_cloud, authority = cloud_environment(extras)
    where = "" if cloud == PUBLIC_CLOUD else f", {cloud}"
    if mode == "service_principal":
        tenant = _service_principal(extras, login, password)
        return identity.ClientSecretCredential(tenant, str(login), str(password), authority=authority), (
            f"service principal {login} in tenant {tenant} (azure-identity{where})"
        )
    if mode == "managed_identity":  # the instance metadata endpoint: no authority
        client_id, described = _managed_identity(extras)  # None: the system-assigned identity
        return identity.ManagedIdentityCredential(client_id=client_id), f"{described} (azure-identity{where})"
    if mode == "cli":  # azure-identity calls the az executable, signed in to its own cloud (`az cloud set`)
        return identity.AzureCliCredential(), f"Azure CLI login (azure-identity{where})"
    if mode == "workload_identity":
        return identity.WorkloadIdentityCredential(authority=authority), f"workload identity (azure-identity{where})"
    return _default_credential(extras, cloud, authority), f"DefaultAzureCredential (azure-identity{where})"


def _default_credential(extras: dict[str, Any], cloud: str, authority: str) -> Any:
    """DefaultAzureCredential; with the provider's managed identity and workload identity tenant pair on the public
    cloud, built by the provider's own helper."""
    from azure import identity

    client_id, _described = _managed_identity(extras)
    tenant = extras.get("workload_identity_tenant_id") or None
    if client_id and tenant and cloud == PUBLIC_CLOUD:
        from airflow.providers.microsoft.azure.utils import get_sync_default_azure_credential

        return get_sync_default_azure_credential(
            managed_identity_client_id=client_id, workload_identity_tenant_id=tenant
        )
    # passed only when set: DefaultAzureCredential defaults them to AZURE_CLIENT_ID and AZURE_TENANT_ID, which an
    # explicit None would hide
    kwargs: dict[str, Any] = {"managed_identity_client_id": client_id} if client_id else {}
    if tenant:
        kwargs.update(workload_identity_tenant_id=tenant, additionally_allowed_tenants=[tenant])
    return identity.DefaultAzureCredential(authority=authority, **kwargs)


def build_auth(extras: dict[str, Any], login: str | None, password: str | None) -> tuple[Any, str]:
    """Return the azureml-core (SDK v1) authentication object and a description safe to log (no secrets): the
    SDK's own classes for a service principal and a managed identity, else a bridge to :func:`build_credential`'s
    azure-identity credential (azureml-core's own CLI class needs azure-cli installed here).

    :param extras: the connection's extra.
    :param login: the connection's login (a client id).
    :param password: the connection's password (a client secret); never logged or returned.
    """
    from azureml.core import authentication

    mode = auth_mode(extras, login, password)
    cloud, sdk_cloud, _authority = cloud_environment(extras)
    where = "" if cloud == PUBLIC_CLOUD else f" ({cloud})"
    if mode == "service_principal":
        tenant = _service_principal(extras, login, password)
        return authentication.ServicePrincipalAuthentication(tenant, login, password, cloud=sdk_cloud), (
            f"service principal {login} in tenant {tenant}{where}"
        )
    if mode == "managed_identity":
        client_id, described = _managed_identity(extras)
        identity = {"client_id": client_id} if client_id else None
        return authentication.MsiAuthentication(cloud=sdk_cloud, identity_config=identity), described + where
    credential, described = build_credential(extras, login, password)
    return token_bridge(credential, sdk_cloud), described
