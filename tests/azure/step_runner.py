"""Runs a submitted ParallelRunStep the way Azure ML's runtime does, with the local engine as the runtime:
on this machine, with the step's own snapshot, argv, environment, input and output.

What it reproduces, and from where:

- Source: the files of the module's snapshot, downloaded from storage (the module was created with the
  snapshot id its source directory was uploaded as; SnapshotsClient.create_snapshot).
- The driver's argv: the module's structured ``Arguments`` as the SDK built them
  (azureml/pipeline/core/_parallel_run_step_base.py, ``_get_parallel_run_step_argument_list``): the runtime
  flags (``--mini_batch_size``, ``--error_threshold``, ``--run_invocation_timeout``, ...), ``--output
  DatasetOutputConfig:<name>``, the user's arguments and ``--input_fds_0 <input name>``. The whole argv reaches
  the entry script, which reads its own flags with ``parse_known_args``.
- Input: a TabularDataset input is direct (``--input_ds_0``; "Please ensure input dataset consumption mode is
  direct", _ParallelRunStepBase): its folder is downloaded, its registered definition (RSLex YAML, in the MLTable
  format) written there as its MLTable file, and the local engine cuts it by the driver's ``--partition_keys`` (a
  JSON list) or ``--mini_batch_size`` (bytes). A FileDataset input of a ParallelRunStep is mounted; the job learns the
  mount only through
  ``AZUREML_DATASET_ENVIRONMENT_VARS=<name>:mount`` and ``os.environ[<name>]`` (azureml/core/run.py,
  ``InputDatasets._load_input_datasets``). Here the dataset's folder is downloaded from Azurite into a
  temporary folder that plays the mount; ``AZUREML_DATAREFERENCE_<name>`` is not set (that is for
  DataReference and PipelineData inputs). A missing or empty folder fails the step with NotFound, as the
  dataflow does when it resolves the mount.
- Environment variables: the runconfig's ``environmentVariables`` (ParallelRunConfig.environment_variables,
  ``_generate_runconfig``).
- Output: ``AZUREML_BI_OUTPUT_PATH`` is a local folder that plays the write mount; what is in it at the end
  is uploaded to the destination's path on the datastore with ``{run-id}`` replaced by the step run's id
  (azureml/data/output_dataset_config.py: "{run-id}" is the id of the run that produces the output). The
  runtime writes the append_row file under the lower-cased ``append_row_file_name``.
- Logs: the runtime's job logs (``logs/job_result.txt``, ``logs/job_error.txt``, ``logs/user/...``) become the
  step run's files (artifacts), where ``StepRun.get_file_names`` and ``download_file`` find them.
- Statuses: Finished, Failed or Canceled, from the job's end.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from azureml_parallel_r.engine.job import JobSpec
from azureml_parallel_r.run_settings import ParallelRunSettings
from tests.azure.runtime_io import StepFailed, mount_folder, run_engine, upload_folder, upload_run_logs
from tests.azure.storage_roles import COMPUTE_IDENTITY, StorageRoles
from tests.azure.workspace import DATASTORES, FakeDatastore
from tests.azure.workspace_service import WorkspaceService

DRIVER_FLAGS = {
    "--mini_batch_size": ("mini_batch_size", int),
    "--error_threshold": ("error_threshold", int),
    "--run_invocation_timeout": ("run_invocation_timeout", float),
    "--run_max_try": ("run_max_try", int),
    "--allowed_failed_count": ("allowed_failed_count", int),
    "--allowed_failed_percent": ("allowed_failed_percent", float),
    "--process_count_per_node": ("process_count_per_node", int),
    "--output_action": ("output_action", str),
    "--append_row_file_name": ("append_row_file_name", str),
    "--logging_level": ("logging_level", str),
}
PATTERN = re.compile(r"/datastores/(?P<datastore>[^/]+)/paths/(?P<path>.*?)/?(\*\*)?$")
# a TabularDataset's path: the folder, then the glob below it (the first part holding a wildcard)
TABLE_PATTERN = re.compile(r"/datastores/(?P<datastore>[^/]+)/paths/(?P<path>[^*?]*?)/(?P<glob>[^/]*[*?].*)$")


class StepRunner:
    """Runs steps under ``workdir`` against the workspace's storage.

    :param workspace: the fake workspace (its snapshots, datasets and Azurite account).
    :param workdir: where each step's source, mount, output and logs folders go.
    """

    def __init__(self, workspace: WorkspaceService, workdir: Path) -> None:
        self.workspace = workspace
        self.workdir = workdir
        self.processes_per_node = 2
        self.started: list[dict[str, Any]] = []
        self.roles = StorageRoles()  # the fake replaces it with the workspace's

    def run(
        self,
        *,
        node: dict[str, Any],
        module: dict[str, Any],
        snapshot_id: str | None,
        dataset_nodes: list[dict[str, Any]],
        step_run_id: str,
        cancel: threading.Event,
    ) -> str:
        work = self.workdir / step_run_id
        argv = [arg["Value"] for arg in module["StructuredInterface"]["Arguments"]]
        driver = _driver_flags(argv)
        source = self._download_snapshot(snapshot_id, work / "source")
        tabular = "--input_ds_0" in driver  # a TabularDataset input (direct), else a FileDataset's (mounted)
        input_name = driver["--input_ds_0" if tabular else "--input_fds_0"]
        mount = self._mount_input(dataset_nodes, work / "mnt" / input_name, tabular=tabular)
        runconfig = json.loads(node["Runconfig"])
        output_setting = node["ModuleOutputSettings"][0]
        output_store = DATASTORES[output_setting["DataStoreName"]]
        self._check_access(output_store, write=True)
        output_container = output_store.container
        destination = output_setting["DatasetOutputOptions"]["PathOnDatastore"].replace("{run-id}", step_run_id)
        table: dict[str, Any] = {}
        if tabular:  # the driver's --mini_batch_size is the table's, in bytes; --partition_keys a JSON list
            table = {
                "partition_keys": tuple(json.loads(driver.get("--partition_keys") or "[]")),
                "table_mini_batch_size": driver.pop("--mini_batch_size", None),
            }
        settings = {name: kind(driver[flag]) for flag, (name, kind) in DRIVER_FLAGS.items() if flag in driver}
        settings.setdefault("process_count_per_node", self.processes_per_node)
        environment = {
            **runconfig.get("environmentVariables", {}),
            "AZUREML_DATASET_ENVIRONMENT_VARS": f"{input_name}:{'direct' if tabular else 'mount'}",
            **({} if tabular else {input_name: str(mount)}),
        }
        spec = JobSpec(
            run_id=step_run_id,
            input_dir=str(mount),
            output_dir=str(work / "output"),
            entry_script=driver["--scoring_module_name"],
            source_dir=str(source),
            logs_dir=str(work / "logs"),
            entry_args=tuple(argv),
            settings=ParallelRunSettings(**settings, file_timeout=None, environment_variables=environment),
            **table,
        )
        self.started.append(
            {
                "step_run_id": step_run_id,
                "argv": argv,
                "environment": environment,
                "destination": destination,
                "settings": settings,
            }
        )
        status = run_engine(spec, cancel)
        upload_folder(
            self.workspace.blob_service().get_container_client(output_container), work / "output", destination
        )
        upload_run_logs(self.workspace, work / "logs", step_run_id)
        shutil.rmtree(work, ignore_errors=True)
        return status

    def _download_snapshot(self, snapshot_id: str | None, target: Path) -> Path:
        snapshot = (
            self.workspace.snapshots.get(snapshot_id or "")
            or self.workspace.snapshots[self.workspace.latest_snapshot or ""]
        )
        service = self.workspace.blob_service()
        for name, uri in snapshot["files"].items():
            container, _, blob = unquote(urlsplit(uri).path).lstrip("/").partition("/")
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(service.get_blob_client(container, blob).download_blob().readall())
        return target

    def _mount_input(self, dataset_nodes: list[dict[str, Any]], target: Path, *, tabular: bool = False) -> Path:
        """Download the input dataset's folder; a missing or empty one raises NotFound like the dataflow. A
        TabularDataset's folder gets its registered definition as its MLTable file: the dataset's RSLex YAML, which
        the SDK writes in the MLTable format (``type: mltable``, ``paths``, ``transformations``), its paths made
        relative to the folder; the local engine then reads the table as that definition says, as the runtime reads
        the dataset, whatever MLTable file the folder itself holds."""
        (dataset_node,) = dataset_nodes
        reference = dataset_node["DataSetDefinition"]["Value"]["DataSetReference"]
        yaml = self.workspace.dataset_rslex_yaml(reference["Id"], reference.get("Version"))
        pattern = re.search(r'pattern: "(?P<p>[^"]+)"', yaml)["p"]
        match = PATTERN.search(pattern) if not tabular else TABLE_PATTERN.search(pattern)
        prefix = match["path"].rstrip("/") + "/"
        self._check_access(DATASTORES[match["datastore"]], write=False)
        container = self.workspace.blob_service().get_container_client(DATASTORES[match["datastore"]].container)
        mount = mount_folder(
            container,
            prefix,
            target,
            f"StreamError(NotFound): the path {match['path']} of datastore "
            f"{match['datastore']} was not found or holds no files (mounting the input dataset failed)",
        )
        if tabular:
            (mount / "MLTable").write_text(yaml.replace(pattern, f"./{match['glob']}"), encoding="utf-8")
        return mount

    def _check_access(self, store: FakeDatastore, *, write: bool) -> None:
        """A v1 job reaches a credential-less datastore with the compute's managed identity ("always uses compute
        MSI" for SDK v1 jobs: https://learn.microsoft.com/azure/machine-learning/v1/how-to-identity-based-data-access),
        which needs the role."""
        if store.credential_less and not self.roles.allows(COMPUTE_IDENTITY, write):
            raise StepFailed(
                f"{COMPUTE_IDENTITY} may not {'write' if write else 'read'} datastore {store.name}: "
                "AuthorizationPermissionMismatch (This request is not authorized to perform this operation using this "
                "permission.)"
            )


def _driver_flags(argv: list[str]) -> dict[str, str]:
    """The driver's own ``--name value`` pairs (the first occurrence of each)."""
    flags: dict[str, str] = {}
    for index, item in enumerate(argv[:-1]):
        if item.startswith("--") and "_" in item and item not in flags:
            flags[item] = argv[index + 1]
    return flags
