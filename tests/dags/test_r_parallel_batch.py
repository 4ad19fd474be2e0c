"""The r_parallel_batch DAG: integrity, and whole runs with real Airflow (dag.test()) and real R."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import threading
from pathlib import Path

import pendulum
import pytest

from azureml_parallel_r.example_dags.samples import make_sample_inputs
from tests.conftest import REPO

DAG_ID = "r_parallel_batch"
TASK_ORDER = ["register_dataset", "submit_pipeline", "wait_for_pipeline", "validate_outputs"]


@pytest.fixture
def dag(airflow_db):
    """A freshly parsed DAG for each test (dag.test(run_conf=...) changes the DAG object's params)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.get_dag(DAG_ID)


def test_dag_integrity(dag) -> None:
    assert [
        t.task_id for t in sorted(dag.tasks, key=lambda t: len(t.get_flat_relative_ids(upstream=True)))
    ] == TASK_ORDER
    for upstream, downstream in itertools.pairwise(TASK_ORDER):
        assert upstream in dag.get_task(downstream).upstream_task_ids
    assert dag.catchup is True and dag.max_active_runs >= 1
    assert set(dag.tags) >= {"azureml", "r"}
    assert all(task.retries >= 1 for task in dag.tasks)
    assert dag.doc_md and "register_dataset" in dag.doc_md
    assert dag.get_task("wait_for_pipeline").deferrable is True


def test_params_form_schema(dag) -> None:
    params = {name: dag.params.get_param(name) for name in dag.params}
    assert set(params) == {"input_path", "r_script", "r_args", "mini_batch_size", "process_count_per_node",
                           "node_count", "error_threshold", "conn_id"}  # fmt: skip
    assert params["mini_batch_size"].schema.items() >= {"type": "integer", "minimum": 1}.items()
    assert params["error_threshold"].schema["minimum"] == -1
    assert params["r_args"].schema["items"] == {"type": "string"}
    assert all(p.schema.get("title") for p in params.values())
    with pytest.raises(Exception, match="0 is less than the minimum of 1"):
        params["mini_batch_size"].resolve(0)
    with pytest.raises(Exception, match="does not match"):
        params["conn_id"].resolve("../etc")
    # optional in the trigger form: the UI sends an emptied field as null
    assert params["input_path"].resolve(None) is None and params["r_args"].resolve(None) is None


def test_the_schedule_starts_at_the_deployments_start_date(airflow_db, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("R_PARALLEL_BATCH_START_DATE", "2027-02-03")
    assert DagBag(dag_folder=str(REPO / "dags")).get_dag(DAG_ID).start_date == pendulum.datetime(2027, 2, 3, tz="UTC")
    monkeypatch.setenv("R_PARALLEL_BATCH_START_DATE", "early next week")
    errors = DagBag(dag_folder=str(REPO / "dags")).import_errors
    assert "R_PARALLEL_BATCH_START_DATE must be an ISO date such as 2026-11-01, not 'early next week'" in next(
        iter(errors.values())
    )


def test_catchup_is_on_unless_the_deployment_turns_it_off(airflow_db, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("R_PARALLEL_BATCH_CATCHUP", "False")
    assert DagBag(dag_folder=str(REPO / "dags")).get_dag(DAG_ID).catchup is False
    monkeypatch.setenv("R_PARALLEL_BATCH_CATCHUP", "sometimes")
    errors = DagBag(dag_folder=str(REPO / "dags")).import_errors
    assert "R_PARALLEL_BATCH_CATCHUP must be true or false, not 'sometimes'" in next(iter(errors.values()))


def test_dag_file_imports_nothing_heavy() -> None:
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]); "
        "heavy = [m for m in sys.modules if m.startswith(('azureml.', 'azureml_parallel_r.engine', "
        "'azureml_parallel_r.backends.local'))]; print(heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "dags" / f"{DAG_ID}.py")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# -- whole runs ---------------------------------------------------------------------------------------------


def _run(dag, date: str, conf: dict | None = None, run_after: str | None = None) -> tuple[str, dict[str, str]]:
    """Run the DAG for ``date`` with dag.test(); its run id is ``manual__<run_after>`` (now, unless given)."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    for task in dag.tasks:
        task.retries = 0
    dag_run = dag.test(logical_date=pendulum.parse(date), run_conf=conf,
                       run_after=pendulum.parse(run_after) if run_after else None)  # fmt: skip
    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == DAG_ID, DagRun.run_id == dag_run.run_id).one()
        return str(run.state), {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}


def _run_with_retries(dag, date: str, conf: dict | None = None) -> dict[str, tuple[str, int]]:
    """Run the DAG with its retries (and no delay between tries); return each task's state and try number."""
    from datetime import timedelta

    from airflow.models import DagRun
    from airflow.utils.session import create_session

    for task in dag.tasks:
        task.retry_delay = timedelta(0)
    dag_run = dag.test(logical_date=pendulum.parse(date), run_conf=conf)
    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == DAG_ID, DagRun.run_id == dag_run.run_id).one()
        return {ti.task_id: (str(ti.state), ti.try_number) for ti in run.get_task_instances(session=session)}


