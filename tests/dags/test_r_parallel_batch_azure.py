"""Whole runs of the r_parallel_batch DAG on the Azure ML engines (SDK v1 and v2): the real SDKs against the fake
workspace and Azurite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azureml_parallel_r.examples.samples import make_sample_inputs
from tests.dags.dag_runs import output_dirs, run_dag, sample_inputs

# -- the same DAG on the Azure ML engine: the real SDKs against the fake workspace and Azurite -------------------


@pytest.mark.integration
def test_the_whole_dag_runs_on_the_azure_ml_engine(dag, airflow_db, fake_azure, tmp_path: Path) -> None:
    make_sample_inputs(str(tmp_path / "inputs"), images=4)
    fake_azure.upload_inputs(tmp_path / "inputs", "r-script-inputs/2026-11-19")
    state, tasks = run_dag(dag, "2026-11-19")
    assert state == "success" and set(tasks.values()) == {"success"}
    (submitted,) = fake_azure.pipelines.submitted
    run = fake_azure.service.runs[submitted["pipeline_run_id"]]["dto"]
    output = run["tags"]["output_path"]
    assert output.startswith("r-script-outputs/2026-11-19/")
    report = json.loads(fake_azure.read_blob(f"{output}/validation.json"))
    assert report["passed"] and report["counts"]["succeeded"] == 8 and report["counts"]["failed"] == 1
    assert report["failures"][0]["relative_path"] == "camera-b/broken.png"
    assert f"{output}/results/camera-a/img_0000.png/thumbnail.png" in fake_azure.blob_names(f"{output}/results/")


@pytest.mark.integration
def test_a_missing_date_folder_is_skipped_on_the_azure_ml_engine(dag, airflow_db, fake_azure) -> None:
    state, tasks = run_dag(dag, "2026-11-18")
    assert state == "success" and set(tasks.values()) == {"skipped"}
    assert fake_azure.pipelines.submitted == []


@pytest.mark.integration
@pytest.mark.parametrize("r_script", ["/etc/passwd", "broken"])
def test_a_bad_r_script_fails_submit_before_anything_is_submitted(
    dag, airflow_db, local_connection, tmp_path, capfd, r_script: str
) -> None:
    if r_script == "broken":
        r_script = str(tmp_path / "broken.r")
        Path(r_script).write_text("process_file <- function(a, b, c) {\n  S3CRET_TOKEN here\n}\n")
    sample_inputs(local_connection, "2026-11-15", images=2)
    state, tasks = run_dag(dag, "2026-11-15", {"r_script": r_script})
    assert state == "failed" and tasks["submit_pipeline"] == "failed"
    assert tasks["wait_for_pipeline"] == "upstream_failed"
    assert output_dirs(local_connection, "2026-11-15") == []
    assert not (local_connection / ".azureml-local" / "runs").exists()
    printed = capfd.readouterr()
    assert "root:x:" not in printed.out + printed.err and "S3CRET_TOKEN" not in printed.out + printed.err


# -- the same DAG on the Azure ML SDK v2 engine: azure-ai-ml against the fake workspace and Azurite --------------


@pytest.fixture
def fake_azure_v2(fake_azure, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The fake workspace with the connection switched to SDK v2: the same connection, ``engine`` changed."""
    from tests.conftest import CONN_VARIABLE

    monkeypatch.setenv(CONN_VARIABLE, fake_azure.connection_value(engine="azureml_v2", r_script_dirs=[str(tmp_path)]))
    return fake_azure


@pytest.mark.integration
def test_the_whole_dag_runs_on_the_v2_engine_through_a_lost_put_answer_and_throttled_reads(
    dag, airflow_db, fake_azure_v2, tmp_path: Path
) -> None:
    from tests.azure.wire import Reply

    make_sample_inputs(str(tmp_path / "inputs"), images=4)
    fake_azure_v2.upload_inputs(tmp_path / "inputs", "r-script-inputs/2026-11-17")
    lost = fake_azure_v2.wire.fault("PUT", r"/workspaces/ws-parallel-r/jobs/[^/]+$", delivered=True)
    throttled = fake_azure_v2.wire.fault(
        "GET", r"/workspaces/ws-parallel-r/jobs/apr-[0-9a-f]+$", times=3, reply=Reply(429, {}, {"Retry-After": "0"})
    )
    state, tasks = run_dag(dag, "2026-11-17")
    assert state == "success" and set(tasks.values()) == {"success"}
    assert lost.hits == 1 and throttled.hits == 3
    (name,) = fake_azure_v2.ml.jobs
    assert len(fake_azure_v2.wire.calls_to("PUT", r"/workspaces/ws-parallel-r/jobs/[^/]+$")) == 1
    output = f"r-script-outputs/2026-11-17/{name}"
    assert fake_azure_v2.ml.jobs[name]["properties"]["tags"]["output_path"] == output
    report = json.loads(fake_azure_v2.read_blob(f"{output}/validation.json"))
    assert report["passed"] and report["counts"]["succeeded"] == 8 and report["counts"]["failed"] == 1
    assert report["failures"][0]["relative_path"] == "camera-b/broken.png"
    assert f"{output}/results/camera-a/img_0000.png/thumbnail.png" in fake_azure_v2.blob_names(f"{output}/results/")


