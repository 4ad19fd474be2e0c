"""The workspace's pipeline service: the SDK's own in-memory ``DryRunServiceCaller``
(azureml/pipeline/core/_restclients/aeva/dryrun_service_caller.py), which stores modules, graphs and
pipeline runs as the real service's models, extended so that a submitted pipeline really runs.

What the extension models, and where each behaviour comes from:

- Creating a pipeline run creates its run-history record (a ``PipelineRun``, runType ``azureml.PipelineRun``)
  with the pipeline's description: ``PipelineRun(experiment, run_id)`` reads that record
  (azureml/pipeline/core/run.py), and its tags are set later by ``Experiment.submit`` with a PATCH.
- Statuses: the service's status codes, as ``_AevaPipelineRunProvider.get_status`` maps them
  (azureml/pipeline/core/_aeva_provider.py): '0' NotStarted, '1' Running, '2' Failed, '3' Finished,
  '4' Canceled; the run-history records carry the same words and the start and end times.
- A submitted run's step runs as the ParallelRunStep runtime does it (:class:`tests.azure.step_runner.StepRunner`),
  in a background thread, as a child run (``parentRunId``) of the pipeline run.
- ``cancel_pipeline_run_async`` cancels the running step (``PipelineRun.cancel``).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from azureml.pipeline.core._restclients.aeva.dryrun_service_caller import DryRunServiceCaller
from azureml.pipeline.core._restclients.aeva.models import PipelineRunStatus

from tests.azure.step_runner import StepRunner
from tests.azure.workspace_service import WorkspaceService

STATUS_CODES = {"NotStarted": "0", "Running": "1", "Failed": "2", "Finished": "3", "Canceled": "4"}


class FakePipelineService(DryRunServiceCaller):
    """The pipeline service of one fake workspace.

    :param workspace: the workspace's other services (run history, datasets, snapshots, storage).
    :param runner: runs a submitted step.
    """

    def __init__(self, workspace: WorkspaceService, runner: StepRunner) -> None:
        super().__init__()
        self.workspace = workspace
        self.runner = runner
        self.module_snapshots: dict[str, str | None] = {}
        self.threads: list[threading.Thread] = []
        self.submitted: list[dict[str, Any]] = []
        self._cancel: dict[str, threading.Event] = {}

    def create_module_async(self, creation_info: Any) -> Any:
        """Modules remember the snapshot of their source directory: ``ModuleCreationInfo.storage_id`` is the id
        ``_AevaModuleSnapshotUploader.upload`` got from ``SnapshotsClient.create_snapshot``
        (azureml/pipeline/core/_aeva_provider.py, ``_create_module_with_interface`` and ``creation_fn``)."""
        entity = super().create_module_async(creation_info)
        self.module_snapshots[entity.id] = creation_info.storage_id
        return entity

    def create_unsubmitted_pipeline_run_async(self, creation_info_with_graph: Any, experiment_name: str) -> Any:
        entity = super().create_unsubmitted_pipeline_run_async(creation_info_with_graph, experiment_name)
        entity.status = PipelineRunStatus(status_code=STATUS_CODES["NotStarted"])
        # the service records the run's experiment (read by _AevaPipelineRunProvider.get_pipeline_experiment_name);
        # a pipeline run's run-history record has runType and the azureml.runsource property that the SDK's run
        # type filter matches (TYPE_EQ_FORMAT_STR, azureml/_restclient/_odata/constants.py)
        entity.run_history_experiment_name = experiment_name
        self.workspace.add_run(
            experiment_name,
            entity.id,
            runType="azureml.PipelineRun",
            description=entity.description,
            properties={"azureml.runsource": "azureml.PipelineRun"},
        )
        return entity

    def submit_saved_pipeline_run_async(self, pipeline_run_id: str, parent_run_id: Any = None, **kwargs: Any) -> None:
        entity = self._pipeline_run_entities[pipeline_run_id]
        graph = self._graph_entities[entity.graph_id]
        experiment = graph.run_history_experiment_name
        self.submitted.append(
            {
                "pipeline_run_id": pipeline_run_id,
                "graph": graph.serialize(),
                "modules": {k: v.serialize() for k, v in self._module_entities.items()},
            }
        )
        cancel = self._cancel[pipeline_run_id] = threading.Event()
        thread = threading.Thread(
            target=self._execute,
            args=(pipeline_run_id, experiment, graph, cancel),
            name=f"fake-pipeline-{pipeline_run_id[:8]}",
            daemon=True,
        )
        self.threads.append(thread)
        thread.start()

    def _set_status(self, run_id: str, status: str) -> None:
        entity = self._pipeline_run_entities[run_id]
        # the service's codes for the five statuses the SDK converts, the status's own name for any other: "The
        # backend is switching from returning an int status code to a string status code", and the SDK returns a
        # code it does not convert as it is (_AevaPipelineRunProvider.get_status, pipeline/core/_aeva_provider.py)
        entity.status = PipelineRunStatus(status_code=STATUS_CODES.get(status, status))
        self.workspace.set_run_status(run_id, status)

    def report_status(self, run_id: str, status: str) -> None:
        """The service reports another status for a pipeline run, one of run history's (RunStatus.list(),
        azureml/_restclient/constants.py), e.g. NotResponding while its nodes do not answer.

        :param run_id: the pipeline run.
        :param status: the status it reports now.
        """
        from azureml._restclient.constants import RunStatus

        if status not in RunStatus.list():
            raise ValueError(f"{status!r} is no run status of azureml-core's RunStatus")
        self._set_status(run_id, status)

    def _execute(self, pipeline_run_id: str, experiment: str, graph: Any, cancel: threading.Event) -> None:
        self._set_status(pipeline_run_id, "Running")
        final = "Finished"
        for node in graph.module_nodes:
            step_run_id = str(uuid.uuid4())
            # a step run's tags name its node and pipeline run (StepRun._from_dto reads them, pipeline/core/run.py)
            self.workspace.add_run(
                experiment,
                step_run_id,
                parentRunId=pipeline_run_id,
                runType="azureml.StepRun",
                tags={"azureml.nodeid": node.id, "azureml.pipeline": pipeline_run_id},
            )
            self.workspace.set_run_status(step_run_id, "Running")
            module = self._module_entities[node.module_id]
            try:
                status = self.runner.run(
                    node=node.serialize(),
                    module=module.serialize(),
                    snapshot_id=self.module_snapshots.get(node.module_id),
                    dataset_nodes=[d.serialize() for d in graph.dataset_nodes or []],
                    step_run_id=step_run_id,
                    cancel=cancel,
                )
            except Exception as exc:  # a broken step set-up fails the step, like the service
                self.workspace.upload_run_file(step_run_id, "logs/job_error.txt", f"{type(exc).__name__}: {exc}\n")
                status = "Failed"
            self.workspace.set_run_status(step_run_id, status)
            if status != "Finished":
                final = status
                break
        self._set_status(pipeline_run_id, final)

    def get_pipeline_run_async(self, pipeline_run_id: str) -> Any:
        """The stored entity, status as it is (the parent class advances it on every read, a toy rule)."""
        return self._pipeline_run_entities[pipeline_run_id]

    def cancel_pipeline_run_async(self, pipeline_run_id: str) -> None:
        if pipeline_run_id in self._cancel:
            self._cancel[pipeline_run_id].set()

    def cancel_all(self) -> None:
        """Cancel every run still going (the fake's own stop, not a service call)."""
        for event in self._cancel.values():
            event.set()

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Wait until every submitted run has ended (tests that leave runs running call it before stopping)."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
