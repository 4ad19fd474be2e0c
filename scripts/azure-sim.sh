#!/usr/bin/env bash
# The whole r_parallel_batch DAG on an Azure ML engine, without Azure: the real Azure ML SDKs (v1: azureml-core and
# azureml-pipeline; v2: azure-ai-ml) send their HTTP calls to a fake of the workspace's services (tests/azure, every
# behaviour sourced) and the storage account is Azurite. Prints the task states and the validation; writes what a
# real workspace would have received to test-artifacts/azure-sim/submission.json (v1) or submission-v2.json (v2).
#   scripts/azure-sim.sh [--engine azureml|azureml_v2] [YYYY-MM-DD]     (default: SDK v1, today)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
export AIRFLOW_HOME=${AIRFLOW_HOME:-$PWD/.airflow-azure-sim}
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$PWD/plugins
mkdir -p "$AIRFLOW_HOME/logs" test-artifacts/azure-sim
.venv/bin/airflow db migrate >"$AIRFLOW_HOME/logs/db-migrate.log" 2>&1
LOG=test-artifacts/azure-sim/dags-test.log
echo "running the r_parallel_batch DAG on an Azure ML engine against the fake workspace (log: $LOG) ..."
set +e
PYTHONPATH=$PWD .venv/bin/python -m tests.azure.simulate "$@" >"$LOG" 2>&1
status=$?
set -e
grep -E "\[DAG TEST\] end task|Submitted pipeline run|Pausing task as DEFERRED|Reattaching" "$LOG" |
  sed -E 's/^[0-9T:.Z-]+ \[[a-z]+ *\] //; s/ \[airflow[^]]*\] loc=.*$//; s/ loc=[a-z_.]+:[0-9]+//' || true
sed -n '/^DAG run /,$p' "$LOG"
exit $status
