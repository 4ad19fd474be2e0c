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
    assert "'azureml_default' is not defined" in text
    assert "AIRFLOW_CONN_AZUREML_DEFAULT=" in text and '"engine": "local"' in text and '"engine": "azureml"' in text


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
        ({"engine": "azureml", "workspace_name": "w"}, "lacks subscription_id, resource_group"),
    ],
)
def test_unusable_connections_say_what_to_fix(monkeypatch: pytest.MonkeyPatch, extra: dict, message: str) -> None:
    _set(monkeypatch, extra)
    with pytest.raises(ConnectionNotConfiguredError, match=message):
        AzureMLParallelRunHook().get_conn()


def test_async_backend_for_triggers(local_connection: Path) -> None:
    hook = AzureMLParallelRunHook()
    backend = asyncio.run(hook.aget_backend())
    assert isinstance(backend, LocalBackend) and asyncio.run(hook.aget_backend()) is backend


def test_a_connection_variable_that_is_not_json_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONN_VARIABLE, '{"conn_type": "generic", "extra": {"engine": "local",}')
    with pytest.raises(ConnectionNotConfiguredError, match="AIRFLOW_CONN_AZUREML_DEFAULT is set but is not valid JSON"):
        AzureMLParallelRunHook().get_conn()
