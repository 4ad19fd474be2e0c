"""A fake of the Azure ML workspace's HTTP services, as azureml-core 1.61 and azureml-pipeline-core 1.62
call them, answering on a :class:`tests.azure.wire.Wire`.

It models Azure, not this project: every route names the SDK code that calls it and the Microsoft document
(or SDK model) its answer follows. State is in memory. The routes are grouped by service, one module each:
Entra ID, ARM, discovery and the datastore (:mod:`tests.azure.entra_arm_routes`), datasets
(:mod:`tests.azure.dataset_routes`), snapshots (:mod:`tests.azure.snapshot_routes`), run history and artifacts
(:mod:`tests.azure.run_history_routes`). The pipeline service itself (modules, graphs, pipeline runs) is the SDK's
own in-memory ``DryRunServiceCaller``, extended in :mod:`tests.azure.pipeline_service` so that runs really execute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.azure.dataset_routes import DatasetRoutes
from tests.azure.entra_arm_routes import EntraArmRoutes
from tests.azure.run_history_routes import RunHistoryRoutes
from tests.azure.snapshot_routes import SnapshotRoutes
from tests.azure.wire import Call, Reply, Wire
from tests.azure.workspace import ARM, CONTAINER, LOGIN, REGION, WS_SCOPE, blob_service, list_blobs_page


@dataclass
class WorkspaceService(EntraArmRoutes, DatasetRoutes, SnapshotRoutes, RunHistoryRoutes):
    """The workspace's services and their state."""

    wire: Wire
    azurite_url: str
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    saved_datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)  # by name: {"dto", "versions"}
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest_snapshot: str | None = None

    def install(self) -> None:
        """Answer every route below on the wire: (method, host, path regex, handler), grouped by service."""
        history = rf"/history/v1\.0{WS_SCOPE}"
        experiment = rf"{history}/experiments/(?P<experiment>[^/]+)"
        run = rf"{experiment}/runs/(?P<run>[^/]+)"
        snapshots = rf"{WS_SCOPE}/snapshots"
        artifacts = rf"/artifact/v2\.0{WS_SCOPE}/artifacts"
        routes = [
            # Microsoft Entra ID (msal, under azureml.core.authentication.ServicePrincipalAuthentication)
            ("GET", LOGIN, r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration", self.openid_configuration),
            ("POST", LOGIN, r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", self.token),
            ("GET", LOGIN, r"/common/discovery/instance", self.instance_discovery),
            # Azure Resource Manager and the workspace's discovery document
            ("GET", ARM, r"/subscriptions", self.subscriptions),
            ("GET", ARM, WS_SCOPE, self.workspace),
            ("GET", REGION, r"/discovery", self.discovery),
            # datastores (azureml/_restclient/operations/data_stores_operations.py)
            ("GET", REGION, rf"/datastore/v1\.0{WS_SCOPE}/default", self.datastore),
            ("GET", REGION, rf"/datastore/v1\.0{WS_SCOPE}/datastores/(?P<name>[^/]+)", self.datastore),
            # datasets (azureml/_restclient/operations/dataset_operations.py) and the data service
            ("POST", REGION, rf"/dataset/v1\.0{WS_SCOPE}/datasets", self.register_dataset),
            ("DELETE", REGION, rf"/dataset/v1\.0{WS_SCOPE}/datasets/(?P<name>[^/]+)", self.unregister_dataset),
            # registered environments (azureml/_restclient/environment_client.py, _get_environment_definition)
            (
                "GET",
                REGION,
                rf"/environment/v1\.0{WS_SCOPE}/environments/(?P<name>[^/]+)(?:/versions/[^/]+)?",
                self.environment_definition,
            ),
            ("GET", REGION, rf"/dataset/v1\.0{WS_SCOPE}/datasets/query/name=(?P<name>[^/]+)", self.dataset_by_name),
            (
                "GET",
                REGION,
                rf"/data/v1\.0{WS_SCOPE}/dataversion/(?P<name>[^/]+)/versions/(?P<version>[^/]+)",
                self.dataversion,
            ),
            # snapshots (azureml/_restclient/snapshots_client.py, azureml/_base_sdk_common/project_snapshot_cache.py)
            ("GET", REGION, rf"/content/v1\.0{snapshots}/latest/metadata", self.latest_snapshot_metadata),
            ("POST", REGION, rf"/content/v2\.0{snapshots}/getblob", self.snapshot_blob_uris),
            ("POST", REGION, rf"/content/v2\.0{snapshots}/(?P<id>[0-9a-f-]{{36}})", self.create_snapshot),
            # run history (azureml/_restclient/operations/experiment_operations.py, run_operations.py)
            ("GET", REGION, experiment, self.get_experiment),
            ("POST", REGION, experiment, self.create_experiment),
            ("GET", REGION, run, self.get_run),
            ("PATCH", REGION, run, self.patch_run),
            ("GET", REGION, rf"{run}/details", self.run_details),
            ("GET", REGION, rf"{run}/children", self.child_runs),
            ("POST", REGION, rf"{experiment}/runs:query", self.query_runs),
            ("GET", REGION, rf"{history}/runs/(?P<run>[^/]+)", self.get_run_by_id),
            ("GET", REGION, rf"{history}/experimentids/(?P<id>[^/]+)", self.experiment_by_id),
            ("GET", REGION, rf"{history}/experimentids/[^/]+/runs/(?P<run>[^/]+)", self.get_run_by_id),
            # artifacts: a run's files (azureml/_restclient/artifacts_client.py)
            (
                "GET",
                REGION,
                rf"{artifacts}/contentinfo/ExperimentRun/(?P<container>[^/]+)/(?P<path>.+)",
                self.content_info,
            ),
            ("GET", REGION, rf"{artifacts}/ExperimentRun/(?P<container>[^/]+)", self.list_artifacts),
            (
                "GET",
                REGION,
                rf"{artifacts}/prefix/contentinfo/ExperimentRun/(?P<container>[^/]+)/(?P<prefix>.+)",
                self.content_info_by_prefix,
            ),
        ]
        for method, host, path, handler in routes:
            self.wire.route(method, host, path, handler)

    def environment_definition(self, call: Call, match: Any) -> Reply:
        """A registered environment's definition (``Environment.get``): the fake workspace has none registered
        through SDK v1 (a run's own environment travels in its run configuration), so every name is a 404, which
        the SDK raises as "Error retrieving the environment definition. Code: 404"."""
        return Reply(404, {"error": {"code": "UserError", "message": f"Environment {match['name']} not found"}})

    def blob_service(self) -> Any:
        """The Azurite account, straight on its loopback URL (the fake's own access, not the SDK's)."""
        return blob_service(self.azurite_url, self.wire.azurite_ca)

    def list_blobs_reply(self, call: Call) -> Reply:
        """The datastore container's List Blobs answer from what Azurite holds (for tests that replace some
        listings and leave the others as they are)."""
        prefix = call.query.get("prefix", [""])[0]
        container = self.blob_service().get_container_client(CONTAINER)
        return list_blobs_page(call, sorted(b.name for b in container.list_blobs(name_starts_with=prefix)), CONTAINER)
