"""Runs a submitted v2 pipeline job's parallel node the way Azure ML's runtime does, with the local engine as the
parallel runtime: on this machine, with the node's own code asset, arguments, environment variables, input and
outputs, as the job PUT defined them.

What it reproduces, and from where:

- The node: the pipeline job's only node of type ``parallel``; its settings are the node's, else its component's
  (a node's fields override its component's: azure-ai-ml sends both, ``Parallel._to_rest_object`` and the
  anonymous component's ``componentSpec``).
- Settings, as Microsoft's parallel-job documentation names them
  (https://learn.microsoft.com/azure/machine-learning/how-to-use-parallel-job-in-pipeline, "Consider automation
  settings"): ``resources.instance_count`` nodes, ``max_concurrency_per_instance`` processes per node (unset: one
  per core on a CPU compute), ``mini_batch_size`` files per ``run()``, ``mini_batch_error_threshold`` failed
  mini-batches tolerated, ``retry_settings.timeout`` per ``run()``, ``retry_settings.max_retries`` *retries* of a
  failed mini-batch (so ``max_retries + 1`` tries); the failed items tolerated are the program arguments
  ``--error_threshold`` (default -1: azure-ai-ml's ``parallel_run_function`` reference, "allowed failed count
  totally, default is -1") and ``--allowed_failed_percent``, which the documentation defines only as
  program arguments: a node's ``error_threshold`` attribute is not read, since no source says what the service
  does with it. ``task.append_row_to`` names the
  output the rows go to (unset: summary_only).
- Arguments: ``task.program_arguments`` split into words as Microsoft's job control script that launches the
  parallel runtime does (context_managers.py, ``ParallelRunBackend.__enter__``: ``shlex.split`` of the command line,
  then ``os.path.expandvars`` on every word), ``${{inputs.<name>}}`` and ``${{outputs.<name>}}`` replaced by the
  mount paths (the service fills them in before); they reach the entry script, which reads its own with
  ``parse_known_args``. The runtime's own driver arguments are not modelled (the v2 driver is not public).
- Input: the pipeline's ``input_files`` is a data asset (``.../data/<name>/versions/<v>``) whose ``dataUri`` is a
  datastore folder, read-only mounted: here downloaded from Azurite into a folder that plays the mount. A table
  (``mltable``, ``direct``) is downloaded the same way, and the local engine reads it as the runtime does, cut by
  ``partition_keys`` or by ``mini_batch_size`` in bytes (:meth:`JobRunner._table_settings`). A
  missing or empty folder fails the step before the runtime starts, with the error recorded on the step's run
  (run history's ``error``), as a mount that cannot resolve its path does.
- Outputs: each ``uri_folder``/``uri_file`` output with a ``uri`` on a datastore is a local folder or file that
  plays the read-write mount (a folder exists, empty, from the start); what is in it at the end is uploaded to
  its path. Two outputs of which one lies inside the other are refused when the job is created
  (``MLService.put_job``): no source says what such mounts do.
- The step is a child run of the pipeline job (``parentRunId``; run history's children are a pipeline's step
  jobs), its runtime logs (``logs/job_result.txt``, ``logs/job_error.txt``, ``logs/user/...``) its files.
- Statuses: the pipeline job and its step go NotStarted -> Running -> Completed, Failed or Canceled.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from azureml_parallel_r.engine.job import JobSpec
from azureml_parallel_r.engine.predefined_arguments import apply_predefined_arguments
from azureml_parallel_r.run_settings import ParallelRunSettings
from tests.azure.ml_service import MLService, arm_id_path, blob_path, datastore_of, datastore_path
from tests.azure.runtime_io import StepFailed, download_prefix, mount_folder, run_engine, upload_folder, upload_run_logs
from tests.azure.storage_roles import COMPUTE_IDENTITY, StorageRoles
from tests.azure.workspace import FakeDatastore
from tests.azure.workspace_service import WorkspaceService

ENGINE_STATUS = {"Finished": "Completed", "Failed": "Failed", "Canceled": "Canceled"}


class JobRunner:
    """Runs jobs of the fake workspace under ``workdir``.

    :param service: the workspace's v2 resources (jobs, components, code, data).
    :param workspace: run history and storage.
    :param workdir: where each step's code, mounts and logs go.
    """

    def __init__(self, service: MLService, workspace: WorkspaceService, workdir: Path) -> None:
        self.service = service
        self.workspace = workspace
        self.workdir = workdir
        self.processes_per_node = 2  # "number of cores" of this machine's fake compute
        self.started: list[dict[str, Any]] = []
        self.roles = StorageRoles()  # the fake replaces it with the workspace's
        self.threads: list[threading.Thread] = []
        self._cancel: dict[str, threading.Event] = {}

    def start(self, name: str) -> None:
        """Run job ``name`` in the background (the service has just created it)."""
        cancel = self._cancel[name] = threading.Event()
        thread = threading.Thread(target=self._execute, args=(name, cancel), name=f"fake-job-{name[:12]}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def cancel(self, name: str) -> None:
        if name in self._cancel:
            self._cancel[name].set()

    def cancel_all(self) -> None:
        for event in self._cancel.values():
            event.set()

    def wait_idle(self, timeout: float = 120.0) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def _execute(self, name: str, cancel: threading.Event) -> None:
        job = self.service.jobs[name]["properties"]
        self.service.set_status(name, "Running")
        final = "Completed"
        for node_name, node in (job.get("jobs") or {}).items():
            step_id = str(uuid.uuid4())
            self.workspace.add_run(
                job["experimentName"],
                step_id,
                parentRunId=name,
                runType="azureml.ParallelRun",
                displayName=node_name,
                tags={"azureml.nodeid": node_name},
            )
            self.workspace.set_run_status(step_id, "Running")
            try:
                status = self._run_node(job, node, step_id, cancel, self.service.submitters.get(name, ""))
            except StepFailed as exc:
                self.workspace.runs[step_id]["dto"]["error"] = {"error": {"code": "UserError", "message": str(exc)}}
                status = "Failed"
            self.workspace.set_run_status(step_id, status)
            if status != "Completed":
                final = status
                break
        self.service.set_status(name, final)

    def _run_node(
        self, job: dict[str, Any], node: dict[str, Any], step_id: str, cancel: threading.Event, submitter: str
    ) -> str:
        work = self.workdir / step_id
        try:
            return self._run_node_in(job, node, step_id, cancel, work, submitter)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run_node_in(
        self,
        job: dict[str, Any],
        node: dict[str, Any],
        step_id: str,
        cancel: threading.Event,
        work: Path,
        submitter: str,
    ) -> str:
        component = self.service.components[arm_id_path(node["componentId"])]["properties"]["componentSpec"]
        spec = {**component, **{k: v for k, v in node.items() if v is not None}}
        task = {**component["task"], **(node.get("task") or {})}
        container, prefix = blob_path(self.service.codes[arm_id_path(task["code"])]["properties"]["codeUri"])
        download_prefix(self.workspace.blob_service().get_container_client(container), prefix, work / "code")
        bindings: dict[str, str] = {}  # "inputs.<name>" / "outputs.<name>" -> the local mount
        outputs: list[tuple[dict[str, Any], Path]] = []
        identity = self._data_identity(job, node, submitter)
        for input_name, binding in (spec.get("inputs") or {}).items():
            bindings[f"inputs.{input_name}"] = str(self._mount_input(job, binding, work / "mnt" / input_name, identity))
        for output_name, output in (node.get("outputs") or {}).items():
            self._check_access(datastore_of(output["uri"]), identity, write=True)
            local = work / "out" / output_name
            if output.get("job_output_type") == "uri_file":  # the mount is the file, in a folder of its own
                local = local / datastore_path(output["uri"])[1].rstrip("/").rsplit("/", 1)[-1]
                local.parent.mkdir(parents=True, exist_ok=True)
            else:  # a read-write mounted folder is there before the script starts: azure-ai-ml's Output reference
                # ("'rw_mount': Read-write mount the data", azure/ai/ml/entities/_inputs_outputs/output.py); a script
                # writes into ${{outputs.x}} without creating it (Azure/MachineLearningNotebooks#1891: "the
                # corresponding folder is mounted correctly and accessible in the training script")
                local.mkdir(parents=True, exist_ok=True)
            bindings[f"outputs.{output_name}"] = str(local)
            outputs.append((output, local))
        argv = [os.path.expandvars(_bind(word, bindings)) for word in shlex.split(task.get("program_arguments") or "")]
        rows = Path(bindings[_expression(task["append_row_to"])]) if task.get("append_row_to") else None
        settings = self._settings(spec, argv, rows)
        table = self._table_settings(job, spec)
        self.started.append(
            {
                "step_id": step_id,
                "argv": argv,
                "settings": settings.to_dict(),
                "outputs": {output["uri"]: str(local) for output, local in outputs},
            }
        )
        job_spec = JobSpec(
            run_id=step_id,
            input_dir=bindings[_expression(spec["input_data"])],
            output_dir=str(rows.parent if rows else work / "runtime-output"),  # where the runtime writes rows
            entry_script=task["entry_script"],
            source_dir=str(work / "code"),
            logs_dir=str(work / "logs"),
            entry_args=tuple(argv),
            settings=settings,
            **table,
        )
        status = ENGINE_STATUS[run_engine(job_spec, cancel)]
        for output, local in outputs:
            self._upload_output(output, local)
        upload_run_logs(self.workspace, work / "logs", step_id)
        return status

    def _settings(self, spec: dict[str, Any], argv: list[str], rows: Path | None) -> ParallelRunSettings:
        """The node's settings as the parallel runtime reads them (see the module); the predefined program arguments
        (``--error_threshold``, ``--allowed_failed_percent``) as the local engine applies them, which it does again
        when it runs (one reading of them, :mod:`azureml_parallel_r.engine.predefined_arguments`)."""
        retry = spec.get("retry_settings") or {}
        settings = ParallelRunSettings(
            mini_batch_size=int(spec.get("mini_batch_size") or 10),
            node_count=int((spec.get("resources") or {}).get("instance_count") or 1),
            process_count_per_node=int(spec.get("max_concurrency_per_instance") or self.processes_per_node),
            error_threshold=-1,  # azure-ai-ml's parallel_run_function reference: "default is -1"
            allowed_failed_count=int(spec.get("mini_batch_error_threshold", -1)),
            run_invocation_timeout=float(retry.get("timeout") or 60),
            run_max_try=int(retry.get("max_retries", 2)) + 1,  # retries after the first try
            file_timeout=None,
            output_action="append_row" if rows else "summary_only",
            append_row_file_name=rows.name if rows else "parallel_run_step.txt",
            environment_variables=dict(spec.get("environment_variables") or {}),
            # the parallel job YAML reference: logging_level, "default value is INFO"; the runtime passes it to the
            # entry script as --logging_level, as v1's driver does
            logging_level=str(spec.get("logging_level") or "INFO"),
        )
        return apply_predefined_arguments(settings, argv)[0]

    def _table_settings(self, job: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        """How the runtime cuts an ``mltable`` input (Microsoft's how-to-use-parallel-job-in-pipeline: tabular data is
        an ``mltable`` input in ``direct`` mode, split "by size (estimated physical size) or partition"): the node's
        ``partition_keys`` (a JSON list, as azure-ai-ml sends it: ``Parallel._to_rest_object``), else its
        ``mini_batch_size`` in bytes (azure-ai-ml turns ``10MB`` into bytes; 0 or unset: the runtime's default). A
        folder input has neither. The local engine then reads the mounted folder's MLTable as the runtime would."""
        binding = self._input_binding(
            job, (spec.get("inputs") or {}).get(_expression(spec["input_data"]).split(".")[-1])
        )
        if str(binding.get("jobInputType") or binding.get("job_input_type")) != "mltable":
            if spec.get("partition_keys"):
                self.service.wire.unrouted.append("partition_keys on a uri_folder input (not modelled)")
                raise StepFailed("partition_keys on a uri_folder input is not modelled by the fake")
            return {}
        keys = json.loads(spec["partition_keys"]) if isinstance(spec.get("partition_keys"), str) else None
        size = int(spec.get("mini_batch_size") or 0)
        return {
            "partition_keys": tuple(keys or spec.get("partition_keys") or ()),
            "table_mini_batch_size": str(size) if size > 0 else None,
        }

    def _data_identity(self, job: dict[str, Any], node: dict[str, Any], submitter: str) -> str:
        """Who reads and writes a credential-less datastore for this node: the identity it names (the step's wins
        over the pipeline's), else the compute's managed identity ("If the identity property is left unspecified and
        datastore doesn't have cached credentials, then compute managed identity becomes the fallback option",
        https://learn.microsoft.com/azure/machine-learning/how-to-identity-based-service-authentication). A user
        identity job acts as whoever submitted it (``submitter``, the application that created the job). An AML
        token, or any other identity, is not described for such a datastore: not modelled, which fails the test."""
        identity = node.get("identity") or job.get("identity") or {}  # a node's as azure-ai-ml writes it: snake_case
        kind = str(identity.get("identity_type") or "")
        if kind == "UserIdentity":
            return submitter
        if kind in ("", "Managed"):
            return str(identity.get("client_id") or COMPUTE_IDENTITY)
        self.service.wire.unrouted.append(f"a job with identity {kind} (not modelled)")
        raise StepFailed(f"a job identity of type {kind} is not modelled by the fake")

    def _check_access(self, store: FakeDatastore, identity: str, *, write: bool) -> None:
        """A credential-less datastore is reached with the job's identity, which needs the role (credential-based
        datastores are reached with their own credential, whatever the job's identity)."""
        if store.credential_less and not self.roles.allows(identity, write):
            raise StepFailed(
                f"{identity or 'the job identity'} may not {'write' if write else 'read'} datastore {store.name}: "
                "AuthorizationPermissionMismatch (This request is not authorized to perform this operation using "
                "this permission.)"  # Azure Storage's refusal (tests/azure/storage_roles.py); the wording around it is
                # the fake's own
            )

    def _mount_input(self, job: dict[str, Any], binding: dict[str, Any], target: Path, identity: str) -> Path:
        """The node input bound to the pipeline's input, a data asset, mounted; NotFound for a missing or empty
        folder."""
        binding = self._input_binding(job, binding)
        if str(binding.get("jobInputType")) == "mltable" and str(binding.get("mode")) != "Direct":
            # the documented binding of a table is direct (how-to-use-parallel-job-in-pipeline); no source says
            # what a parallel job does with an mltable input mounted
            self.service.wire.unrouted.append(f"an mltable input in mode {binding.get('mode')} (not modelled)")
            raise StepFailed(f"an mltable input in mode {binding.get('mode')} is not modelled by the fake")
        uri = str(binding.get("uri") or "")
        data_path = arm_id_path(uri) if "/data/" in uri else None
        if data_path:
            _, name, _, version = data_path.split("/")
            uri = self.service.data[name][version]["properties"]["dataUri"]
        container, prefix = datastore_path(uri)
        self._check_access(datastore_of(uri), identity, write=False)
        client = self.workspace.blob_service().get_container_client(container)
        return mount_folder(
            client,
            prefix,
            target,
            f"ScriptExecution.StreamAccess.NotFound: the path {prefix} of {uri} "
            "was not found or holds no files (mounting the input failed)",
        )

    @staticmethod
    def _input_binding(job: dict[str, Any], binding: dict[str, Any] | None) -> dict[str, Any]:
        """A node input as bound: the pipeline's input it names (``${{parent.inputs.x}}``), else itself."""
        binding = binding or {}
        value = str(binding.get("value") or binding.get("uri") or "")
        if value.startswith("${{parent.inputs."):
            return job["inputs"][_expression(value).removeprefix("parent.inputs.")]
        return binding

    def _upload_output(self, output: dict[str, Any], local: Path) -> None:
        container, path = datastore_path(output["uri"])
        client = self.workspace.blob_service().get_container_client(container)
        if output.get("job_output_type") == "uri_file":
            if local.is_file():
                client.upload_blob(path.rstrip("/"), local.read_bytes(), overwrite=True)
            return
        if local.is_dir():
            upload_folder(client, local, path)


def _expression(text: str) -> str:
    """``inputs.x`` of a binding expression ``${{inputs.x}}``."""
    return text.strip().removeprefix("${{").removesuffix("}}").strip()


def _bind(word: str, bindings: dict[str, str]) -> str:
    for key, value in bindings.items():
        word = word.replace(f"${{{{{key}}}}}", value)
    return word
