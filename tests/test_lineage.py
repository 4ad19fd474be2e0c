"""OpenLineage: the submit and validate tasks report the folders they read and write, named by the OpenLineage naming
spec, and the pipeline run id as a run facet; with the provider absent nothing of OpenLineage is imported."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from azureml_parallel_r.examples.samples import make_sample_inputs
from azureml_parallel_r.models import StorageLocation
from tests.conftest import REPO

DATE = "2026-11-08"


def _completed(events: Path, task_id: str) -> dict:
    (event,) = [
        e
        for e in map(json.loads, events.read_text().splitlines())
        if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"r_parallel_batch.{task_id}"
    ]
    return event


@pytest.mark.integration
def test_a_dag_run_reports_its_folders_and_pipeline_run_to_openlineage(
    airflow_db, local_connection: Path, tmp_path: Path
) -> None:
    """The real OpenLineage listener of apache-airflow-providers-openlineage, writing its events to a file. In a
    process of its own: the provider registers its listener when its plugin loads, and only if a transport is
    configured then (airflow/providers/openlineage/plugins/openlineage.py)."""
    import os

    events = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(events), "append": True}
    make_sample_inputs(str(local_connection / "r-script-inputs" / DATE), images=2)
    code = f"""
import pendulum
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder={str(REPO / "dags")!r}).get_dag("r_parallel_batch")
for task in dag.tasks:
    task.retries = 0
print("DAG RUN STATE", dag.test(logical_date=pendulum.parse({DATE!r})).state)
"""
    env = {**os.environ, "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "DAG RUN STATE success" in done.stdout.splitlines(), done.stdout[-3000:]

    namespace = f"file://{socket.gethostname()}"
    inputs = str(local_connection / "r-script-inputs" / DATE)
    submit = _completed(events, "submit_pipeline")
    (output_folder,) = (local_connection / "r-script-outputs" / DATE).iterdir()
    assert [(d["namespace"], d["name"]) for d in submit["inputs"]] == [(namespace, inputs)]
    assert [(d["namespace"], d["name"]) for d in submit["outputs"]] == [(namespace, str(output_folder))]
    facet = submit["run"]["facets"]["externalQuery"]
    assert facet["externalQueryId"] == output_folder.name  # the local run id names its output folder
    assert facet["source"] == f"{namespace}{local_connection}"
    validate = _completed(events, "validate_outputs")
    assert [d["name"] for d in validate["inputs"]] == [inputs, str(output_folder)]
    assert [d["name"] for d in validate["outputs"]] == [str(output_folder / "validation.json")]
    assert validate["run"]["facets"]["externalQuery"]["externalQueryId"] == output_folder.name


def test_azure_folders_are_named_wasbs_for_blob_and_abfss_for_adls_gen2() -> None:
    from azureml_parallel_r.lineage import dataset

    blob = dataset(StorageLocation("wasbs", "acct", "container", "r-script-inputs/2026-11-24"))
    assert (blob.namespace, blob.name) == ("wasbs://container@acct.dfs.core.windows.net", "r-script-inputs/2026-11-24")
    adls = dataset(StorageLocation("abfss", "acct", "fs", "r-script-outputs/2026-11-24/run/"))
    assert (adls.namespace, adls.name) == ("abfss://fs@acct.dfs.core.windows.net", "r-script-outputs/2026-11-24/run")


@pytest.mark.integration
@pytest.mark.parametrize("engine", ["azureml_v2", "azureml"])
def test_both_azure_engines_name_their_datastore_folders_and_workspace(fake_azure, monkeypatch, engine: str) -> None:
    from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
    from azureml_parallel_r.lineage import run_lineage
    from tests.conftest import CONN_VARIABLE

    monkeypatch.setenv(CONN_VARIABLE, fake_azure.connection_value(engine=engine))
    lineage = run_lineage(
        AzureMLParallelRunHook().get_conn(),
        inputs=["r-script-inputs/2026-11-24"],
        outputs=["r-script-outputs/2026-11-24/apr-1"],
        run_id="apr-1",
    )
    namespace = "wasbs://azureml-blobstore-parallel-r@devstoreaccount1.dfs.core.windows.net"
    assert [(d.namespace, d.name) for d in lineage.inputs] == [(namespace, "r-script-inputs/2026-11-24")]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [(namespace, "r-script-outputs/2026-11-24/apr-1")]
    facet = lineage.run_facets["externalQuery"]
    assert facet.externalQueryId == "apr-1"
    assert facet.source == (
        "azureml://subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg-parallel-r"
        "/workspaces/ws-parallel-r"
    )


def test_the_package_imports_nothing_of_openlineage() -> None:
    """OpenLineage is imported only inside get_openlineage_facets_on_complete, which only its provider calls. (A run
    with the provider absent: tests/test_packaging.py, whose fresh venv has no OpenLineage.)"""
    code = f"""
import runpy, sys
runpy.run_path({str(REPO / "dags" / "r_parallel_batch.py")!r})
import azureml_parallel_r.operators.parallel_run, azureml_parallel_r.operators.validation
import azureml_parallel_r.sensors.parallel_run, azureml_parallel_r.triggers.parallel_run
import azureml_parallel_r.backends.local, azureml_parallel_r.hooks.parallel_run
# Airflow's own provider discovery reads every installed provider's get_provider_info; nothing else may come in
discovery = {"airflow.providers.openlineage", "airflow.providers.openlineage.get_provider_info"}
print(sorted(m for m in sys.modules if "openlineage" in m and m not in discovery))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
