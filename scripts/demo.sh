#!/usr/bin/env bash
# The main job on the embedded default: set everything up, generate sample inputs for one date, and run
# the whole r_parallel_batch DAG (register -> submit -> wait (deferrable) -> validate) with
# `airflow dags test` on the local engine. Prints where the outputs are and the validation result.
#   scripts/demo.sh [YYYY-MM-DD]        (default: today)
# Environment: DATASTORE (default data/datastore), AIRFLOW_HOME (default .airflow).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
DATE=${1:-$(date +%F)}
source scripts/local-env.sh
INPUTS=$(ensure_sample_inputs "$DATE")
mkdir -p "$AIRFLOW_HOME/logs"
.venv/bin/airflow db migrate >"$AIRFLOW_HOME/logs/db-migrate.log" 2>&1
LOG="$AIRFLOW_HOME/logs/dags-test-r_parallel_batch-$DATE.log"
echo "running the r_parallel_batch DAG for $DATE on the local engine (log: $LOG) ..."
before=$(ls -1 "$DATASTORE/r-script-outputs/$DATE" 2>/dev/null || true)
STARTED_AT=$(date +%s)
# Ctrl-C (or a kill) stops `airflow dags test`; the pipeline run it started lives on in its own session, so
# cancel the runs this demo submitted that are still going (controller, workers and R stop with them).
cancel_started_runs() {
  .venv/bin/python - "$DATASTORE" "$STARTED_AT" <<'PY' || true
import json, pathlib, sys
from azureml_parallel_r.backends.local import LocalBackend
root, since = sys.argv[1], float(sys.argv[2])
backend = LocalBackend(root)
for record in sorted((pathlib.Path(root) / ".azureml-local" / "runs").glob("*.json")):
    data = json.loads(record.read_text())
    if data.get("submitted_at", 0) >= since and not backend.get_status(data["run_id"]).terminal:
        print(f"interrupted: canceling pipeline run {data['run_id']} ->", backend.cancel(data["run_id"]).status)
PY
}
trap 'echo; cancel_started_runs; exit 130' INT TERM
set +e
.venv/bin/airflow dags test r_parallel_batch "$DATE" >"$LOG" 2>&1
set -e
trap - INT TERM
grep -E "\[DAG TEST\] end task|Submitted pipeline run|Pausing task as DEFERRED|DagRun Finished" "$LOG" |
  sed -E 's/^[0-9T:.Z-]+ \[[a-z]+ *\] //; s/ \[airflow[^]]*\] loc=.*$//; s/ loc=[a-z_.]+:[0-9]+//' || true

OUTPUT=""
for run in $(ls -1 "$DATASTORE/r-script-outputs/$DATE" 2>/dev/null); do
  grep -qxF "$run" <<<"$before" || OUTPUT="$DATASTORE/r-script-outputs/$DATE/$run"
done
echo
if [ -z "$OUTPUT" ]; then
  echo "no pipeline run was submitted for $DATE (see $LOG)"
  exit 1
fi
echo "inputs:      $INPUTS"
echo "outputs:     $OUTPUT"
echo "  results/   per-file outputs;  failures/  why files failed;  parallel_run_step.txt  one row per file"
echo "  logs/      the engine's logs (job_result.txt, user/, sys/)"
if [ -f "$OUTPUT/validation.json" ]; then
  echo "validation:  $OUTPUT/validation.json"
  .venv/bin/python -c 'import json, sys
from azureml_parallel_r.output_checks import format_report
report = json.load(open(sys.argv[1]))
print(format_report(report))
sys.exit(0 if report["passed"] else 1)' "$OUTPUT/validation.json"
else
  echo "validation:  not written - the run did not get that far (see $LOG)"
  exit 1
fi
