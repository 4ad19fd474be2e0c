"""Azure ML authentication from the connection, and secrets that never reach logs."""

from __future__ import annotations

import json
import logging
from unittest import mock

import pytest

from azureml_parallel_r.backends.azureml import AzureMLBackend
from azureml_parallel_r.hooks.azureml_auth import AzureAuthConfigError, auth_mode, build_auth
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook, ConnectionNotConfiguredError
from tests.conftest import CONN_VARIABLE

pytestmark = pytest.mark.filterwarnings("ignore")
SECRET = "sup3r-s3cret-value"
WORKSPACE = {"engine": "azureml", "subscription_id": "sub", "resource_group": "rg", "workspace_name": "ws"}


def _connection(monkeypatch: pytest.MonkeyPatch, extra: dict, login: str | None = None, password: str | None = None):
    conn = {"conn_type": "generic", "extra": {**WORKSPACE, **extra}}
    if login:
        conn["login"] = login
    if password:
        conn["password"] = password
    monkeypatch.setenv(CONN_VARIABLE, json.dumps(conn))


def test_service_principal_from_login_password_and_tenant() -> None:
    from azureml.core.authentication import ServicePrincipalAuthentication

    auth, described = build_auth({"tenant_id": "t-1"}, "client-1", SECRET)
    assert isinstance(auth, ServicePrincipalAuthentication)
    assert described == "service principal client-1 in tenant t-1" and SECRET not in described


def test_service_principal_says_what_is_missing() -> None:
    with pytest.raises(AzureAuthConfigError, match=r"needs password \(client secret\), extra tenant_id"):
        build_auth({"auth": "service_principal"}, "client-1", None)


@pytest.mark.parametrize(
    ("extra", "expected_class", "described"),
    [
        ({"auth": "managed_identity"}, "MsiAuthentication", "system-assigned managed identity"),
        ({"auth": "managed_identity", "managed_identity_client_id": "mi-1"}, "MsiAuthentication",
         "user-assigned managed identity mi-1"),
        ({"auth": "cli"}, "TokenAuthentication", "Azure CLI login (azure-identity)"),
        ({}, "TokenAuthentication", "DefaultAzureCredential (azure-identity)"),
        ({"auth": "default"}, "TokenAuthentication", "DefaultAzureCredential (azure-identity)"),
    ],
)  # fmt: skip
def test_other_modes(extra: dict, expected_class: str, described: str) -> None:
    auth, text = build_auth(extra, None, None)
    assert type(auth).__name__ == expected_class and text == described


def test_workload_identity_bridges_an_azure_identity_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure import identity

    credential = mock.Mock()
    credential.get_token.return_value = mock.Mock(token="aad-token")
    monkeypatch.setattr(identity, "WorkloadIdentityCredential", lambda: credential)
    auth, described = build_auth({"auth": "workload_identity"}, None, None)
    assert described == "workload identity (azure-identity)"
    assert auth._get_token_for_audience("https://management.azure.com/") == "aad-token"
    credential.get_token.assert_called_once_with("https://management.azure.com/.default")


def test_unknown_auth_mode() -> None:
    with pytest.raises(AzureAuthConfigError, match="auth='kerberos'"):
        auth_mode({"auth": "kerberos"}, None, None)


@pytest.mark.integration
def test_hook_connects_to_the_workspace_and_never_logs_the_secret(fake_azure, caplog, capfd) -> None:
    """Through the real SDK and msal, down to the token request of the fake Entra ID: the secret goes only
    into the token request's body, never into a log line."""
    from tests.azure.fake import CLIENT_SECRET

    with caplog.at_level(logging.DEBUG):
        backend = AzureMLParallelRunHook().get_conn()
        assert isinstance(backend, AzureMLBackend) and backend.settings.compute_target == "r-cluster"
        assert backend.workspace.name == "ws-parallel-r" and backend.datastore().name == "workspaceblobstore"
    (token,) = fake_azure.wire.calls_to("POST", r"/oauth2/v2\.0/token$")
    assert CLIENT_SECRET in token.body.decode()  # the service principal really authenticated
    captured = capfd.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert "service principal 00000000-0000-0000-0000-0000000000cc in tenant" in logged
    assert CLIENT_SECRET not in logged and CLIENT_SECRET not in repr(backend.settings)


def test_incomplete_azure_connections_say_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONN_VARIABLE, json.dumps({"conn_type": "generic", "extra": {"engine": "azureml"}}))
    with pytest.raises(ConnectionNotConfiguredError, match="lacks subscription_id, resource_group, workspace_name"):
        AzureMLParallelRunHook().get_conn()
    _connection(monkeypatch, {"auth": "service_principal"}, "client-1")
    with pytest.raises(ConnectionNotConfiguredError, match="needs password"):
        AzureMLParallelRunHook().get_conn()
