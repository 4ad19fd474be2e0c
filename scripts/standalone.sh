#!/usr/bin/env bash
# The whole Airflow stack on this machine without Docker: `airflow standalone` (api-server, scheduler,
# dag-processor and triggerer with the LocalExecutor and a SQLite database in .airflow/) over this
# checkout's dags/ and plugins/, on the embedded local engine with its datastore in data/datastore.
# Sample inputs are written for today's date and the DAG starts unpaused without catchup, so the scheduler
# runs it once for today straight away. The UI is http://127.0.0.1:8080 (the admin password is printed
# at start and kept in .airflow/simple_auth_manager_passwords.json.generated). Ctrl+C stops it all.
# Environment: DATASTORE (default data/datastore), AIRFLOW_HOME (default .airflow), AIRFLOW_PORT (8080).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"  # airflow standalone starts its services as `airflow ...`
source scripts/local-env.sh
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-False}
export R_PARALLEL_BATCH_CATCHUP=${R_PARALLEL_BATCH_CATCHUP:-false}
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT=${AIRFLOW_PORT:-8080}
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$AIRFLOW__API__PORT/execution/
ensure_sample_inputs "$(date -u +%F)" >/dev/null
echo "UI: http://127.0.0.1:$AIRFLOW__API__PORT  (user admin; password below and in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated)"
exec .venv/bin/airflow standalone
