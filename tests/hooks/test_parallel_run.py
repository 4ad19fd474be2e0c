"""The hook: the connection picks the engine; a missing or bad connection names both ways to configure it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from azureml_parallel_r.backends.local import LocalBackend
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook, ConnectionNotConfiguredError
from tests.conftest import CONN_VARIABLE


def _set(monkeypatch: pytest.MonkeyPatch, extra: dict) -> None:
    monkeypatch.setenv(CONN_VARIABLE, json.dumps({"conn_type": "generic", "extra": extra}))


def test_local_connection_builds_the_local_backend(local_connection: Path) -> None:
    backend = AzureMLParallelRunHook().get_conn()
    assert isinstance(backend, LocalBackend)
    assert backend.root == local_connection.resolve() and backend.process_count_per_node == 2


def test_missing_connection_names_both_ways_to_configure_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONN_VARIABLE, raising=False)
    with pytest.raises(ConnectionNotConfiguredError) as error:
        AzureMLParallelRunHook().get_conn()
    text = str(error.value)
    assert "'azureml_parallel_r_default' is not defined" in text
    assert "AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT=" in text
    assert '"engine": "local"' in text and '"engine": "azureml"' in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "has engine=None in its extra; expected one of local, azureml"),
        ({"engine": "databricks"}, "engine='databricks'"),
        ({"engine": "local"}, "has no datastore_root"),
        (
            {"engine": "local", "datastore_root": "/no/such/datastore"},
            "datastore_root '/no/such/datastore' does not exist or is not a folder; create it",
        ),
        (
            {"engine": "local", "datastore_root": "/", "process_count_per_node": "two"},
            "process_count_per_node must be a whole number, got 'two'",
        ),
        ({"engine": "azureml", "workspace_name": "w"}, "lacks subscriptionId, resource_group_name"),
    ],
)
def test_unusable_connections_say_what_to_fix(monkeypatch: pytest.MonkeyPatch, extra: dict, message: str) -> None:
    _set(monkeypatch, extra)
    with pytest.raises(ConnectionNotConfiguredError, match=message):
        AzureMLParallelRunHook().get_conn()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"r_script_dirs": 5}, "r_script_dirs in its extra must be a list of absolute folders .*got 5"),
        ({"r_script_dirs": ["/ok", 7]}, "r_script_dirs in its extra must be a list of absolute folders"),
        ({"datastore_root": ["/data"]}, "datastore_root in its extra must be text, got a list"),
        ({"source_directory": {"x": 1}}, "source_directory in its extra must be text, got a dict"),
    ],
)
def test_extras_of_the_wrong_kind_name_the_field_and_fail_without_retries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra: dict, message: str
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    _set(monkeypatch, {"engine": "local", "datastore_root": str(tmp_path), **extra})
    with pytest.raises(AirflowFailException, match=f"Airflow connection 'azureml_parallel_r_default': {message}"):
        AzureMLParallelRunHook().get_conn()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('["engine", "local"]', r"its extra must be a JSON object \(\{...\}\), not a JSON list"),
        ('{"engine": "local", "password": "s3cr3t",}', r"its extra is not valid JSON \(Expecting property name"),
        ('"local"', "its extra must be a JSON object"),
    ],
)
def test_an_extra_that_is_not_a_json_object_says_so_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch, extra: str, message: str
) -> None:
    """Airflow reads such an extra as {} (which ended as "engine=None"); the message never shows its text."""
    monkeypatch.setenv(CONN_VARIABLE, json.dumps({"conn_type": "generic", "extra": extra}))
    with pytest.raises(ConnectionNotConfiguredError, match=message) as error:
        AzureMLParallelRunHook().get_conn()
    assert "s3cr3t" not in str(error.value)
    assert asyncio.run(_async_error(AzureMLParallelRunHook())) == str(error.value)


async def _async_error(hook: AzureMLParallelRunHook) -> str:
    try:
        await hook.aget_conn()
    except ConnectionNotConfiguredError as exc:
        return str(exc)
    return "no error"


def test_a_missing_or_bad_connection_fails_the_task_without_its_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry a minute later reads the same connection: Airflow's fail-without-retry exception."""
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.delenv(CONN_VARIABLE, raising=False)
    with pytest.raises(AirflowFailException):
        AzureMLParallelRunHook().get_conn()
    _set(
        monkeypatch,
        {
            "engine": "azureml_v2",
            "subscription_id": "s",
            "resource_group": "r",
            "workspace_name": "w",
            "retry_backoff": "soon",
        },
    )
    with pytest.raises(
        AirflowFailException, match="retry_backoff in its extra must be a number of seconds, got 'soon'"
    ):
        AzureMLParallelRunHook().get_conn()


def test_async_backend_for_triggers(local_connection: Path) -> None:
    hook = AzureMLParallelRunHook()
    backend = asyncio.run(hook.aget_conn())
    assert isinstance(backend, LocalBackend) and asyncio.run(hook.aget_conn()) is backend


def test_a_connection_variable_that_is_not_json_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONN_VARIABLE, '{"conn_type": "generic", "extra": {"engine": "local",}')
    with pytest.raises(ConnectionNotConfiguredError, match=f"{CONN_VARIABLE} is set but is not valid JSON"):
        AzureMLParallelRunHook().get_conn()


# -- the provider's own connection type (its UI form) and the Test button ------------------------------------


def _typed(monkeypatch: pytest.MonkeyPatch, extra: dict, **fields: str) -> None:
    monkeypatch.setenv(CONN_VARIABLE, json.dumps({"conn_type": "azureml_parallel_r", "extra": extra, **fields}))


