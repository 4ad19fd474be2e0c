"""Whole runs of the r_parallel_batch DAG on the local engine, with real Airflow (dag.test()) and real R."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import CONN_VARIABLE
from tests.dags.dag_runs import DAG_ID, output_dirs, run_dag, run_dag_with_retries, sample_inputs


@pytest.mark.integration
def test_a_normal_date_runs_end_to_end(dag, airflow_db, local_connection: Path) -> None:
    sample_inputs(local_connection, "2026-11-20")
    state, tasks = run_dag(dag, "2026-11-20")
    assert state == "success" and set(tasks.values()) == {"success"}
    (output,) = output_dirs(local_connection, "2026-11-20")
    report = json.loads((output / "validation.json").read_text())
    assert report["passed"] and report["counts"] == {
        "input_files": 9,
        "succeeded": 8,
        "failed": 1,
        "failed_allowed_by_pattern": 0,
        "failed_without_failure_record": 0,
        "rows": 8,
        "rows_not_in_dataset": 0,
        "output_files": report["counts"]["output_files"],
    }
    assert report["failures"][0]["relative_path"] == "camera-b/broken.png"
    assert report["throughput"]["files_per_second"] > 0
    assert (output / "results" / "camera-a" / "img_0000.png" / "thumbnail.png").is_file()
    # nothing lands in the output folder but the rows file and the names declared reserved (so no rows file can be
    # named like, and overwrite or be overwritten by, anything the run or its validation writes)
    from azureml_parallel_r.compute.records import RESERVED_OUTPUT_NAMES
    from azureml_parallel_r.run_settings import DEFAULT_APPEND_ROW_FILE_NAME

    assert {p.name for p in output.iterdir()} - {DEFAULT_APPEND_ROW_FILE_NAME} <= set(RESERVED_OUTPUT_NAMES)
    # the outputs asset's event: the date is its partition, for downstream DAGs scheduled per date
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == "r_parallel_batch_outputs", AssetEvent.partition_key == "2026-11-20")
            .all()
        )
        folder = f"r-script-outputs/2026-11-20/{output.name}"
        assert [event.extra for event in events] == [
            {"output_path": folder, "run_id": output.name, "date": "2026-11-20", "output_paths": [folder]}
        ]


@pytest.mark.integration
def test_a_run_can_name_another_connection_of_the_typed_kind(dag, airflow_db, tmp_path: Path, monkeypatch) -> None:
    """The conn_id param picks the connection; here one of the provider's own type (what the UI form saves)."""
    from tests.conftest import CONN_VARIABLE

    monkeypatch.delenv(CONN_VARIABLE, raising=False)
    root = tmp_path / "datastore"
    root.mkdir()
    extra = {"engine": "local", "datastore_root": str(root), "process_count_per_node": 2, "subscriptionId": None}
    monkeypatch.setenv("AIRFLOW_CONN_AZUREML_OTHER", json.dumps({"conn_type": "azureml_parallel_r", "extra": extra}))
    sample_inputs(root, "2026-11-13", images=2)
    state, tasks = run_dag(dag, "2026-11-13", {"conn_id": "azureml_other"})
    assert state == "success" and set(tasks.values()) == {"success"}
    (output,) = output_dirs(root, "2026-11-13")
    assert json.loads((output / "validation.json").read_text())["passed"]


@pytest.mark.integration
def test_a_corrupt_file_over_the_threshold_fails_the_run_with_its_error(dag, airflow_db, local_connection) -> None:
    sample_inputs(local_connection, "2026-11-21")
    state, tasks = run_dag(dag, "2026-11-21", {"error_threshold": 0})
    assert state == "failed"
    assert tasks["wait_for_pipeline"] == "failed" and tasks["validate_outputs"] == "upstream_failed"
    (output,) = output_dirs(local_connection, "2026-11-21")
    assert "more than error_threshold=0" in (output / "logs" / "job_error.txt").read_text()


