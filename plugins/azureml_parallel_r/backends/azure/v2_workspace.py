"""What the SDK v2 engine reads of the workspace besides its runs: the datastores (with their secrets) and their
blobs, the compute cluster, the registered environment, and the answers the preflight asks for
(:mod:`.preflight_checks`). A part of :class:`~azureml_parallel_r.backends.azure.v2.AzureMLV2Backend`, which
provides ``client``, ``credential``, ``settings`` and ``_retry``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from azureml_parallel_r.backends.azure.datastore_access import DatastoreAccess, v2_access
from azureml_parallel_r.backends.azure.storage import DatastoreBlobs
from azureml_parallel_r.backends.azure.workspace import WorkspaceSettings

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

    from azureml_parallel_r.preflight import Check


class SubmissionError(RuntimeError):
    """Submitting failed and no job with the task's name exists: nothing was left running."""


class V2WorkspaceReads:
    """The workspace's datastores, compute and environment as the v2 engine reads them."""

    credential: Any
    settings: WorkspaceSettings
    _datastores: dict[str, Any]
    _blobs: dict[str, DatastoreBlobs]
    _compute_checked: bool
    _retry: Callable[..., Any]

    @property
    def client(self) -> MLClient:  # the engine's own (V2AzureMLBackend.client)
        raise NotImplementedError

    # -- the datastore ----------------------------------------------------------------------------------

    def datastore(self, name: str | None = None) -> Any:
        """A datastore with its secrets: ``name``, else the connection's ``datastore``, else the default."""
        key = name or self.settings.datastore or ""
        if key not in self._datastores:
            datastores = self.client.datastores
            self._datastores[key] = self._retry(
                (lambda: datastores.get(key, include_secrets=True))
                if key
                else (lambda: datastores.get_default(include_secrets=True)),
                f"getting datastore {key or '(the default)'}",
            )
        return self._datastores[key]

    def blobs(self, name: str | None = None) -> DatastoreBlobs:
        """A datastore's blobs, read and written with this backend's retries (default: the data's datastore)."""
        key = name or ""
        if key not in self._blobs:
            self._blobs[key] = DatastoreBlobs(lambda: self._container(self.datastore(name)), self._retry)
        return self._blobs[key]

    def access(self, name: str | None = None) -> DatastoreAccess:
        """A datastore's kind, where its blobs are and what reads them (:mod:`.datastore_access`)."""
        return v2_access(self.datastore(name))

    def _container(self, store: Any) -> Any:
        """The datastore's container, with its account key, SAS token or service principal, else the connection's
        identity."""
        return v2_access(store).client(self.credential, self.settings.authority)

    def _check_compute(self) -> None:
        """Read the compute cluster before submitting, with this backend's retries: azure-ai-ml reads it too while
        validating the job, but reports any failure there (a 404 or a 503 alike) as a validation message, which
        tells neither what to fix nor whether to retry."""
        from azure.core.exceptions import ResourceNotFoundError

        if self._compute_checked:
            return
        name = self.settings.compute_target
        try:
            self._retry(lambda: self.client.compute.get(name), f"reading compute {name}")
        except ResourceNotFoundError:
            raise SubmissionError(
                f"the workspace has no compute cluster {name!r}: create it or fix the connection's compute_target; "
                "nothing was submitted"
            ) from None
        self._compute_checked = True

    # -- the preflight (azureml_parallel_r.preflight) ------------------------------------------------------

    def preflight_checks(self) -> list[Check]:
        from azureml_parallel_r.backends.azure.preflight_checks import azure_checks

        return azure_checks(self)

    def workspace_answers(self) -> str:
        workspaces, name = self.client.workspaces, self.client.workspace_name
        workspace = self._retry(lambda: workspaces.get(name), f"reading workspace {name}")
        return f"workspace {workspace.name} answers (resource group {self.client.resource_group_name})"

    def compute_summary(self) -> dict[str, Any]:
        """The cluster's VM size, node counts and managed identity (azure-ai-ml's ``AmlCompute``)."""
        from azureml_parallel_r.backends.azure.preflight_checks import compute_summary

        name = self.settings.compute_target
        compute = self._retry(lambda: self.client.compute.get(name), f"getting compute {name}")
        return compute_summary(
            name,
            getattr(compute, "size", None) or compute.type,
            getattr(compute, "min_instances", None),
            getattr(compute, "max_instances", None),
            getattr(getattr(compute, "identity", None), "type", None),
        )

    def environment_summary(self) -> str:
        """The registered environment the connection names, read; else the image that will be built."""
        from azureml_parallel_r.backends.azure.preflight_checks import built_image_line

        if not self.settings.environment_name:
            return built_image_line()
        name, _, version = self.settings.environment_name.partition(":")
        environments = self.client.environments
        found = self._retry(
            lambda: environments.get(name, version=version) if version else environments.get(name, label="latest"),
            f"getting environment {name}",
        )
        return f"registered environment {found.name} version {found.version}"

    def needs_compute_identity(self) -> bool:
        """Whether jobs read a credential-less datastore with the compute's managed identity: unless the run names
        another (:mod:`azureml_parallel_r.job_identity`)."""
        from azureml_parallel_r.job_identity import MANAGED, parse_job_identity

        parsed = parse_job_identity(self.settings.job_identity)
        return parsed is None or parsed[0] == MANAGED