def _output_dirs(root: Path, date: str) -> list[Path]:
    folder = root / "r-script-outputs" / date
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _inputs(root: Path, date: str, images: int = 4) -> Path:
    folder = root / "r-script-inputs" / date
    make_sample_inputs(str(folder), images=images)
    return folder


@pytest.mark.integration
def test_a_normal_date_runs_end_to_end(dag, airflow_db, local_connection: Path) -> None:
    _inputs(local_connection, "2026-11-20")
    state, tasks = _run(dag, "2026-11-20")
    assert state == "success" and set(tasks.values()) == {"success"}
    (output,) = _output_dirs(local_connection, "2026-11-20")
    report = json.loads((output / "validation.json").read_text())
    assert report["passed"] and report["counts"] == {
        "input_files": 9, "succeeded": 8, "failed": 1, "failed_allowed_by_pattern": 0,
        "failed_without_failure_record": 0, "rows": 8, "rows_not_in_dataset": 0,
        "output_files": report["counts"]["output_files"],
    }  # fmt: skip
    assert report["failures"][0]["relative_path"] == "camera-b/broken.png"
    assert report["throughput"]["files_per_second"] > 0
    assert (output / "results" / "camera-a" / "img_0000.png" / "thumbnail.png").is_file()
    # the outputs asset's event: the date is its partition, for downstream DAGs scheduled per date
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                  .filter(AssetModel.name == "r_parallel_batch_outputs", AssetEvent.partition_key == "2026-11-20")
                  .all())  # fmt: skip
        assert [event.extra for event in events] == [{"output_path": f"r-script-outputs/2026-11-20/{output.name}",
                                                      "run_id": output.name, "date": "2026-11-20"}]  # fmt: skip


@pytest.mark.integration
def test_a_run_can_name_another_connection_of_the_typed_kind(dag, airflow_db, tmp_path: Path, monkeypatch) -> None:
    """The conn_id param picks the connection; here one of the provider's own type (what the UI form saves)."""
    from tests.conftest import CONN_VARIABLE

    monkeypatch.delenv(CONN_VARIABLE, raising=False)
    root = tmp_path / "datastore"
    root.mkdir()
    extra = {"engine": "local", "datastore_root": str(root), "process_count_per_node": 2, "subscriptionId": None}
    monkeypatch.setenv("AIRFLOW_CONN_AZUREML_OTHER", json.dumps({"conn_type": "azureml_parallel_r", "extra": extra}))
    _inputs(root, "2026-11-13", images=2)
    state, tasks = _run(dag, "2026-11-13", {"conn_id": "azureml_other"})
    assert state == "success" and set(tasks.values()) == {"success"}
    (output,) = _output_dirs(root, "2026-11-13")
    assert json.loads((output / "validation.json").read_text())["passed"]


@pytest.mark.integration
def test_a_corrupt_file_over_the_threshold_fails_the_run_with_its_error(dag, airflow_db, local_connection) -> None:
    _inputs(local_connection, "2026-11-21")
    state, tasks = _run(dag, "2026-11-21", {"error_threshold": 0})
    assert state == "failed"
    assert tasks["wait_for_pipeline"] == "failed" and tasks["validate_outputs"] == "upstream_failed"
    (output,) = _output_dirs(local_connection, "2026-11-21")
    assert "more than error_threshold=0" in (output / "logs" / "job_error.txt").read_text()