def test_a_typed_connection_reads_the_forms_names_and_ignores_its_empty_fields(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The form stores every field, empty ones as "" or null, under the Microsoft Azure provider's names."""
    from azureml_parallel_r.hooks.parallel_run import connection_settings

    form = {
        "engine": "azureml_v2",
        "subscriptionId": "sub",
        "resource_group_name": "rg",
        "workspace_name": "ws",
        "tenantId": "t-1",
        "auth": None,
        "datastore_root": "",
        "compute_target": "r-cluster",
        "extra__azureml_parallel_r__experiment_name": "exp",
        "process_count_per_node": None,
    }
    assert connection_settings(form) == {
        "engine": "azureml_v2",
        "subscription_id": "sub",
        "resource_group": "rg",
        "workspace_name": "ws",
        "tenant_id": "t-1",
        "compute_target": "r-cluster",
        "experiment_name": "exp",
    }
    _typed(
        monkeypatch,
        {"engine": "local", "datastore_root": str(tmp_path), "process_count_per_node": 3, "subscriptionId": ""},
    )
    backend = AzureMLParallelRunHook().get_conn()
    assert isinstance(backend, LocalBackend) and backend.process_count_per_node == 3


def test_the_test_button_checks_the_local_datastore_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _typed(monkeypatch, {"engine": "local", "datastore_root": str(tmp_path)})
    ok, message = AzureMLParallelRunHook().test_connection()  # the preflight: one line per check
    lines = message.splitlines()
    assert ok and lines[0] == f"ok   datastore: datastore folder {tmp_path} exists and is writable", message
    assert lines[1].startswith("ok   R: R ") and lines[2].startswith("ok   R script: r/process_file.r parses")
    assert [p.name for p in tmp_path.iterdir()] == []  # the probe file is gone
    _typed(monkeypatch, {"engine": "local", "datastore_root": str(tmp_path / "missing")})
    ok, message = AzureMLParallelRunHook().test_connection()
    assert not ok and "does not exist or is not a folder; create it" in message
    _typed(monkeypatch, {"engine": "databricks"})
    ok, message = AzureMLParallelRunHook().test_connection()
    assert not ok and "engine='databricks'" in message


@pytest.mark.integration
@pytest.mark.parametrize("engine", ["azureml_v2", "azureml"])
def test_the_test_button_asks_the_workspace_and_its_datastore(
    fake_azure, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    monkeypatch.setenv(CONN_VARIABLE, fake_azure.connection_value(engine=engine))
    ok, message = AzureMLParallelRunHook().test_connection()
    assert (
        ok
        and "ok   datastore: datastore workspaceblobstore: blob container azureml-blobstore-parallel-r of "
        "devstoreaccount1, account key"
        in message
    )
    monkeypatch.setenv(CONN_VARIABLE, fake_azure.connection_value(engine=engine, datastore="nostore"))
    ok, message = AzureMLParallelRunHook().test_connection()
    assert not ok and "nostore" in message


def test_an_engine_whose_sdk_is_not_installed_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    _set(monkeypatch, {"engine": "azureml_v2", "subscription_id": "s", "resource_group": "r", "workspace_name": "w"})
    monkeypatch.setitem(sys.modules, "azure.ai.ml", None)  # as if azure-ai-ml were not installed
    with pytest.raises(ConnectionNotConfiguredError, match=r"pip install 'azureml-parallel-r\[sdk-v2\]'"):
        AzureMLParallelRunHook().get_conn()


def test_every_extra_a_message_names_is_one_the_distribution_has() -> None:
    """The extras the hook tells users to install, and the connection form's text, name extras that exist."""
    import re
    import tomllib

    from azureml_parallel_r.get_provider_info import CONN_FIELDS
    from azureml_parallel_r.hooks.parallel_run import SDK_EXTRAS
    from tests.conftest import REPO

    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = {extra for _, extra in SDK_EXTRAS.values()}
    named |= set(re.findall(r"azureml-parallel-r\[([\w-]+)\]", CONN_FIELDS["engine"]["description"]))
    assert named and named <= extras, named - extras


def test_sdk_v1_on_python_3_12_says_why_and_points_to_v2(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    _set(monkeypatch, {"engine": "azureml", "subscription_id": "s", "resource_group": "r", "workspace_name": "w"})
    monkeypatch.setitem(sys.modules, "azureml.core", None)  # what a 3.12 environment has: [sdk-v1] installs nothing
    monkeypatch.setattr(sys, "version_info", (3, 12, 4, "final", 0))
    with pytest.raises(ConnectionNotConfiguredError) as raised:
        AzureMLParallelRunHook().get_conn()
    assert "requires Python < 3.12" in str(raised.value)
    assert '"engine": "azureml_v2"' in str(raised.value) and "azureml-parallel-r[sdk-v2]" in str(raised.value)


def test_the_connections_r_packages_are_a_list_or_the_forms_text(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    _set(monkeypatch, {"engine": "local", "datastore_root": str(tmp_path), "r_packages": "terra>=1.7, data.table"})
    assert AzureMLParallelRunHook().get_conn().r_packages == ("terra>=1.7", "data.table")
    _set(monkeypatch, {"engine": "local", "datastore_root": str(tmp_path), "r_packages": {"terra": "1.7"}})
    with pytest.raises(ConnectionNotConfiguredError, match="r_packages must be a list of strings"):
        AzureMLParallelRunHook().get_conn()
