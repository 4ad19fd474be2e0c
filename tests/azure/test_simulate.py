"""scripts/azure-sim.sh's program: the whole DAG on each Azure ML engine against the fake, in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.azure.simulate import ARTIFACTS
from tests.conftest import REPO, SHIPPED

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600 + 120)]  # the simulation: 600 s
# what the step's source directory ships: the entry script's modules and the R files, and nothing else
SHIPPED_FILES = len(SHIPPED)  # the staged source directory (tests/conftest.py)


def test_the_simulation_runs_the_dag_and_records_what_the_sdk_sent(airflow_db) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT", None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.azure.simulate", "2026-11-17"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "PASSED - 28/29 files have results, 1 failed (allowed: 5)" in done.stdout
    record = json.loads((ARTIFACTS / "submission.json").read_text())
    argv = record["driver_argv"]
    assert argv[argv.index("--input_fds_0") + 1] == "input_files" and "--input-root" not in argv
    assert record["output_destination"]["path"] == record["tags"]["output_path"]
    assert record["output_destination"]["path"].startswith("r-script-outputs/2026-11-17/")
    described = json.loads(record["description"].split(" ", 1)[1])
    assert described["run_key"]["dag_id"] == "r_parallel_batch" and described["run_key"]["attempt"] == "1"
    assert record["step_type"] == "ParallelRunStep" and len(record["snapshot_files"]) == SHIPPED_FILES


def test_the_v2_simulation_runs_the_dag_and_records_what_azure_ai_ml_sent(airflow_db) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT", None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.azure.simulate", "--engine", "azureml_v2", "2026-11-16"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "PASSED - 28/29 files have results, 1 failed (allowed: 5)" in done.stdout
    record = json.loads((ARTIFACTS / "submission-v2.json").read_text())
    node = record["parallel_node"]
    assert node["type"] == "parallel" and node["task"]["entry_script"] == "entry/batch_wrapper.py"
    assert "--input-root ${{inputs.input_files}}" in node["task"]["program_arguments"]
    assert record["tags"]["output_path"] == f"r-script-outputs/2026-11-16/{record['job_name']}"
    assert record["tags"]["airflow_dag_id"] == "r_parallel_batch" and len(record["code_files"]) == SHIPPED_FILES
    assert record["environment"]["build"]["contextUri"].endswith("/environment/")
