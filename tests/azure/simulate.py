"""Run the whole r_parallel_batch DAG on an Azure ML engine against the fake workspace and Azurite, and show
what a real workspace would have received.

    python -m tests.azure.simulate [--engine azureml|azureml_v2] [YYYY-MM-DD]   (scripts/azure-sim.sh runs this)

Writes sample inputs for the date into the fake datastore, points the ``azureml_parallel_r_default`` connection at the
fake workspace (a service principal, as in docs/workspace.md; ``engine`` is the only field that differs between SDK v1
and v2), runs the DAG with ``dag.test()`` in this process (the fake is process-wide: the SDKs' HTTP goes to it,
storage to Azurite), prints the task states and the validation, and writes
``test-artifacts/azure-sim/submission.json`` (v1) or ``submission-v2.json`` (v2): for v1 the ParallelRunStep's
module parameters, the driver's full argv, the output destination, the environment variables, the run's tags and
description; for v2 the pipeline job's PUT body, its parallel node, the code asset's files, the environment's
build context and the job's tags. Exit status 0 when the run succeeded and its validation passed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import date as Date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "azure-sim"


def submission_record(azure: Any) -> dict[str, Any]:
    """What the SDK sent for the (first) pipeline run, in plain JSON."""
    (submitted,) = azure.pipelines.submitted
    (node,) = submitted["graph"]["ModuleNodes"]
    module = submitted["modules"][node["ModuleId"]]
    run = azure.service.runs[submitted["pipeline_run_id"]]["dto"]
    runconfig = json.loads(node["Runconfig"])
    metadata = {p["Name"]: p.get("Value") for p in node["ModuleMetadataParameters"]}
    return {
        "pipeline_run_id": submitted["pipeline_run_id"],
        "step_type": module.get("StepType"),
        "module_parameters": {p["Name"]: p["Value"] for p in node["ModuleParameters"] if p.get("Value") is not None},
        "batch_inferencing_metadata": json.loads(metadata.get("BatchInferencingMetaData") or "{}"),
        "driver_argv": [arg["Value"] for arg in module["StructuredInterface"]["Arguments"]],
        "inputs": module["StructuredInterface"]["Inputs"],
        "output_destination": {
            "datastore": node["ModuleOutputSettings"][0]["DataStoreName"],
            "path": node["ModuleOutputSettings"][0]["DatasetOutputOptions"]["PathOnDatastore"],
            "mode": node["ModuleOutputSettings"][0]["DataStoreMode"],
        },
        "environment_variables": runconfig.get("environmentVariables", {}),
        "environment": {
            "name": runconfig["environment"]["name"],
            "docker_base_dockerfile": runconfig["environment"]["docker"]["baseDockerfile"],
        },
        "snapshot_files": sorted(next(iter(azure.service.snapshots.values()))["files"]),
        "tags": run.get("tags", {}),
        "description": run.get("description"),
    }


def submission_record_v2(azure: Any) -> dict[str, Any]:
    """What azure-ai-ml sent for the (first) pipeline job, in plain JSON."""
    from tests.azure.ml_service import arm_id_path, blob_path

    put = azure.ml.job_puts[0]
    (node,) = put["properties"]["jobs"].values()
    task = node["task"]
    container, prefix = blob_path(azure.ml.codes[arm_id_path(task["code"])]["properties"]["codeUri"])
    code = azure.service.blob_service().get_container_client(container).list_blobs(name_starts_with=prefix + "/")
    environment = azure.ml.environments.get(arm_id_path(str(task.get("environment", ""))), {})
    return {
        "job_name": next(iter(azure.ml.jobs)),
        "job_put": put,
        "parallel_node": node,
        "code_files": sorted(blob.name[len(prefix) + 1 :] for blob in code),
        "environment": environment.get("properties", {}),
        "tags": put["properties"].get("tags", {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.azure.simulate")
    parser.add_argument("--engine", choices=("azureml", "azureml_v2"), default="azureml")
    parser.add_argument("date", nargs="?", default=Date.today().isoformat())
    options = parser.parse_args(argv)
    day, v2 = options.date, options.engine == "azureml_v2"
    sys.path.insert(0, str(REPO / "plugins"))
    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    from azureml_parallel_r.examples.samples import make_sample_inputs
    from azureml_parallel_r.validation_report import ValidationReport
    from tests.azure.fake import FakeAzureML

    with tempfile.TemporaryDirectory(prefix="apr-azure-sim-") as folder, FakeAzureML(Path(folder) / "fake") as azure:
        work = Path(folder)
        os.environ["AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT"] = azure.connection_value(engine=options.engine)
        make_sample_inputs(str(work / "inputs"), images=24)
        uploaded = azure.upload_inputs(work / "inputs", f"r-script-inputs/{day}")
        print(
            f"fake workspace ws-parallel-r ({options.engine}): {len(uploaded)} inputs in Azurite under "
            f"r-script-inputs/{day}"
        )
        dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("r_parallel_batch")
        for task in dag.tasks:
            task.retries = 0
        dag_run = dag.test(logical_date=pendulum.parse(day))
        print(f"DAG run {dag_run.run_id}: {dag_run.state}")
        if not (azure.ml.job_puts if v2 else azure.pipelines.submitted):
            print("no pipeline was submitted (see the task logs above)")
            return 1
        record = submission_record_v2(azure) if v2 else submission_record(azure)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        target = ARTIFACTS / ("submission-v2.json" if v2 else "submission.json")
        target.write_text(json.dumps(record, indent=1))
        output = record["tags"].get("output_path", "")
        print(
            f"pipeline {'job' if v2 else 'run'} {record['job_name' if v2 else 'pipeline_run_id']} -> datastore "
            f"path {output}"
        )
        print(f"what the SDK sent: {target}")
        names = azure.blob_names(f"{output}/validation.json")
        if not names:
            print("validation.json was not written (the run did not get that far)")
            return 1
        report = ValidationReport.from_dict(json.loads(azure.read_blob(names[0])))
        print(report.summary())
        if azure.wire.unrouted:
            print("the SDK sent requests the fake does not model:", *azure.wire.unrouted, sep="\n  ")
            return 1
        return 0 if str(dag_run.state) == "success" and report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
