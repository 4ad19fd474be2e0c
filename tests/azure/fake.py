"""The fake Azure ML workspace as one object: Azurite for storage, the wire under the SDKs, the workspace's
HTTP services for both SDKs (v1: :mod:`tests.azure.workspace_service` and the pipeline service; v2:
:mod:`tests.azure.ml_service`, with :mod:`tests.azure.job_runner` running its jobs), for tests and
``scripts/azure-sim.sh``.

The one seam that is not HTTP: ``_AevaWorkflowProvider.create_service_caller`` (azureml/pipeline/core/
_aeva_provider.py), which every Pipeline and PipelineRun uses to get its pipeline-service client, returns
:class:`~tests.azure.pipeline_service.FakePipelineService` (the SDK's own DryRunServiceCaller, extended).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tests.azure import workspace as ws
from tests.azure.azurite import Azurite
from tests.azure.job_runner import JobRunner
from tests.azure.ml_service import ARTIFACT_CONTAINER, MLService
from tests.azure.pipeline_service import FakePipelineService
from tests.azure.step_runner import StepRunner
from tests.azure.wire import Wire, installed
from tests.azure.workspace_service import WorkspaceService

CLIENT_ID = "00000000-0000-0000-0000-0000000000cc"
CLIENT_SECRET = "fake-client-secret-never-logged"


class FakeAzureML:
    """Start with ``with FakeAzureML() as azure:``; everything stops at the end of the block.

    :param workdir: where steps run (default: a new temporary folder).
    """

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="apr-fake-azureml-"))
        self.azurite: Azurite | None = None

    def __enter__(self) -> FakeAzureML:
        from azureml.pipeline.core._aeva_provider import _AevaWorkflowProvider

        self.azurite = Azurite()
        self.wire = Wire(self.azurite.url)
        self.service = WorkspaceService(self.wire, self.azurite.url)
        self.service.install()
        for container in (ws.CONTAINER, ARTIFACT_CONTAINER):  # a workspace's storage has both from the start
            self.service.blob_service().create_container(container)
        self.runner = StepRunner(self.service, self.workdir / "steps")
        self.pipelines = FakePipelineService(self.service, self.runner)
        self.ml = MLService(self.wire, self.service)
        self.jobs = self.ml.runner = JobRunner(self.ml, self.service, self.workdir / "jobs")
        self._saved_caller = _AevaWorkflowProvider.__dict__["create_service_caller"]
        pipelines = self.pipelines
        _AevaWorkflowProvider.create_service_caller = staticmethod(  # type: ignore[method-assign]
            lambda workspace, experiment_name, service_endpoint=None: pipelines
        )
        # the SDK caches discovery and snapshots under ~/.azureml: give it a home of its own. The discovery cache's
        # file is a default argument evaluated when the SDK is imported (CachedServiceDiscovery.__init__,
        # azureml/_base_sdk_common/service_discovery.py), so HOME alone does not move it.
        self._saved_home = os.environ.get("HOME")
        os.environ["HOME"] = str(self.workdir / "home")
        from azureml._base_sdk_common.service_discovery import CachedServiceDiscovery

        self._saved_discovery_defaults = CachedServiceDiscovery.__init__.__defaults__
        CachedServiceDiscovery.__init__.__defaults__ = (str(self.workdir / "home" / ".azureml" / ".discovery"),)
        self._wire = installed(self.wire)
        self._wire.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        from azureml.pipeline.core._aeva_provider import _AevaWorkflowProvider

        try:
            self.pipelines.cancel_all()
            self.jobs.cancel_all()
            self.pipelines.wait_idle()
            self.jobs.wait_idle()
        finally:
            self._wire.__exit__(None, None, None)
            _AevaWorkflowProvider.create_service_caller = self._saved_caller  # type: ignore[method-assign]
            from azureml._base_sdk_common.service_discovery import CachedServiceDiscovery

            CachedServiceDiscovery.__init__.__defaults__ = self._saved_discovery_defaults
            if self._saved_home is None:
                os.environ.pop("HOME", None)
            else:
                os.environ["HOME"] = self._saved_home
            if self.azurite is not None:
                self.azurite.stop()

    # -- what tests and the simulation use ----------------------------------------------------------------

    def connection_value(self, engine: str = "azureml", **extra: Any) -> str:
        """AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT for this workspace, with a service principal (the README's form).

        :param engine: ``azureml`` (SDK v1) or ``azureml_v2``; the rest of the connection is the same.
        """
        extras = {"engine": engine, "subscription_id": ws.SUBSCRIPTION, "resource_group": ws.RESOURCE_GROUP,
                  "workspace_name": ws.WORKSPACE, "tenant_id": ws.TENANT, "compute_target": "r-cluster",
                  "retry_backoff": 0.01, **extra}  # fmt: skip
        return json.dumps({"conn_type": "generic", "login": CLIENT_ID, "password": CLIENT_SECRET, "extra": extras})

    def upload_inputs(self, folder: Path, datastore_path: str) -> list[str]:
        """Put every file below ``folder`` under ``datastore_path`` in the datastore's container."""
        container = self.service.blob_service().get_container_client(ws.CONTAINER)
        names = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = f"{datastore_path.rstrip('/')}/{path.relative_to(folder).as_posix()}"
            container.upload_blob(name, path.read_bytes(), overwrite=True)
            names.append(name)
        return names

    def blob_names(self, prefix: str) -> list[str]:
        container = self.service.blob_service().get_container_client(ws.CONTAINER)
        return sorted(b.name for b in container.list_blobs(name_starts_with=prefix))

    def read_blob(self, name: str) -> bytes:
        container = self.service.blob_service().get_container_client(ws.CONTAINER)
        return container.get_blob_client(name).download_blob().readall()