@pytest.mark.integration
def test_a_misspelt_trigger_parameter_fails_the_run_with_what_to_fix(dag, airflow_db, local_connection, capfd) -> None:
    _inputs(local_connection, "2026-11-16", images=2)
    state, tasks = _run(dag, "2026-11-16", {"mini_batch_sise": 5})
    assert state == "failed" and tasks["register_dataset"] == "failed" and tasks["submit_pipeline"] == "upstream_failed"
    assert _output_dirs(local_connection, "2026-11-16") == []
    printed = capfd.readouterr()
    assert "unknown trigger parameter(s) 'mini_batch_sise'; this DAG's parameters are conn_id, error_threshold, " \
           "input_path, mini_batch_size," in printed.out + printed.err  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize("case", ["absolute input_path", "URL input_path", "a link to nothing in the folder"])
def test_inputs_no_retry_can_fix_fail_the_run_at_once_and_register_nothing(
    dag, airflow_db, local_connection: Path, capfd, case: str
) -> None:
    """`/etc` was read as `etc` under the datastore root, a URL likewise, and a link to nothing was skipped: green
    runs. Now register_dataset fails on its first try (its retries could not change the answer), saying why."""
    folder = _inputs(local_connection, "2026-11-11", images=2)
    conf = {}
    if case == "absolute input_path":
        conf, expected = {"input_path": "/etc"}, "'/etc' is an absolute path"
    elif case == "URL input_path":
        conf = {"input_path": "azureml://datastores/workspaceblobstore/paths/r-script-inputs/2026-11-11"}
        expected = "is a URL or an asset reference"
    else:
        (folder / "camera-a" / "moved.png").symlink_to(folder / "no-such-file.png")
        expected = f"camera-a/moved.png is a link to nothing ({folder / 'no-such-file.png'})"
    tasks = _run_with_retries(dag, "2026-11-11", conf)
    assert tasks["register_dataset"] == ("failed", 1) and tasks["submit_pipeline"][0] == "upstream_failed"
    assert dag.get_task("register_dataset").retries == 2
    printed = capfd.readouterr()
    assert expected in printed.out + printed.err
    assert not (local_connection / ".azureml-local" / "datasets").exists()


@pytest.mark.integration
def test_a_missing_date_folder_is_skipped(dag, airflow_db, local_connection: Path) -> None:
    state, tasks = _run(dag, "2026-11-22")
    assert state == "success" and set(tasks.values()) == {"skipped"}
    assert _output_dirs(local_connection, "2026-11-22") == []


@pytest.mark.integration
def test_rerunning_a_date_writes_a_new_output_folder_and_leaves_the_old_one(dag, airflow_db, local_connection) -> None:
    _inputs(local_connection, "2026-11-23", images=2)
    assert _run(dag, "2026-11-23")[0] == "success"
    (first,) = _output_dirs(local_connection, "2026-11-23")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in first.rglob("*") if p.is_file()}
    assert _run(dag, "2026-11-23", {"r_args": ["--thumbnail-size", "4"]})[0] == "success"
    folders = _output_dirs(local_connection, "2026-11-23")
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
    assert _run(dag, "2026-11-12", {"r_script": str(script)}, run_after="2026-11-13T00:00:00+00:00")[0] == "success"
    (first,) = _output_dirs(local_connection, "2026-11-12")
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text("NEW, corrected\n")
    _forget_dag_runs()
    state, tasks = _run(dag, "2026-11-12", {"r_script": str(script)}, run_after="2026-11-13T00:00:00+00:00")
    assert state == "success" and set(tasks.values()) == {"success"}
    runs = [json.loads(p.read_text()) for p in (local_connection / ".azureml-local" / "runs").glob("*.json")]
    assert len(runs) == 2 and runs[0]["run_key"]["dag_run_id"] == runs[1]["run_key"]["dag_run_id"]
    assert runs[0]["run_key"]["attempt"] == runs[1]["run_key"]["attempt"] == "1"
    (second,) = [path for path in _output_dirs(local_connection, "2026-11-12") if path != first]
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
    _inputs(local_connection, "2026-11-24", images=2)
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
        state, tasks = _run(dag, "2026-11-24", {"r_script": str(hang)})
    finally:
        dag_test_returned.set()
        canceller.join()
    assert trigger_polling.is_set(), "the sensor never deferred to its trigger"
    assert state == "failed" and tasks["wait_for_pipeline"] == "failed"
    assert tasks["validate_outputs"] == "upstream_failed"
    assert [event["run_status"] for event in fired] == ["Canceled"]
    (output,) = _output_dirs(local_connection, "2026-11-24")
    assert json.loads((output / "logs" / "status.json").read_text())["status"] == "Canceled"
    assert not (output / "results").exists() or not any((output / "results").rglob("*.json"))


