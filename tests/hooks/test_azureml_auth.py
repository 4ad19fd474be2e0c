"""Azure ML authentication from the connection, and secrets that never reach logs."""

from __future__ import annotations

import json
import logging
from unittest import mock

import pytest

from azureml_parallel_r.backends.azure.v1 import AzureMLBackend
from azureml_parallel_r.backends.azure.v2 import AzureMLV2Backend
from azureml_parallel_r.hooks.azureml_auth import AzureAuthConfigError, auth_mode, build_auth, build_credential
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook, ConnectionNotConfiguredError
from tests.conftest import CONN_VARIABLE

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
    with pytest.raises(AzureAuthConfigError, match=r"needs password \(client secret\), extra tenantId"):
        build_auth({"auth": "service_principal"}, "client-1", None)


@pytest.mark.parametrize(
    ("extra", "expected_class", "described"),
    [
        ({"auth": "managed_identity"}, "MsiAuthentication", "system-assigned managed identity"),
        (
            {"auth": "managed_identity", "managed_identity_client_id": "mi-1"},
            "MsiAuthentication",
            "user-assigned managed identity mi-1",
        ),
        ({"auth": "cli"}, "TokenAuthentication", "Azure CLI login (azure-identity)"),
        ({}, "TokenAuthentication", "DefaultAzureCredential (azure-identity)"),
        ({"auth": "default"}, "TokenAuthentication", "DefaultAzureCredential (azure-identity)"),
    ],
)
def test_other_modes(extra: dict, expected_class: str, described: str) -> None:
    auth, text = build_auth(extra, None, None)
    assert type(auth).__name__ == expected_class and text == described


def test_workload_identity_bridges_an_azure_identity_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure import identity

    credential = mock.Mock()
    credential.get_token.return_value = mock.Mock(token="aad-token")
    monkeypatch.setattr(identity, "WorkloadIdentityCredential", lambda **kwargs: credential)
    auth, described = build_auth({"auth": "workload_identity"}, None, None)
    assert described == "workload identity (azure-identity)"
    assert auth._get_token_for_audience("https://management.azure.com/") == "aad-token"
    credential.get_token.assert_called_once_with("https://management.azure.com/.default")


@pytest.mark.parametrize(
    ("extra", "login", "expected_class", "described"),
    [
        (
            {"tenant_id": "t-1"},
            "client-1",
            "ClientSecretCredential",
            "service principal client-1 in tenant t-1 (azure-identity)",
        ),
        (
            {"auth": "managed_identity"},
            None,
            "ManagedIdentityCredential",
            "system-assigned managed identity (azure-identity)",
        ),
        (
            {"auth": "managed_identity", "managed_identity_client_id": "mi-1"},
            None,
            "ManagedIdentityCredential",
            "user-assigned managed identity mi-1 (azure-identity)",
        ),
        ({"auth": "cli"}, None, "AzureCliCredential", "Azure CLI login (azure-identity)"),
        ({}, None, "DefaultAzureCredential", "DefaultAzureCredential (azure-identity)"),
    ],
)
def test_sdk_v2_takes_azure_identity_credentials(
    extra: dict, login: str | None, expected_class: str, described: str
) -> None:
    credential, text = build_credential(extra, login, SECRET if login else None)
    assert type(credential).__name__ == expected_class and text == described and SECRET not in text


