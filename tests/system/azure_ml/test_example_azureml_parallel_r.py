"""The system test on a real Azure ML workspace: collected everywhere, run only where one is configured.

``SYSTEM_TESTS_AZUREML_CONN`` holds the connection as Airflow's JSON form (``{"conn_type": "azureml_parallel_r",
"login": ..., "password": ..., "extra": {...}}``); each test runs the example DAG with its ``engine`` set to the
SDK under test, on ``SYSTEM_TESTS_ENV_ID`` (default: a name of this run). Azure is not reachable from the machines
this project is developed on, so there it is skipped, saying why; what runs here is that the example DAG parses
and has the convention's shape.
"""

from __future__ import annotations

import importlib
import json
import os
import uuid
from pathlib import Path

import pytest

MODULE = "tests.system.azure_ml.example_azureml_parallel_r"
CONNECTION = os.environ.get("SYSTEM_TESTS_AZUREML_CONN")


def _example(monkeypatch: pytest.MonkeyPatch, **env: str):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import sys

    sys.modules.pop(MODULE, None)  # the DAG reads its names from the environment when it is built
    return importlib.import_module(MODULE)


def test_the_example_dag_has_the_system_test_shape(airflow_db, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import TriggerRule

    example = _example(monkeypatch, SYSTEM_TESTS_ENV_ID="ci-42")
    dag = example.dag
    assert example.INPUT_PATH == "system-tests/ci-42/r-script-inputs" and example.DATASET_NAME.endswith("ci-42")
    teardown, watcher = dag.get_task("delete_created"), dag.get_task("watcher")
    assert (teardown.trigger_rule, watcher.trigger_rule) == (TriggerRule.ALL_DONE, TriggerRule.ONE_FAILED)
    assert set(watcher.upstream_task_ids) == {t.task_id for t in dag.tasks} - {"watcher"}
    assert "validate_outputs" in teardown.upstream_task_ids and "register_dataset" in teardown.upstream_task_ids


@pytest.mark.system
@pytest.mark.skipif(
    not CONNECTION,
    reason="needs a real Azure ML workspace: set SYSTEM_TESTS_AZUREML_CONN to a connection's JSON (Azure is not "
    "reachable from this machine); scripts/azure-smoke.sh runs the same DAG on your own connection",
)
@pytest.mark.parametrize("engine", ["azureml_v2", "azureml"])
def test_a_run_on_a_real_workspace(engine: str, airflow_db, monkeypatch: pytest.MonkeyPatch) -> None:
    connection = json.loads(CONNECTION or "{}")
    env_id = os.environ.get("SYSTEM_TESTS_ENV_ID") or f"pytest-{engine}-{uuid.uuid4().hex[:8]}"
    example, run = _run_example(monkeypatch, connection, engine, env_id)
    assert str(run.state) == "success", f"see the task logs; pipeline run: {example.studio_link(run)}"


@pytest.mark.integration
@pytest.mark.parametrize("engine", ["azureml_v2", "azureml"])
def test_the_same_example_dag_runs_every_day_against_the_fake_workspace(
    engine: str, airflow_db, fake_azure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code that meets a real workspace, in CI: the same DAG file, only the connection differs. Its teardown
    leaves nothing it created: no blob under its folder, no file list, no active dataset version."""
    connection = json.loads(fake_azure.connection_value(engine=engine))
    example, run = _run_example(monkeypatch, connection, engine, f"fake-{engine}")
    assert str(run.state) == "success"
    assert example.studio_link(run)
    assert fake_azure.blob_names("system-tests/") == [] and fake_azure.blob_names("azureml-parallel-r/") == []
    if engine == "azureml_v2":
        versions = fake_azure.ml.data[example.DATASET_NAME].values()
        assert versions and all(version["properties"]["isArchived"] for version in versions)
    else:
        assert example.DATASET_NAME not in fake_azure.service.datasets


def _run_example(monkeypatch: pytest.MonkeyPatch, connection: dict, engine: str, env_id: str):
    """The example DAG run once with ``connection`` (its ``engine`` set), as scripts/azure-smoke.sh runs it."""
    from airflow import settings

    connection["extra"] = {**connection.get("extra", {}), "engine": engine}
    # dag.test() runs a DAG that a bundle holds: the example's folder is the dags folder for this test. The dags-folder
    # bundle takes its path from airflow.settings.DAGS_FOLDER, read from the configuration when Airflow is imported
    # (airflow/dag_processing/bundles/local.py), so an earlier test's import would keep the old one: both are set.
    folder = str(Path(__file__).parent)
    monkeypatch.setattr(settings, "DAGS_FOLDER", folder)
    example = _example(
        monkeypatch,
        SYSTEM_TESTS_ENV_ID=env_id,
        SYSTEM_TESTS_AZUREML_CONN_ID="azureml_system_test",
        AIRFLOW_CONN_AZUREML_SYSTEM_TEST=json.dumps(connection),
        AIRFLOW__CORE__DAGS_FOLDER=folder,
    )
    return example, example.dag.test()