@pytest.mark.integration
def test_a_misspelt_trigger_parameter_fails_the_run_with_what_to_fix(dag, airflow_db, local_connection, capfd) -> None:
    sample_inputs(local_connection, "2026-11-16", images=2)
    state, tasks = run_dag(dag, "2026-11-16", {"mini_batch_sise": 5})
    assert state == "failed" and tasks["register_dataset"] == "failed" and tasks["submit_pipeline"] == "upstream_failed"
    assert output_dirs(local_connection, "2026-11-16") == []
    printed = capfd.readouterr()
    assert (
        "unknown trigger parameter(s) 'mini_batch_sise'; this DAG's parameters are conn_id, error_threshold, "
        "input_kind, input_path, mini_batch_data_size, mini_batch_size," in printed.out + printed.err
    )


@pytest.mark.integration
@pytest.mark.parametrize("case", ["absolute input_path", "URL input_path", "a link to nothing in the folder"])
def test_inputs_no_retry_can_fix_fail_the_run_at_once_and_register_nothing(
    dag, airflow_db, local_connection: Path, capfd, case: str
) -> None:
    """`/etc` was read as `etc` under the datastore root, a URL likewise, and a link to nothing was skipped: green
    runs. Now register_dataset fails on its first try (its retries could not change the answer), saying why."""
    folder = sample_inputs(local_connection, "2026-11-11", images=2)
    conf = {}
    if case == "absolute input_path":
        conf, expected = {"input_path": "/etc"}, "'/etc' is an absolute path"
    elif case == "URL input_path":
        conf = {"input_path": "azureml://datastores/workspaceblobstore/paths/r-script-inputs/2026-11-11"}
        expected = "is a URL or an asset reference"
    else:
        (folder / "camera-a" / "moved.png").symlink_to(folder / "no-such-file.png")
        expected = f"camera-a/moved.png is a link to nothing ({folder / 'no-such-file.png'})"
    tasks = run_dag_with_retries(dag, "2026-11-11", conf)
    assert tasks["register_dataset"] == ("failed", 1) and tasks["submit_pipeline"][0] == "upstream_failed"
    assert dag.get_task("register_dataset").retries == 2
    printed = capfd.readouterr()
    assert expected in printed.out + printed.err
    assert not (local_connection / ".azureml-local" / "datasets").exists()


