"""Authentication for the Azure ML engines, from an Airflow connection: the same connection fields for both SDKs.

Follows the Microsoft Azure provider's conventions: the client id in the connection's login, the client
secret in its password (Airflow masks it in logs and the UI), the tenant and other settings in the extra.
``extra["auth"]`` picks the mode; without it, a login and password mean a service principal, and anything
else means ``DefaultAzureCredential``.

| ``auth``              | needs                                                   | v1 (azureml-core)              | v2 (azure-identity)          |
|-----------------------|---------------------------------------------------------|--------------------------------|------------------------------|
| ``service_principal`` | login = client id, password = secret, ``tenant_id``     | ServicePrincipalAuthentication | ClientSecretCredential       |
| ``managed_identity``  | optional ``managed_identity_client_id`` (user-assigned) | MsiAuthentication              | ManagedIdentityCredential    |
| ``cli``               | ``az login`` done on the worker (``az`` on PATH)        | TokenAuthentication bridge     | AzureCliCredential           |
| ``default``           | azure-identity's DefaultAzureCredential chain           | TokenAuthentication bridge     | DefaultAzureCredential       |
| ``workload_identity`` | AZURE_FEDERATED_TOKEN_FILE etc. (AKS)                   | TokenAuthentication bridge     | WorkloadIdentityCredential   |

SDK v2 takes azure-identity credentials directly (:func:`build_credential`); SDK v1 gets its own classes where it
has them and a bridge to the same azure-identity credential otherwise (:func:`build_auth`).
"""  # noqa: E501

from __future__ import annotations

from typing import Any

from azureml_parallel_r.get_provider_info import AUTH_MODES as _FORM_AUTH_MODES

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


def token_bridge(credential: Any) -> Any:
    """Wrap an azure-identity credential for azureml-core (which asks for tokens by audience)."""
    from azureml.core.authentication import TokenAuthentication

    def get_token_for_audience(audience: str) -> str:
        return credential.get_token(audience.rstrip("/") + "/.default").token

    return TokenAuthentication(get_token_for_audience)


def _service_principal(extras: dict[str, Any], login: str | None, password: str | None) -> str:
    """The tenant of a service principal connection; says what is missing."""
    tenant = extras.get("tenant_id") or extras.get("tenantId")
    missing = [name for name, value in (("login (client id)", login), ("password (client secret)", password),
                                        ("extra tenant_id", tenant)) if not value]  # fmt: skip
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
    if mode == "service_principal":
        tenant = _service_principal(extras, login, password)
        return identity.ClientSecretCredential(tenant, str(login), str(password)), (
            f"service principal {login} in tenant {tenant} (azure-identity)"
        )
    if mode == "managed_identity":
        client_id, described = _managed_identity(extras)  # None: the system-assigned identity
        return identity.ManagedIdentityCredential(client_id=client_id), f"{described} (azure-identity)"
    if mode == "cli":  # azure-identity calls the az executable
        return identity.AzureCliCredential(), "Azure CLI login (azure-identity)"
    if mode == "workload_identity":
        return identity.WorkloadIdentityCredential(), "workload identity (azure-identity)"
    client_id, _described = _managed_identity(extras)
    # passed only when set: DefaultAzureCredential defaults it to AZURE_CLIENT_ID, which an explicit None would hide
    kwargs = {"managed_identity_client_id": client_id} if client_id else {}
    return identity.DefaultAzureCredential(**kwargs), "DefaultAzureCredential (azure-identity)"


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
    if mode == "service_principal":
        tenant = _service_principal(extras, login, password)
        return authentication.ServicePrincipalAuthentication(tenant, login, password), (
            f"service principal {login} in tenant {tenant}"
        )
    if mode == "managed_identity":
        client_id, described = _managed_identity(extras)
        identity = {"client_id": client_id} if client_id else None
        return authentication.MsiAuthentication(identity_config=identity), described
    credential, described = build_credential(extras, login, password)
    return token_bridge(credential), described