def test_sdk_v2_workload_identity_reads_the_pods_federated_token(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("federated")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_CLIENT_ID", "client-1")
    monkeypatch.setenv("AZURE_TENANT_ID", "t-1")
    credential, described = build_credential({"auth": "workload_identity"}, None, None)
    assert type(credential).__name__ == "WorkloadIdentityCredential"
    assert described == "workload identity (azure-identity)"


def test_sdk_v2_service_principal_says_what_is_missing() -> None:
    with pytest.raises(AzureAuthConfigError, match=r"needs login \(client id\), extra tenantId"):
        build_credential({"auth": "service_principal"}, None, SECRET)


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


@pytest.mark.integration
def test_the_v2_hook_authenticates_and_never_logs_the_secret(fake_azure, caplog, capfd, monkeypatch) -> None:
    """The same connection with ``engine: azureml_v2``: azure-identity's ClientSecretCredential, through msal, to the
    fake Entra ID; the secret goes only into the token request's body."""
    from tests.azure.fake import CLIENT_SECRET

    monkeypatch.setenv(CONN_VARIABLE, fake_azure.connection_value(engine="azureml_v2"))
    with caplog.at_level(logging.DEBUG):
        backend = AzureMLParallelRunHook().get_conn()
        assert isinstance(backend, AzureMLV2Backend) and backend.settings.compute_target == "r-cluster"
        assert backend.datastore().name == "workspaceblobstore"
    (token,) = fake_azure.wire.calls_to("POST", r"/oauth2/v2\.0/token$")
    assert CLIENT_SECRET in token.body.decode() and "scope=https%3A%2F%2Fmanagement.azure.com%2F.default" in (
        token.body.decode()
    )
    captured = capfd.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert "SDK v2) with service principal 00000000-0000-0000-0000-0000000000cc in tenant" in logged
    assert CLIENT_SECRET not in logged and CLIENT_SECRET not in repr(backend.settings)
    assert CLIENT_SECRET not in backend.datastore().credentials.account_key  # the datastore's key, not ours


def test_incomplete_azure_connections_say_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONN_VARIABLE, json.dumps({"conn_type": "generic", "extra": {"engine": "azureml"}}))
    with pytest.raises(ConnectionNotConfiguredError, match="lacks subscriptionId, resource_group_name, workspace_name"):
        AzureMLParallelRunHook().get_conn()
    _connection(monkeypatch, {"auth": "service_principal"}, "client-1")
    with pytest.raises(ConnectionNotConfiguredError, match="needs password"):
        AzureMLParallelRunHook().get_conn()
    _connection(monkeypatch, {"engine": "azureml_v2", "auth": "service_principal"}, "client-1")
    with pytest.raises(ConnectionNotConfiguredError, match="needs password"):
        AzureMLParallelRunHook().get_conn()
    monkeypatch.setenv(CONN_VARIABLE, json.dumps({"conn_type": "generic", "extra": {"engine": "azureml_v2"}}))
    with pytest.raises(ConnectionNotConfiguredError, match="lacks subscriptionId, resource_group_name, workspace_name"):
        AzureMLParallelRunHook().get_conn()


@pytest.mark.parametrize(
    ("cloud", "authority", "arm"),
    [
        (None, "https://login.microsoftonline.com", "https://management.azure.com"),
        ("AzureUSGovernment", "https://login.microsoftonline.us", "https://management.usgovcloudapi.net"),
        ("AzureChinaCloud", "https://login.chinacloudapi.cn", "https://management.chinacloudapi.cn"),
    ],
)
def test_cloud_environment_picks_the_sovereign_cloud_for_both_sdks(
    monkeypatch: pytest.MonkeyPatch, cloud: str | None, authority: str, arm: str
) -> None:
    """The Microsoft Azure provider's ``cloud_environment``: the authority of the sign-in and the SDKs' cloud."""
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")  # MLClient sets it process-wide: undone after the test
    extra = {"tenantId": "t-1", **({"cloud_environment": cloud} if cloud else {})}
    credential, _text = build_credential(extra, "client-1", SECRET)
    assert credential._authority == authority
    auth, _text = build_auth(extra, "client-1", SECRET)
    assert auth._get_arm_end_point().rstrip("/") == arm
    _connection(monkeypatch, {**extra, "engine": "azureml_v2"}, "client-1", SECRET)
    hook = AzureMLParallelRunHook()
    client = hook._connect_ml_client(hook.extras, credential)
    assert client._base_url == arm


def test_an_unknown_cloud_environment_is_refused_not_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AzureAuthConfigError, match=r"cloud_environment='AzureGermanCloud'.*AzurePublicCloud"):
        build_credential({"cloud_environment": "AzureGermanCloud", "auth": "default"}, None, None)
    _connection(monkeypatch, {"cloud_environment": "Azure", "engine": "azureml_v2"})
    with pytest.raises(ConnectionNotConfiguredError, match="cloud_environment='Azure'"):
        AzureMLParallelRunHook().get_conn()


def test_the_providers_workload_identity_pair_is_built_by_the_providers_helper(monkeypatch) -> None:
    from airflow.providers.microsoft.azure import utils

    spy = mock.Mock(wraps=utils.get_sync_default_azure_credential)
    monkeypatch.setattr(utils, "get_sync_default_azure_credential", spy)
    pair = {"managed_identity_client_id": "mi-1", "workload_identity_tenant_id": "t-9"}
    credential, described = build_credential(pair, None, None)
    spy.assert_called_once_with(managed_identity_client_id="mi-1", workload_identity_tenant_id="t-9")
    assert type(credential).__name__ == "DefaultAzureCredential" and described.startswith("DefaultAzureCredential")
    # the pair on a sovereign cloud, or a client id alone: azure-identity directly (the helper has no authority,
    # and it would drop a client id given without a tenant)
    build_credential({**pair, "cloud_environment": "AzureChinaCloud"}, None, None)
    build_credential({"managed_identity_client_id": "mi-1"}, None, None)
    assert spy.call_count == 1
