#!/usr/bin/env bash
# Before the first real batch: run the system test's DAG (tests/system/azure_ml/example_azureml_parallel_r.py) on
# your own Azure ML workspace, through your own connection. It uploads three sample images under
# system-tests/<id>/ on the workspace's datastore, registers them, submits the pipeline, waits, validates, prints the
# run's studio link, and deletes what it created (inputs, outputs, the dataset's registration) even when a step
# failed. The connection's "engine" picks SDK v1 or v2.
#   scripts/azure-smoke.sh [CONN_ID]            (default: azureml_parallel_r_default)
# The connection comes from wherever your Airflow keeps it: AIRFLOW_CONN_<ID> in the environment, or the metadata
# database of AIRFLOW_HOME (default here: .airflow-azure-smoke, a fresh one: set AIRFLOW_HOME to use yours).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
export AIRFLOW_HOME=${AIRFLOW_HOME:-$PWD/.airflow-azure-smoke}
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# dag.test() runs a DAG that a bundle holds: the example's folder is the dags folder here
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/tests/system/azure_ml
export SYSTEM_TESTS_AZUREML_CONN_ID=${1:-azureml_parallel_r_default}
export SYSTEM_TESTS_ENV_ID=${SYSTEM_TESTS_ENV_ID:-smoke-$(date -u +%Y%m%d%H%M%S)}
mkdir -p "$AIRFLOW_HOME/logs"
.venv/bin/airflow db migrate >"$AIRFLOW_HOME/logs/db-migrate.log" 2>&1
LOG=$AIRFLOW_HOME/logs/azure-smoke-$SYSTEM_TESTS_ENV_ID.log
echo "smoke test $SYSTEM_TESTS_ENV_ID on connection $SYSTEM_TESTS_AZUREML_CONN_ID (log: $LOG) ..."
set +e
PYTHONPATH=$PWD .venv/bin/python -m tests.system.azure_ml.example_azureml_parallel_r >"$LOG" 2>&1
status=$?
set -e
grep -E "\[DAG TEST\] end task" "$LOG" | sed -E 's/^[0-9T:.Z-]+ \[[a-z]+ *\] //; s/ \[airflow[^]]*\] loc=.*$//' || true
tail -n 1 "$LOG"
[ "$status" -eq 0 ] || grep -m1 -E "^[A-Za-z_.]+(Error|Exception): " "$LOG" || true
exit $status