@pytest.mark.integration
def test_a_v2_job_that_fails_before_writing_anything_fails_the_sensor_with_its_error(
    dag, airflow_db, fake_azure_v2, tmp_path: Path, capfd
) -> None:
    from tests.azure.workspace import CONTAINER

    make_sample_inputs(str(tmp_path / "inputs"), images=2)
    names = fake_azure_v2.upload_inputs(tmp_path / "inputs", "r-script-inputs/2026-11-14")

    def inputs_vanish_then_the_job_is_created(call):  # the folder is deleted between registration and the run
        container = fake_azure_v2.service.blob_service().get_container_client(CONTAINER)
        for blob in names:
            container.delete_blob(blob)
        return fake_azure_v2.ml.put_job(call, {"name": call.path.rsplit("/", 1)[1]})

    fake_azure_v2.wire.fault(
        "PUT", r"/workspaces/ws-parallel-r/jobs/[^/]+$", handler=inputs_vanish_then_the_job_is_created
    )
    state, tasks = run_dag(dag, "2026-11-14")
    assert state == "failed" and tasks["submit_pipeline"] == "success"
    assert tasks["wait_for_pipeline"] == "failed" and tasks["validate_outputs"] == "upstream_failed"
    (job,) = fake_azure_v2.ml.jobs.values()
    assert job["properties"]["status"] == "Failed"
    printed = capfd.readouterr()
    logged = printed.out + printed.err
    assert "--- step_error.txt ---" in logged and "ScriptExecution.StreamAccess.NotFound" in logged


# -- the same DAG on the datastores enterprise workspaces have: identity-based blob and ADLS Gen2 ---------------


@pytest.mark.integration
@pytest.mark.parametrize("engine", ["azureml", "azureml_v2"])
@pytest.mark.parametrize("datastore", ["identitystore", "adlsstore"])
def test_the_whole_dag_and_a_repair_run_on_a_credential_less_and_an_adls_gen2_datastore(
    dag, airflow_db, fake_azure, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str, datastore: str
) -> None:
    """Register, submit, wait, collect and validate, then repair the one failed file, on a datastore that keeps no
    credential (read with the connection's identity and, on the compute, the compute's managed identity) and on an
    ADLS Gen2 one (its own service principal; directories that are objects of their own)."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    from azureml_parallel_r.examples.samples import write_png
    from tests.conftest import CONN_VARIABLE

    monkeypatch.setenv(
        CONN_VARIABLE, fake_azure.connection_value(engine=engine, datastore=datastore, r_script_dirs=[str(tmp_path)])
    )
    make_sample_inputs(str(tmp_path / "inputs"), images=2)
    fake_azure.upload_inputs(tmp_path / "inputs", "r-script-inputs/2026-11-21", datastore=datastore)
    state, tasks = run_dag(dag, "2026-11-21")
    assert state == "success" and set(tasks.values()) == {"success"}, tasks
    with create_session() as session:
        original = session.query(DagRun).filter(DagRun.dag_id == dag.dag_id).order_by(DagRun.id.desc()).first().run_id

    write_png(str(tmp_path / "fixed" / "camera-b" / "broken.png"))  # the corrupt sample, fixed (the others untouched:
    fake_azure.upload_inputs(tmp_path / "fixed", "r-script-inputs/2026-11-21", datastore=datastore)  # not changed)
    state, tasks = run_dag(dag, "2026-11-22", {"rerun_failed_of": original}, run_after="2026-11-22T10:00:00Z")
    assert state == "success" and set(tasks.values()) == {"success"}, tasks

    reports = [
        json.loads(fake_azure.read_blob(name, datastore))
        for name in fake_azure.blob_names("r-script-outputs/", datastore)
        if name.endswith("/validation.json")
    ]
    (first,) = [report for report in reports if "repair" not in report]
    (repair,) = [report for report in reports if "repair" in report]
    assert first["passed"] and first["counts"]["failed"] == 1 and first["counts"]["input_files"] == 7
    assert repair["passed"], repair["problems"]
    assert repair["repair"]["original_failures"] == 1 and repair["repair"]["now_succeeded"] == 1
    assert repair["repair"]["still_failing"] == 0


# -- a table's partitions on both Azure ML engines -------------------------------------------------------------

TABLE_CONF = {
    "input_kind": "table",
    "partition_keys": ["Store", "Brand"],
    "r_script": "r/forecast_per_store.r",
    "r_args": ["--horizon", "4"],
}


def _table_run(dag, fake, tmp_path: Path, date: str) -> dict:
    """The DAG over an OJ-sales-shaped table uploaded for ``date``; returns the validation report it wrote."""
    from azureml_parallel_r.examples.samples import make_oj_sales_table

    make_oj_sales_table(str(tmp_path / "oj"), stores=2, weeks=30)
    fake.upload_inputs(tmp_path / "oj", f"r-script-inputs/{date}")
    state, tasks = run_dag(dag, date, TABLE_CONF)
    assert state == "success" and set(tasks.values()) == {"success"}, tasks
    (report_blob,) = [n for n in fake.blob_names(f"r-script-outputs/{date}/") if n.endswith("/validation.json")]
    return json.loads(fake.read_blob(report_blob))


@pytest.mark.integration
def test_a_per_store_forecast_runs_through_the_dag_on_the_v1_engine(dag, airflow_db, fake_azure, tmp_path) -> None:
    report = _table_run(dag, fake_azure, tmp_path, "2026-11-12")
    assert report["passed"] and (report["counts"]["input_files"], report["counts"]["failed"]) == (6, 1)
    assert report["dataset"]["kind"] == "table" and report["dataset"]["partitions"] == 6
    assert report["failures"][0]["relative_path"] == "Store=1002/Brand=tropicana"


@pytest.mark.integration
def test_a_per_store_forecast_runs_through_the_dag_on_the_v2_engine(dag, airflow_db, fake_azure_v2, tmp_path) -> None:
    report = _table_run(dag, fake_azure_v2, tmp_path, "2026-11-13")
    assert report["passed"] and (report["counts"]["input_files"], report["counts"]["failed"]) == (6, 1)
    assert report["failures"][0]["relative_path"] == "Store=1002/Brand=tropicana"
