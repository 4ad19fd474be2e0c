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
from tests.azure.ml_service import MLService
from tests.azure.pipeline_service import FakePipelineService
from tests.azure.step_runner import StepRunner
from tests.azure.storage_roles import StorageRoles
from tests.azure.wire import Wire, installed
from tests.azure.workspace_service import WorkspaceService

CLIENT_ID, CLIENT_SECRET = ws.CLIENT_ID, ws.CLIENT_SECRET


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
        self.wire = Wire(self.azurite.url, str(self.azurite.ca))
        self.roles = StorageRoles()
        self.wire.authorize_storage = self.roles.authorize
        self.service = WorkspaceService(self.wire, self.azurite.url)
        self.service.install()
        for store in ws.DATASTORES.values():  # the workspace's containers, and those its other datastores name
            self.service.blob_service().create_container(store.container)
        self.runner = StepRunner(self.service, self.workdir / "steps")
        self.runner.roles = self.roles
        self.pipelines = FakePipelineService(self.service, self.runner)
        self.ml = MLService(self.wire, self.service)
        self.jobs = self.ml.runner = JobRunner(self.ml, self.service, self.workdir / "jobs")
        self.jobs.roles = self.roles
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
        """AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT for this workspace, with a service principal (as docs/workspace.md).

        :param engine: ``azureml`` (SDK v1) or ``azureml_v2``; the rest of the connection is the same.
        """
        extras = {
            "engine": engine,
            "subscription_id": ws.SUBSCRIPTION,
            "resource_group": ws.RESOURCE_GROUP,
            "workspace_name": ws.WORKSPACE,
            "tenant_id": ws.TENANT,
            "compute_target": "r-cluster",
            "retry_backoff": 0.01,
            **extra,
        }
        return json.dumps({"conn_type": "generic", "login": CLIENT_ID, "password": CLIENT_SECRET, "extra": extras})

    def upload_inputs(self, folder: Path, datastore_path: str, datastore: str = ws.DATASTORE) -> list[str]:
        """Put every file below ``folder`` under ``datastore_path`` in a datastore's container; on an ADLS Gen2
        datastore every folder on the way is a directory object too (:class:`tests.azure.workspace.FakeDatastore`).

        :param folder: the files.
        :param datastore_path: where they go.
        :param datastore: the datastore (default: the workspace's default).
        """
        store = ws.DATASTORES[datastore]
        container = self.service.blob_service().get_container_client(store.container)
        names = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = f"{datastore_path.rstrip('/')}/{path.relative_to(folder).as_posix()}"
            container.upload_blob(name, path.read_bytes(), overwrite=True)
            names.append(name)
        ws.add_directories(container, names)
        return names

    def container(self, datastore: str = ws.DATASTORE) -> Any:
        """A datastore's container, with the account key (the fake's own access)."""
        return self.service.blob_service().get_container_client(ws.DATASTORES[datastore].container)

    def blob_names(self, prefix: str, datastore: str = ws.DATASTORE) -> list[str]:
        return sorted(b.name for b in self.container(datastore).list_blobs(name_starts_with=prefix))

    def read_blob(self, name: str, datastore: str = ws.DATASTORE) -> bytes:
        return self.container(datastore).get_blob_client(name).download_blob().readall()
