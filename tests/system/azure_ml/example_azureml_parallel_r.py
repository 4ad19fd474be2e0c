"""A run on a real Azure ML workspace, as the Airflow providers write their system tests (the Microsoft Azure
provider's tests/system: an example DAG per test, ``SYSTEM_TESTS_ENV_ID`` in every name it creates, a teardown
task that runs whatever happened, ``ALL_DONE``, and a watcher that fails the run when any task failed).

It uploads three sample images to the workspace's datastore, registers them, submits the pipeline, waits,
validates the outputs, and deletes what it created (the inputs, the outputs and the dataset's registration) even
when a step failed. The connection is the user's (``SYSTEM_TESTS_AZUREML_CONN_ID``, default the provider's
default id); its ``engine`` picks SDK v1 or v2.

Run it against your own connection before the first real batch: ``scripts/azure-smoke.sh`` (it prints the
studio link of the run). Collected by ``tests/system/azure_ml/test_example_azureml_parallel_r.py``.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime

from airflow.sdk import DAG, TriggerRule, task

from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.operators.dataset import RegisterFileDatasetOperator
from azureml_parallel_r.operators.parallel_run import SubmitParallelRunOperator
from azureml_parallel_r.operators.validation import ValidateParallelRunOutputsOperator
from azureml_parallel_r.sensors.parallel_run import ParallelRunSensor

ENV_ID = os.environ.get("SYSTEM_TESTS_ENV_ID", "local")
CONN_ID = os.environ.get("SYSTEM_TESTS_AZUREML_CONN_ID", AzureMLParallelRunHook.default_conn_name)
DAG_ID = "example_azureml_parallel_r"
INPUT_PATH = f"system-tests/{ENV_ID}/r-script-inputs"
OUTPUT_PATH = f"system-tests/{ENV_ID}/r-script-outputs/{{run-id}}"
DATASET_NAME = f"system-test-{ENV_ID}"
IMAGES = ("camera-a/img_0000.png", "camera-a/img_0001.png", "camera-b/img_0000.png")


def _backend():
    return AzureMLParallelRunHook(azureml_parallel_r_conn_id=CONN_ID).get_conn()


with DAG(DAG_ID, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["example", "azure"]) as dag:

    @task
    def upload_inputs() -> list[str]:
        """Three sample images into the datastore, under this test's own folder."""
        import tempfile

        from azureml_parallel_r.examples.samples import write_png

        blobs = _backend().blobs()  # the connection's datastore, as the engines write it
        with tempfile.TemporaryDirectory() as folder:
            for seed, name in enumerate(IMAGES):
                with open(write_png(os.path.join(folder, name), seed=seed), "rb") as handle:
                    blobs.write(f"{INPUT_PATH}/{name}", handle.read())
        return [f"{INPUT_PATH}/{name}" for name in IMAGES]

    register_dataset = RegisterFileDatasetOperator(
        task_id="register_dataset", path=INPUT_PATH, dataset_name=DATASET_NAME, azureml_parallel_r_conn_id=CONN_ID
    )
    submit_pipeline = SubmitParallelRunOperator(
        task_id="submit_pipeline",
        dataset=register_dataset.output,
        output_path=OUTPUT_PATH,
        mini_batch_size=2,
        node_count=1,
        azureml_parallel_r_conn_id=CONN_ID,
    )
    wait_for_pipeline = ParallelRunSensor(
        task_id="wait_for_pipeline",
        run_id="{{ ti.xcom_pull(task_ids='submit_pipeline', key='run_id') }}",
        deferrable=True,
        poke_interval=30,
        timeout=3 * 3600,
        azureml_parallel_r_conn_id=CONN_ID,
    )
    validate_outputs = ValidateParallelRunOutputsOperator(
        task_id="validate_outputs",
        run=submit_pipeline.output,
        dataset=register_dataset.output,
        allowed_failures=0,
        azureml_parallel_r_conn_id=CONN_ID,
    )

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def delete_created(dataset: dict | None) -> None:
        """Teardown: the inputs, the outputs, the dataset's registration and the file lists registration kept
        beside the data (``azureml-parallel-r/datasets/<name>/``), whatever happened before."""
        from azureml_parallel_r.backends.azure.storage import dataset_files_blob

        backend = _backend()
        container = backend.blobs().container
        lists = dataset_files_blob(DATASET_NAME, 1).rsplit("/", 1)[0] + "/"
        for prefix in (f"system-tests/{ENV_ID}/", lists):
            # deepest first: on ADLS Gen2 a directory is an object that must be empty to be deleted
            for name in sorted((blob.name for blob in container.list_blobs(name_starts_with=prefix)), reverse=True):
                container.delete_blob(name)
        if not dataset:
            return
        if backend.engine == "azureml_v2":
            for version in backend.client.data.list(name=dataset["name"]):
                backend.client.data.archive(name=dataset["name"], version=version.version)
        else:
            from azureml.core import Dataset

            Dataset.get_by_name(backend.workspace, dataset["name"]).unregister_all_versions()

    @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0)
    def watcher() -> None:
        """Fails the run when any task failed (the teardown alone would otherwise decide its state)."""
        raise RuntimeError("a task of the system test failed; see its log")

    uploaded = upload_inputs()
    teardown = delete_created(register_dataset.output)
    uploaded >> register_dataset >> submit_pipeline >> wait_for_pipeline >> validate_outputs >> teardown
    list(dag.tasks) >> watcher()


def studio_link(dag_run) -> str | None:
    """The submitted run's page (the "Pipeline run" link), from the submit task's XCom."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        found = session.scalars(
            XComModel.get_many(run_id=dag_run.run_id, key="run_url", dag_ids=DAG_ID, task_ids="submit_pipeline")
        ).first()
        return XComModel.deserialize_value(found) if found is not None else None


if __name__ == "__main__":  # scripts/azure-smoke.sh
    run = dag.test()
    print(f"run {run.run_id}: {run.state}; pipeline run: {studio_link(run) or 'none submitted'}")
    sys.exit(0 if str(run.state) == "success" else 1)
