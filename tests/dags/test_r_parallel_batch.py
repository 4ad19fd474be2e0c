"""The r_parallel_batch DAG and its downstream example: integrity, the trigger form, deployment settings, parse cost.
Whole runs: test_r_parallel_batch_local.py and test_r_parallel_batch_azure.py."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO
from tests.dags.dag_runs import DAG_ID

TASK_ORDER = ["register_dataset", "submit_pipeline", "wait_for_pipeline", "validate_outputs"]


def test_dag_integrity(dag) -> None:
    assert [
        t.task_id for t in sorted(dag.tasks, key=lambda t: len(t.get_flat_relative_ids(upstream=True)))
    ] == TASK_ORDER
    for upstream, downstream in itertools.pairwise(TASK_ORDER):
        assert upstream in dag.get_task(downstream).upstream_task_ids
    assert dag.catchup is False and dag.max_active_runs >= 1
    assert set(dag.tags) >= {"azureml", "r"}
    assert all(task.retries >= 1 for task in dag.tasks)
    assert dag.doc_md and "register_dataset" in dag.doc_md
    assert dag.get_task("wait_for_pipeline").deferrable is True


def test_params_form_schema(dag) -> None:
    params = {name: dag.params.get_param(name) for name in dag.params}
    assert set(params) == {
        "input_path",
        "input_kind",
        "partition_keys",
        "r_script",
        "r_args",
        "mini_batch_size",
        "mini_batch_data_size",
        "process_count_per_node",
        "node_count",
        "error_threshold",
        "rerun_failed_of",
        "conn_id",
    }
    assert params["mini_batch_size"].schema.items() >= {"type": ["null", "integer"], "minimum": 1}.items()
    assert params["mini_batch_size"].resolve(None) is None  # unset: chosen from the files and processes
    assert params["error_threshold"].schema["minimum"] == -1
    assert params["r_args"].schema["items"] == {"type": "string"}
    assert all(p.schema.get("title") for p in params.values())
    with pytest.raises(Exception, match="0 is less than the minimum of 1"):
        params["mini_batch_size"].resolve(0)
    with pytest.raises(Exception, match="does not match"):
        params["conn_id"].resolve("../etc")
    # optional in the trigger form: the UI sends an emptied field as null
    assert params["input_path"].resolve(None) is None and params["r_args"].resolve(None) is None


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.text(max_size=12) | st.from_regex(r"\A[0-9]{1,6} ?[kKmMgGxX]?[bB]?\Z"))
def test_the_forms_data_size_takes_exactly_the_sizes_the_run_takes(dag, text: str) -> None:
    """Whatever is typed: the trigger form accepts it as a table's mini-batch size exactly when the run does."""
    from azureml_parallel_r.run_settings import parse_data_size

    try:
        parse_data_size(text)
        runs = True
    except ValueError:
        runs = False
    try:
        dag.params.get_param("mini_batch_data_size").resolve(text)
        accepted = True
    except Exception:
        accepted = False
    assert accepted == runs, text


def test_the_forms_table_fields_default_to_files(dag) -> None:
    assert dag.params.get_param("input_kind").resolve("files") == "files"
    assert dag.params.get_param("partition_keys").resolve(None) is None
    with pytest.raises(Exception, match="is not one of"):
        dag.params.get_param("input_kind").resolve("tables")


def test_the_schedule_starts_at_the_deployments_start_date(airflow_db, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("R_PARALLEL_BATCH_START_DATE", "2027-02-03")
    assert DagBag(dag_folder=str(REPO / "dags")).get_dag(DAG_ID).start_date == pendulum.datetime(2027, 2, 3, tz="UTC")
    monkeypatch.setenv("R_PARALLEL_BATCH_START_DATE", "early next week")
    errors = DagBag(dag_folder=str(REPO / "dags")).import_errors
    assert "R_PARALLEL_BATCH_START_DATE must be an ISO date such as 2026-11-01, not 'early next week'" in next(
        iter(errors.values())
    )


def test_catchup_is_off_unless_the_deployment_turns_it_on(airflow_db, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("R_PARALLEL_BATCH_CATCHUP", "True")
    assert DagBag(dag_folder=str(REPO / "dags")).get_dag(DAG_ID).catchup is True
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


def test_the_downstream_dag_is_scheduled_per_date_on_the_outputs_asset(airflow_db) -> None:
    """r_parallel_batch_results: a PartitionedAssetTimetable on the asset validate_outputs updates (its run per date:
    tests/system)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import PartitionedAssetTimetable

    from azureml_parallel_r.examples.assets import R_PARALLEL_BATCH_OUTPUTS

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    downstream, upstream = bag.get_dag("r_parallel_batch_results"), bag.get_dag(DAG_ID)
    assert isinstance(downstream.timetable, PartitionedAssetTimetable), type(downstream.timetable)
    assert downstream.timetable.asset_condition == R_PARALLEL_BATCH_OUTPUTS
    assert R_PARALLEL_BATCH_OUTPUTS in upstream.get_task("validate_outputs").outlets
    assert all(task.retries >= 1 for task in downstream.tasks) and downstream.doc_md


def test_without_partitioned_asset_schedules_the_downstream_dag_runs_per_event_and_reads_the_date_from_it(
    airflow_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 3.1 has no PartitionedAssetTimetable: the DAG file falls back to a plain asset schedule, and its task
    takes the date from the asset event's extra, there being no partition key."""
    import runpy
    from types import SimpleNamespace

    import airflow.sdk
    from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable

    from azureml_parallel_r.examples.assets import R_PARALLEL_BATCH_OUTPUTS

    lazy = airflow.sdk.__getattr__

    def without_partitions(name: str):
        if name == "PartitionedAssetTimetable":
            raise AttributeError(name)  # what `from airflow.sdk import ...` meets on Airflow 3.1
        return lazy(name)

    monkeypatch.delattr(airflow.sdk, "PartitionedAssetTimetable", raising=False)
    monkeypatch.setattr(airflow.sdk, "__getattr__", without_partitions)
    dag = runpy.run_path(str(REPO / "dags" / "r_parallel_batch_results.py"))["dag"]
    assert isinstance(dag.timetable, AssetTriggeredTimetable), type(dag.timetable)
    event = SimpleNamespace(extra={"output_path": "out/2026-11-20/run-1", "run_id": "run-1", "date": "2026-11-20"})
    report = dag.get_task("report_outputs").python_callable(triggering_asset_events={R_PARALLEL_BATCH_OUTPUTS: [event]})
    assert report == {
        "date": "2026-11-20",
        "output_path": "out/2026-11-20/run-1",
        "output_paths": ["out/2026-11-20/run-1"],
        "run_id": "run-1",
    }
