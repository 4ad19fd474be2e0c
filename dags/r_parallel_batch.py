"""
### r_parallel_batch — an R script over every file of a dated input folder, in parallel

`register_dataset >> submit_pipeline >> wait_for_pipeline >> validate_outputs`

1. **register_dataset** registers `r-script-inputs/<date>/` as a FileDataset version (reused when the
   same date is registered again), or, with the input kind `table`, the folder's MLTable as a tabular version
   (its partitions recorded). A missing or empty folder skips the run. `<date>` is the run's
   logical date, or for a manual run triggered without one, the day it was triggered.
2. **submit_pipeline** submits one ParallelRunStep pipeline whose entry script hands each file to the
   R script's `process_file(input_path, output_dir, args)`, or each partition of a table to its
   `process_partition(data, keys, output_dir, args)`; a retried task reattaches to its run.
3. **wait_for_pipeline** waits in the triggerer (deferrable), holding no worker slot; a Failed or
   Canceled run fails it with the first failed files and their R errors.
4. **validate_outputs** checks every input has results (or is within the allowed failures), writes
   `validation.json` next to the outputs in `r-script-outputs/<date>/<pipeline run id>/`, and updates
   the `r_parallel_batch_outputs` asset, partitioned by date, so downstream DAGs can be scheduled on it per
   date (the example: `r_parallel_batch_results`).

The connection (`azureml_parallel_r_default`, or the run's `conn_id` param) picks the engine: the embedded local engine
or Azure ML (SDK v2 or v1). Each run's **Run report** tab shows what it did; its **Rerun failed files** button
triggers a run with `rerun_failed_of` set, over only the files that failed.
Trigger it with the form to override the input folder, the R script and its arguments, or the scale;
backfill dates with `airflow backfill create --dag-id r_parallel_batch --from-date ... --to-date ...`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param

from azureml_parallel_r.compute.entry_settings import DEFAULT_R_SCRIPT
from azureml_parallel_r.examples.assets import R_PARALLEL_BATCH_OUTPUTS
from azureml_parallel_r.examples.deployment import env_date, env_flag
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.operators.dataset import RegisterFileDatasetOperator
from azureml_parallel_r.operators.parallel_run import SubmitParallelRunOperator
from azureml_parallel_r.operators.validation import ValidateParallelRunOutputsOperator
from azureml_parallel_r.run_identity import run_date
from azureml_parallel_r.run_settings import DATA_SIZE_PATTERN, ParallelRunSettings
from azureml_parallel_r.sensors.parallel_run import ParallelRunSensor

# Deployment settings, from the environment of the Airflow services:
# R_PARALLEL_BATCH_START_DATE (ISO date) is where the daily schedule, and so its catchup, begins, so that
# a new Airflow does not catch up on dates it should leave alone; backfills may still name earlier dates.
# R_PARALLEL_BATCH_CATCHUP=true makes the scheduler run missed days on its own (off by default: unpausing the DAG would
# queue every day since the start date before a manual run). Note that on
# Airflow 3.3 with catchup on, a backfill of dates before the start date makes the scheduler create
# (empty) runs for every day from the backfill's end on (apache/airflow#47886 again).
START_DATE = env_date("R_PARALLEL_BATCH_START_DATE", default="2026-11-01")
CATCHUP = env_flag("R_PARALLEL_BATCH_CATCHUP", default=False)
# The trigger form's defaults are the run settings' (ParallelRunSettings), but for two choices of this example: two
# worker processes per node (the form needs a number; the settings' default is one per core), and 5 failed files
# tolerated by the run and by the validation (the settings' default, -1, tolerates any number).
DEFAULTS = ParallelRunSettings()
PROCESSES_PER_NODE = 2
TOLERATED_FAILURES = 5

with DAG(
    dag_id="r_parallel_batch",
    description="Run an R script over every file of a dated input folder with an Azure ML ParallelRunStep",
    doc_md=__doc__,
    schedule="@daily",
    start_date=START_DATE,
    catchup=CATCHUP,
    max_active_runs=2,
    render_template_as_native_obj=True,
    user_defined_macros={"run_date": run_date},
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "owner": "data-science"},
    tags=["azureml", "r", "parallel-run-step"],
    params={
        # "null" in a type makes the field optional in the trigger form (an empty field is sent as null)
        "input_path": Param(
            None,
            type=["null", "string"],
            title="Input folder override",
            description="Datastore folder of the inputs; empty means r-script-inputs/<run date>.",
            maxLength=1024,
        ),
        "input_kind": Param(
            "files",
            type="string",
            enum=["files", "table"],
            title="Input kind",
            description="files: every file of the folder goes to the R script's process_file(). table: the folder "
            "holds an MLTable file, and each partition (or slice of rows) goes to process_partition() as a "
            "data.frame (e.g. r/forecast_per_store.r).",
        ),
        "partition_keys": Param(
            [],
            type=["null", "array"],
            items={"type": "string", "minLength": 1},
            title="Partition keys (tables)",
            description="Columns of the table whose values make one partition each, e.g. Store, Brand. Empty: "
            "mini-batches of rows by size.",
        ),
        "r_script": Param(
            DEFAULT_R_SCRIPT,
            type="string",
            title="R script",
            description="Relative to the step's source directory (include/) or absolute.",
            minLength=1,
        ),
        "r_args": Param(
            [],
            type=["null", "array"],
            items={"type": "string"},
            title="R script arguments",
            description="Passed to process_file() as its args vector, e.g. --thumbnail-size, 64.",
        ),
        "mini_batch_size": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=10000,
            title="Files per mini-batch",
            description="Empty: chosen from the number of files and worker processes (about 10 mini-batches per "
            "process, at most 200 files).",
        ),
        "mini_batch_data_size": Param(
            None,
            type=["null", "string"],
            pattern=DATA_SIZE_PATTERN,
            title="Rows per mini-batch, as data size (tables)",
            description="A table without partition keys: about this much data per mini-batch, e.g. 100 kb, 10MB. "
            "Empty: 1MB.",
        ),
        "process_count_per_node": Param(
            PROCESSES_PER_NODE, type="integer", minimum=1, maximum=64, title="Worker processes per node"
        ),
        "node_count": Param(DEFAULTS.node_count, type="integer", minimum=1, maximum=100, title="Compute nodes"),
        "error_threshold": Param(
            TOLERATED_FAILURES,
            type="integer",
            minimum=-1,
            title="Failed files tolerated",
            description="The run fails when more files fail; -1 tolerates any number.",
        ),
        "rerun_failed_of": Param(
            None,
            type=["null", "string"],
            title="Rerun the failed files of run",
            description="A run id of this DAG: run only the files that failed or have no results in it (the run "
            "report's Rerun button fills this in). Its input folder is used; the input folder override is ignored.",
            maxLength=250,
        ),
        "conn_id": Param(
            AzureMLParallelRunHook.default_conn_name,
            type="string",
            title="Connection",
            description="The Airflow connection that picks the engine (type Azure ML Parallel R, or generic).",
            pattern=r"^[A-Za-z0-9_.-]+$",
        ),
    },
) as dag:
    register_dataset = RegisterFileDatasetOperator(
        task_id="register_dataset",
        path="{{ params.input_path or 'r-script-inputs/' ~ run_date(dag_run) }}",
        dataset_name="r-script-inputs",
        allowed_conf_keys=list(dag.params),
        azureml_parallel_r_conn_id="{{ params.conn_id }}",
        rerun_failed_of="{{ params.rerun_failed_of }}",
        input_kind="{{ params.input_kind }}",
        partition_keys="{{ params.partition_keys }}",
    )
    submit_pipeline = SubmitParallelRunOperator(
        task_id="submit_pipeline",
        dataset=register_dataset.output,
        r_script="{{ params.r_script }}",
        r_args="{{ params.r_args }}",
        mini_batch_size="{{ params.mini_batch_size }}",
        mini_batch_data_size="{{ params.mini_batch_data_size }}",
        process_count_per_node="{{ params.process_count_per_node }}",
        node_count="{{ params.node_count }}",
        error_threshold="{{ params.error_threshold }}",
        output_path="r-script-outputs/{{ run_date(dag_run) }}/{run-id}",
        azureml_parallel_r_conn_id="{{ params.conn_id }}",
    )
    wait_for_pipeline = ParallelRunSensor(
        task_id="wait_for_pipeline",
        run_id="{{ ti.xcom_pull(task_ids='submit_pipeline', key='run_id') }}",
        deferrable=True,
        poke_interval=5,
        timeout=6 * 3600,
        azureml_parallel_r_conn_id="{{ params.conn_id }}",
    )
    validate_outputs = ValidateParallelRunOutputsOperator(
        task_id="validate_outputs",
        run=submit_pipeline.output,
        dataset=register_dataset.output,
        allowed_failures="{{ params.error_threshold }}",
        outlets=[R_PARALLEL_BATCH_OUTPUTS],
        azureml_parallel_r_conn_id="{{ params.conn_id }}",
    )

    register_dataset >> submit_pipeline >> wait_for_pipeline >> validate_outputs

if __name__ == "__main__":
    dag.test()
