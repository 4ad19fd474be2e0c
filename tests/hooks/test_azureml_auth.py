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


def test_hook_builds_the_azure_backend_and_never_logs_the_secret(monkeypatch, caplog, capfd) -> None:
    _connection(monkeypatch, {"tenant_id": "t-1", "compute_target": "r-cluster", "datastore": "inputs"},
                "client-1", SECRET)  # fmt: skip
    hook = AzureMLParallelRunHook()
    workspace = mock.Mock()
    with caplog.at_level(logging.DEBUG), mock.patch.object(AzureMLParallelRunHook, "_connect_workspace",
                                                           return_value=workspace) as connect:  # fmt: skip
        backend = hook.get_conn()
        assert isinstance(backend, AzureMLBackend)
        assert backend.settings.compute_target == "r-cluster" and backend.settings.datastore == "inputs"
        assert backend.workspace is workspace
    extras, auth = connect.call_args.args
    assert extras["workspace_name"] == "ws" and type(auth).__name__ == "ServicePrincipalAuthentication"
    captured = capfd.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert "service principal client-1 in tenant t-1" in logged
    assert SECRET not in logged and SECRET not in repr(backend.settings)


def test_incomplete_azure_connections_say_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONN_VARIABLE, json.dumps({"conn_type": "generic", "extra": {"engine": "azureml"}}))
    with pytest.raises(ConnectionNotConfiguredError, match="lacks subscription_id, resource_group, workspace_name"):
        AzureMLParallelRunHook().get_conn()
    _connection(monkeypatch, {"auth": "service_principal"}, "client-1")
    with pytest.raises(ConnectionNotConfiguredError, match="needs password"):
        AzureMLParallelRunHook().get_conn()
