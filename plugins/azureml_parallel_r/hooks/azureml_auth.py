"""Authentication for the Azure ML engine, from an Airflow connection.

Follows the Microsoft Azure provider's conventions: the client id in the connection's login, the client
secret in its password (Airflow masks it in logs and the UI), the tenant and other settings in the extra.
``extra["auth"]`` picks the mode; without it, a login and password mean a service principal, and anything
else means ``DefaultAzureCredential``.

| ``auth``             | needs                                               | azureml-core object |
|----------------------|-----------------------------------------------------|---------------------|
| ``service_principal`` | login = client id, password = secret, ``tenant_id`` | ServicePrincipalAuthentication |
| ``managed_identity``  | optional ``managed_identity_client_id`` (user-assigned) | MsiAuthentication |
| ``cli``               | ``az login`` done on the worker (``az`` on PATH)     | TokenAuthentication bridge |
| ``default``           | azure-identity's DefaultAzureCredential chain       | TokenAuthentication bridge |
| ``workload_identity`` | AZURE_FEDERATED_TOKEN_FILE etc. (AKS)               | TokenAuthentication bridge |
"""

from __future__ import annotations

from typing import Any

AUTH_MODES = ("service_principal", "managed_identity", "cli", "default", "workload_identity")


class AzureAuthConfigError(ValueError):
    """The connection does not hold what its authentication mode needs."""


def auth_mode(extras: dict[str, Any], login: str | None, password: str | None) -> str:
    """The authentication mode the connection asks for (explicit ``auth``, else inferred)."""
    mode = extras.get("auth") or ("service_principal" if login and password else "default")
    if mode not in AUTH_MODES:
        raise AzureAuthConfigError(f"auth={mode!r} in the connection extra; expected one of {', '.join(AUTH_MODES)}")
    return mode


def token_bridge(credential: Any) -> Any:
    """Wrap an azure-identity credential for azureml-core (which asks for tokens by audience)."""
    from azureml.core.authentication import TokenAuthentication

    def get_token_for_audience(audience: str) -> str:
        return credential.get_token(audience.rstrip("/") + "/.default").token

    return TokenAuthentication(get_token_for_audience)


def build_auth(extras: dict[str, Any], login: str | None, password: str | None) -> tuple[Any, str]:
    """Return the azureml-core authentication object and a description safe to log (no secrets).

    :param extras: the connection's extra.
    :param login: the connection's login (a client id).
    :param password: the connection's password (a client secret); never logged or returned.
    """
    from azureml.core import authentication

    mode = auth_mode(extras, login, password)
    tenant = extras.get("tenant_id") or extras.get("tenantId")
    if mode == "service_principal":
        missing = [name for name, value in (("login (client id)", login), ("password (client secret)", password),
                                            ("extra tenant_id", tenant)) if not value]  # fmt: skip
        if missing:
            raise AzureAuthConfigError(f"service principal authentication needs {', '.join(missing)}")
        return (
            authentication.ServicePrincipalAuthentication(tenant, login, password),
            f"service principal {login} in tenant {tenant}",
        )
    if mode == "managed_identity":
        client_id = extras.get("managed_identity_client_id")
        identity = {"client_id": client_id} if client_id else None
        return authentication.MsiAuthentication(identity_config=identity), (
            f"user-assigned managed identity {client_id}" if client_id else "system-assigned managed identity"
        )
    from azure import identity

    if mode == "cli":  # azure-identity calls the az executable; azureml's own class needs azure-cli installed here
        return token_bridge(identity.AzureCliCredential()), "Azure CLI login (azure-identity)"
    if mode == "workload_identity":
        return token_bridge(identity.WorkloadIdentityCredential()), "workload identity (azure-identity)"
    kwargs = {"managed_identity_client_id": extras["managed_identity_client_id"]} if extras.get(
        "managed_identity_client_id"
    ) else {}  # fmt: skip
    return token_bridge(identity.DefaultAzureCredential(**kwargs)), "DefaultAzureCredential (azure-identity)"
