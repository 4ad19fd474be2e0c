"""One real Airflow stack (PostgreSQL, api-server, scheduler, dag-processor, triggerer) shared by the
system tests of a module, over a local datastore with sample inputs for the dates the tests run."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from azureml_parallel_r.examples.samples import make_sample_inputs
from tests.conftest import CONN_VARIABLE, REPO, local_connection_value
from tests.system.stack import AirflowStack, wait_until

ARTIFACTS = REPO / "test-artifacts" / "system"
# the REST API run names its input folder through the input_path param (a name with a space on purpose)
TRIGGERED_INPUTS = "r-script-inputs/manual upload"
# the run report's run: the samples and a corrupt file whose name is markup (shown as text, run as nothing)
REPORT_INPUTS = "r-script-inputs/report sample"
HOSTILE_NAME = "<img src=x onerror=alert(document.domain)>.png"
BACKFILL_DATES = ("2026-11-10", "2026-11-11", "2026-11-12")
MISSING_DATE = "2026-11-11"

# The example script behind a gate: no file is processed until the test creates the gate file, so the run
# stays Running until the test has seen the sensor deferred and its trigger polling (states, not timing).
# Given to the run as an absolute r_script through the trigger's params.
GATED_R_SCRIPT = """
example <- new.env()
sys.source({example}, envir = example)
process_file <- function(input_path, output_dir, args) {{
  while (!file.exists({gate})) Sys.sleep(0.1)
  example$process_file(input_path, output_dir, args)
}}
"""


@pytest.fixture(scope="module")
def datastore() -> Iterator[Path]:
    # PostgreSQL runs as the postgres user when the tests run as root: the folders must be traversable
    root = Path(tempfile.mkdtemp(prefix="apr-system-"))
    root.chmod(0o755)
    store = root / "datastore"
    make_sample_inputs(str(store / TRIGGERED_INPUTS), images=12)
    make_sample_inputs(str(store / REPORT_INPUTS), images=4)
    (store / REPORT_INPUTS / HOSTILE_NAME).write_bytes(b"not a png")
    for date in BACKFILL_DATES:
        if date != MISSING_DATE:
            make_sample_inputs(str(store / "r-script-inputs" / date), images=12)
    yield store
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def gated_r_script(datastore: Path) -> Iterator[tuple[Path, Path]]:
    """(the gated R script, its gate file); the gate is opened at the end whatever happened."""
    path, gate = datastore.parent / "gated_process_file.r", datastore.parent / "gate"
    example = json.dumps(str(REPO / "include" / "r" / "process_file.r"))
    path.write_text(GATED_R_SCRIPT.format(example=example, gate=json.dumps(str(gate))))
    yield path, gate
    gate.touch()


@pytest.fixture(scope="module")
def stack(datastore: Path) -> Iterator[AirflowStack]:
    """The running stack; its service logs are copied to test-artifacts/system/logs when it stops."""
    extra_env = {
        CONN_VARIABLE: local_connection_value(datastore, r_script_dirs=(str(datastore.parent),)),
        # No scheduled runs while the tests run (unless one crosses midnight UTC): the schedule starts now,
        # its first run is at the next midnight, and without catchup nothing is run for the days before
        # or, with Airflow 3.3, after the backfill's dates. Manual runs with a logical date need one at or
        # after the start date (Airflow creates no task instances before it); backfills may go earlier.
        "R_PARALLEL_BATCH_START_DATE": datetime.now(UTC).isoformat(timespec="seconds"),
        "R_PARALLEL_BATCH_CATCHUP": "false",
        # the connection's Test (POST /connections/test): off by default in Airflow
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stack = AirflowStack(datastore.parent / "stack", REPO, extra_env)
    try:
        with stack:
            yield stack
    finally:
        logs = ARTIFACTS / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        if stack.logs.exists():
            shutil.copytree(stack.logs, logs)


@pytest.fixture(scope="module")
def unpaused_dag(stack: AirflowStack) -> str:
    """The r_parallel_batch DAG once the dag-processor has parsed it, unpaused."""

    def parsed() -> bool:
        stack.check_alive()
        errors = stack.api.get("/importErrors")["import_errors"]
        assert not errors, f"the DAG folder has import errors: {errors}"
        dags = stack.api.get("/dags", dag_id_pattern="r_parallel_batch")["dags"]
        return bool(dags)

    wait_until(parsed, timeout=120, what="the dag-processor to parse dags/r_parallel_batch.py")
    stack.api.patch("/dags/r_parallel_batch", {"is_paused": False})
    return "r_parallel_batch"


@pytest.fixture(scope="module")
def unpaused_downstream_dag(unpaused_dag: str, stack: AirflowStack) -> str:
    """r_parallel_batch_results (scheduled on the outputs asset, per date), parsed and unpaused."""
    wait_until(
        lambda: stack.api.get("/dags", dag_id_pattern="r_parallel_batch_results")["dags"],
        timeout=120,
        what="the dag-processor to parse dags/r_parallel_batch_results.py",
    )
    stack.api.patch("/dags/r_parallel_batch_results", {"is_paused": False})
    return "r_parallel_batch_results"
