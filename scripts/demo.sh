#!/usr/bin/env bash
# The main job on the embedded default: set everything up, generate sample inputs for one date, and run
# the R script over them with the local ParallelRunStep engine (2 processes). Prints where the outputs are.
#   scripts/demo.sh [YYYY-MM-DD]        (default: today)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
DATE=${1:-$(date +%F)}
DATASTORE=${DATASTORE:-$PWD/data/datastore}
INPUTS="$DATASTORE/r-script-inputs/$DATE"
RUN_ID="local_$(date +%Y%m%d_%H%M%S)_demo"
OUTPUTS="$DATASTORE/r-script-outputs/$DATE/$RUN_ID"
if [ ! -d "$INPUTS" ]; then
  .venv/bin/python -m azureml_parallel_r.samples "$INPUTS"
fi
set +e
.venv/bin/python -m azureml_parallel_r.engine run \
  --input "$INPUTS" --output "$OUTPUTS" --run-id "$RUN_ID" \
  --source-dir include --entry-script entry/batch_wrapper.py \
  --mini-batch-size 5 --process-count-per-node 2 --error-threshold 5 --run-max-try 1 \
  -- --r-script r/process_file.r --input-root "$INPUTS"
status=$?
set -e
echo
echo "inputs:    $INPUTS"
echo "outputs:   $OUTPUTS"
echo "  rows:     $OUTPUTS/parallel_run_step.txt ($(wc -l < "$OUTPUTS/parallel_run_step.txt" 2>/dev/null || echo 0) lines)"
echo "  results:  $OUTPUTS/results/"
echo "  failures: $OUTPUTS/failures/ ($(find "$OUTPUTS/failures" -name '*.json' 2>/dev/null | wc -l) files; the sample set has one corrupt image on purpose)"
echo "  logs:     $OUTPUTS/logs/job_result.txt"
exit $status