@pytest.mark.integration
def test_a_connection_saved_in_the_metadata_database_reaches_the_inline_trigger(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/installing.md's path, with Airflow's CLI: a connection saved in the metadata database (as the form or
    `airflow connections add` saves it, no environment variable), then `airflow dags test`. The sensor defers and
    its trigger, run inline, reads the connection from the database too: every task succeeds on its first try.
    (Separate processes, as a user runs them: this test session's own Airflow holds state from other tests.)"""
    monkeypatch.delenv(CONN_VARIABLE, raising=False)
    root = tmp_path / "datastore"
    root.mkdir()
    sample_inputs(root, "2026-11-12", images=1)
    extra = {"engine": "local", "datastore_root": str(root), "process_count_per_node": 2}
    airflow = [sys.executable, "-m", "airflow"]
    add = ["connections", "add", "azureml_parallel_r_default", "--conn-type", "azureml_parallel_r"]
    subprocess.run([*airflow, *add, "--conn-extra", json.dumps(extra)], check=True, capture_output=True)
    try:
        done = subprocess.run(
            [*airflow, "dags", "test", DAG_ID, "2026-11-12"], capture_output=True, text=True, timeout=600
        )
    finally:
        subprocess.run(
            [*airflow, "connections", "delete", "azureml_parallel_r_default"], check=True, capture_output=True
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    printed = done.stdout + done.stderr
    assert "is not defined" not in printed and "[DAG TEST] Trigger completed" in printed
    with sqlite3.connect(airflow_db / "airflow.db") as db:
        tries = db.execute(
            "SELECT ti.task_id, ti.state, ti.try_number FROM task_instance ti JOIN dag_run r "
            "ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id WHERE r.dag_id = ? AND r.logical_date LIKE ?",
            (DAG_ID, "2026-11-12%"),
        ).fetchall()
    assert sorted(tries) == sorted(
        (task, "success", 1)
        for task in ("register_dataset", "submit_pipeline", "wait_for_pipeline", "validate_outputs")
    ), tries
    (output,) = output_dirs(root, "2026-11-12")
    assert json.loads((output / "validation.json").read_text())["passed"]


@pytest.mark.integration
def test_a_missing_date_folder_is_skipped(dag, airflow_db, local_connection: Path) -> None:
    state, tasks = run_dag(dag, "2026-11-22")
    assert state == "success" and set(tasks.values()) == {"skipped"}
    assert output_dirs(local_connection, "2026-11-22") == []


@pytest.mark.integration
def test_rerunning_a_date_writes_a_new_output_folder_and_leaves_the_old_one(dag, airflow_db, local_connection) -> None:
    sample_inputs(local_connection, "2026-11-23", images=2)
    assert run_dag(dag, "2026-11-23")[0] == "success"
    (first,) = output_dirs(local_connection, "2026-11-23")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in first.rglob("*") if p.is_file()}
    assert run_dag(dag, "2026-11-23", {"r_args": ["--thumbnail-size", "4"]})[0] == "success"
    folders = output_dirs(local_connection, "2026-11-23")
    assert len(folders) == 2 and first in folders
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in first.rglob("*") if p.is_file()} == before
    versions = json.loads((local_connection / ".azureml-local" / "datasets" / "r-script-inputs.json").read_text())
    assert [v["version"] for v in versions["versions"]] == [1], "the same date reuses its dataset version"


COPY_R_SCRIPT = """
process_file <- function(input_path, output_dir, args) {
  writeLines(readLines(input_path), file.path(output_dir, "copy.txt"))
  NULL
}
"""


def _forget_dag_runs() -> None:
    """What `docker compose down -v` (or a new Airflow over the same workspace) leaves: no DAG run, no task state."""
    from airflow.models import DagRun
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(TaskStateStoreModel).filter(TaskStateStoreModel.dag_id == DAG_ID).delete()
        for run in session.query(DagRun).filter(DagRun.dag_id == DAG_ID).all():
            session.delete(run)


@pytest.mark.integration
def test_a_reset_database_never_reattaches_to_the_old_run_of_a_date(
    dag, airflow_db, local_connection, tmp_path
) -> None:
    """The same scheduled run id and try number after the metadata database is gone, over corrected inputs: a new
    dataset version is registered, and a new run processes it (not the old run's results validated against it)."""
    script = tmp_path / "copy.r"
    script.write_text(COPY_R_SCRIPT)
    folder = local_connection / "r-script-inputs" / "2026-11-12"
    folder.mkdir(parents=True)
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text("OLD\n")
    # the same DAG run id both times, as a scheduled run's (scheduled__<date>) is in every Airflow
    assert run_dag(dag, "2026-11-12", {"r_script": str(script)}, run_after="2026-11-13T00:00:00+00:00")[0] == "success"
    (first,) = output_dirs(local_connection, "2026-11-12")
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text("NEW, corrected\n")
    _forget_dag_runs()
    state, tasks = run_dag(dag, "2026-11-12", {"r_script": str(script)}, run_after="2026-11-13T00:00:00+00:00")
    assert state == "success" and set(tasks.values()) == {"success"}
    runs = [json.loads(p.read_text()) for p in (local_connection / ".azureml-local" / "runs").glob("*.json")]
    assert len(runs) == 2 and runs[0]["run_key"]["dag_run_id"] == runs[1]["run_key"]["dag_run_id"]
    assert runs[0]["run_key"]["attempt"] == runs[1]["run_key"]["attempt"] == "1"
    (second,) = [path for path in output_dirs(local_connection, "2026-11-12") if path != first]
    assert (second / "results" / "a.txt" / "copy.txt").read_text() == "NEW, corrected\n"
    report = json.loads((second / "validation.json").read_text())
    assert report["passed"] and report["dataset"]["version"] == 2
    assert (first / "results" / "a.txt" / "copy.txt").read_text() == "OLD\n"


@pytest.mark.integration
def test_a_canceled_run_fails_the_sensor(
    dag, airflow_db, local_connection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel the run only once the sensor has deferred and its trigger polls the run (a state, not a race):
    the trigger fires with Canceled and the sensor fails."""
    from azureml_parallel_r.backends.local import LocalBackend
    from azureml_parallel_r.triggers.parallel_run import ParallelRunTrigger

    hang = tmp_path / "hang.r"
    hang.write_text("process_file <- function(input_path, output_dir, args) Sys.sleep(600)\n")
    sample_inputs(local_connection, "2026-11-24", images=2)
    backend = LocalBackend(str(local_connection))
    trigger_polling, dag_test_returned = threading.Event(), threading.Event()
    fired: list[dict] = []
    original_run = ParallelRunTrigger.run

    async def observed_run(self):  # dag.test() runs the trigger inline, in this process
        trigger_polling.set()  # the sensor deferred: the triggerer (here, inline) is running its trigger
        async for event in original_run(self):
            fired.append(event.payload)
            yield event

    monkeypatch.setattr(ParallelRunTrigger, "run", observed_run)

    def cancel_once_deferred() -> None:
        while not (trigger_polling.wait(timeout=0.2) or dag_test_returned.is_set()):
            pass
        for record in (local_connection / ".azureml-local" / "runs").glob("*.json"):
            backend.cancel(record.stem)  # also the clean-up when the sensor never deferred

    canceller = threading.Thread(target=cancel_once_deferred)
    canceller.start()
    try:
        state, tasks = run_dag(dag, "2026-11-24", {"r_script": str(hang)})
    finally:
        dag_test_returned.set()
        canceller.join()
    assert trigger_polling.is_set(), "the sensor never deferred to its trigger"
    assert state == "failed" and tasks["wait_for_pipeline"] == "failed"
    assert tasks["validate_outputs"] == "upstream_failed"
    assert [event["run_status"] for event in fired] == ["Canceled"]
    (output,) = output_dirs(local_connection, "2026-11-24")
    assert json.loads((output / "logs" / "status.json").read_text())["status"] == "Canceled"
    assert not (output / "results").exists() or not any((output / "results").rglob("*.json"))


@pytest.mark.integration
def test_a_per_store_forecast_over_a_partitioned_table_runs_end_to_end(dag, airflow_db, local_connection) -> None:
    """The trigger form's table inputs: an OJ-sales-shaped table (partitioned as Microsoft's sample writes it), one R
    model per store and brand; the partition too short to fit fails alone, and validation counts partitions."""
    from azureml_parallel_r.examples.samples import make_oj_sales_table

    make_oj_sales_table(str(local_connection / "r-script-inputs" / "2026-11-23"), stores=3, weeks=40)
    conf = {
        "input_kind": "table",
        "partition_keys": ["Store", "Brand"],
        "r_script": "r/forecast_per_store.r",
        "r_args": ["--horizon", "4"],
    }
    state, tasks = run_dag(dag, "2026-11-23", conf)
    assert state == "success" and set(tasks.values()) == {"success"}, tasks
    (output,) = output_dirs(local_connection, "2026-11-23")
    report = json.loads((output / "validation.json").read_text())
    assert report["passed"]
    assert (report["counts"]["input_files"], report["counts"]["succeeded"], report["counts"]["failed"]) == (9, 8, 1)
    assert report["failures"][0]["relative_path"] == "Store=1004/Brand=tropicana"
    assert "has 3 weeks" in report["failures"][0]["error"]
    forecast = (output / "results" / "Store=1000" / "Brand=dominicks" / "forecast.csv").read_text().splitlines()
    assert forecast[0] == '"WeekStarting","Quantity","lower","upper"' and len(forecast) == 5


@pytest.mark.integration
def test_partition_keys_on_a_folder_of_files_fail_the_run_saying_what_to_set(dag, airflow_db, local_connection) -> None:
    sample_inputs(local_connection, "2026-11-24")
    state, tasks = run_dag(dag, "2026-11-24", {"partition_keys": ["Store"]})
    assert state == "failed" and tasks["register_dataset"] == "failed"
