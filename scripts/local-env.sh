# Sourced by scripts/demo.sh and scripts/standalone.sh (after scripts/setup.sh): Airflow over this
# checkout's dags/ and plugins/ with a home in .airflow/, and the azureml_parallel_r_default connection on the
# embedded local engine with its datastore in data/datastore.
# Environment: DATASTORE (default data/datastore), AIRFLOW_HOME (default .airflow).
DATASTORE=${DATASTORE:-$PWD/data/datastore}
export AIRFLOW_HOME=${AIRFLOW_HOME:-$PWD/.airflow}
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$PWD/plugins
AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT=$(.venv/bin/python -c 'import json, sys
print(json.dumps({"conn_type": "generic", "extra": {"engine": "local", "datastore_root": sys.argv[1], "process_count_per_node": 2}}))' "$DATASTORE")
export AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT

# ensure_sample_inputs DATE: write the sample inputs for DATE unless its input folder exists; prints the folder
ensure_sample_inputs() {
  local inputs="$DATASTORE/r-script-inputs/$1"
  [ -d "$inputs" ] || .venv/bin/python -m azureml_parallel_r.examples.samples "$inputs" >&2
  printf '%s\n' "$inputs"
}