# -- the same DAG on the Azure ML engine: the real SDKs against the fake workspace and Azurite -------------------


@pytest.mark.integration
def test_the_whole_dag_runs_on_the_azure_ml_engine(dag, airflow_db, fake_azure, tmp_path: Path) -> None:
    make_sample_inputs(str(tmp_path / "inputs"), images=4)
    fake_azure.upload_inputs(tmp_path / "inputs", "r-script-inputs/2026-11-19")
    state, tasks = _run(dag, "2026-11-19")
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
    state, tasks = _run(dag, "2026-11-18")
    assert state == "success" and set(tasks.values()) == {"skipped"}
    assert fake_azure.pipelines.submitted == []


@pytest.mark.integration
@pytest.mark.parametrize("r_script", ["/etc/passwd", "broken"])
def test_a_bad_r_script_fails_submit_before_anything_is_submitted(dag, airflow_db, local_connection, tmp_path,
                                                                   capfd, r_script: str) -> None:  # fmt: skip
    if r_script == "broken":
        r_script = str(tmp_path / "broken.r")
        Path(r_script).write_text("process_file <- function(a, b, c) {\n  S3CRET_TOKEN here\n}\n")
    _inputs(local_connection, "2026-11-15", images=2)
    state, tasks = _run(dag, "2026-11-15", {"r_script": r_script})
    assert state == "failed" and tasks["submit_pipeline"] == "failed"
    assert tasks["wait_for_pipeline"] == "upstream_failed"
    assert _output_dirs(local_connection, "2026-11-15") == []
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
    state, tasks = _run(dag, "2026-11-17")
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

    fake_azure_v2.wire.fault("PUT", r"/workspaces/ws-parallel-r/jobs/[^/]+$",
                             handler=inputs_vanish_then_the_job_is_created)  # fmt: skip
    state, tasks = _run(dag, "2026-11-14")
    assert state == "failed" and tasks["submit_pipeline"] == "success"
    assert tasks["wait_for_pipeline"] == "failed" and tasks["validate_outputs"] == "upstream_failed"
    (job,) = fake_azure_v2.ml.jobs.values()
    assert job["properties"]["status"] == "Failed"
    printed = capfd.readouterr()
    logged = printed.out + printed.err
    assert "--- step_error.txt ---" in logged and "ScriptExecution.StreamAccess.NotFound" in logged


def test_the_downstream_dag_is_scheduled_per_date_on_the_outputs_asset(airflow_db) -> None:
    """r_parallel_batch_results: a PartitionedAssetTimetable on the asset validate_outputs updates (its run per date:
    tests/system)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import PartitionedAssetTimetable

    from azureml_parallel_r.example_dags.assets import R_PARALLEL_BATCH_OUTPUTS

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    downstream, upstream = bag.get_dag("r_parallel_batch_results"), bag.get_dag(DAG_ID)
    assert isinstance(downstream.timetable, PartitionedAssetTimetable), type(downstream.timetable)
    assert downstream.timetable.asset_condition == R_PARALLEL_BATCH_OUTPUTS
    assert R_PARALLEL_BATCH_OUTPUTS in upstream.get_task("validate_outputs").outlets
    assert all(task.retries >= 1 for task in downstream.tasks) and downstream.doc_md
