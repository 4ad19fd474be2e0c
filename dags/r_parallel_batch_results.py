"""
### r_parallel_batch_results — one run per date whose R outputs passed validation

Scheduled on the `r_parallel_batch_outputs` asset, partitioned by date: when `r_parallel_batch` has validated a
date's outputs, this DAG runs for that date (its run's partition key), with the output folder and the pipeline
run id from the asset event. The place to continue with the results: load them, publish them, notify someone.

On Airflow 3.1, which has no partitioned asset schedules, it runs once per asset event instead, and takes the
date from the event's extra: the same runs, without the partition key in the UI.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, task

from azureml_parallel_r.examples.assets import R_PARALLEL_BATCH_OUTPUTS
from azureml_parallel_r.examples.deployment import env_date

try:  # Airflow 3.2+
    from airflow.sdk import PartitionedAssetTimetable

    schedule = PartitionedAssetTimetable(assets=R_PARALLEL_BATCH_OUTPUTS)
except ImportError:  # Airflow 3.1: one run per asset event
    schedule = [R_PARALLEL_BATCH_OUTPUTS]

with DAG(
    dag_id="r_parallel_batch_results",
    description="Runs once per date whose r_parallel_batch outputs passed validation",
    doc_md=__doc__,
    schedule=schedule,
    start_date=env_date("R_PARALLEL_BATCH_START_DATE", default="2026-11-01"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "owner": "data-science"},
    tags=["azureml", "r", "downstream"],
) as dag:

    @task
    def report_outputs(**context) -> dict:
        """The date and where its validated outputs are (the triggering asset event's extra): after a repair run,
        two folders, the repaired run's and the repair's (``output_paths``)."""
        (event, *_) = reversed(context["triggering_asset_events"][R_PARALLEL_BATCH_OUTPUTS])
        return {
            "date": context.get("partition_key") or event.extra["date"],
            "output_path": event.extra["output_path"],
            "output_paths": event.extra.get("output_paths", [event.extra["output_path"]]),
            "run_id": event.extra["run_id"],
        }

    report_outputs()

if __name__ == "__main__":
    dag.test()
