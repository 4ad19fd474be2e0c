"""The preflight's checks of an Azure ML workspace (:mod:`azureml_parallel_r.preflight`), the same for both engines:
each engine answers the questions (its workspace, datastore, compute and environment through its own SDK), this
module asks them in order and says what to do about each answer."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from azureml_parallel_r.backends.azure.datastore_access import IDENTITY, SERVICE_PRINCIPAL
from azureml_parallel_r.preflight import Check, CheckFailed, probe

if TYPE_CHECKING:
    from azureml_parallel_r.backends.azure.datastore_access import DatastoreAccess

PROBE_FOLDER = "r-script-outputs/.azureml-parallel-r-preflight"
FIX_WORKSPACE = (
    "check the connection's subscription_id, resource_group and workspace_name, and its identity's credentials; the "
    "identity needs a role on the workspace (AzureML Data Scientist, or Contributor)"
)
FIX_DATASTORE = (
    "set the connection's datastore to an Azure Blob or ADLS Gen2 datastore of the workspace (empty: the default); "
    "reading a datastore's credentials needs the workspace action datastores/listsecrets (AzureML Data Scientist has "
    "it)"
)
FIX_COMPUTE = "create the cluster, or set the connection's compute_target to an existing one"
FIX_ENVIRONMENT = "register the environment, or clear the connection's environment_name to build the image"


def storage_fix(access: DatastoreAccess | None) -> str:
    """What to do when the datastore's storage refuses the credential it is read with."""
    if access is None or access.kind == IDENTITY:
        return (
            "grant the connection's identity Storage Blob Data Contributor on the storage account or its "
            "container (an identity-based datastore is read with the caller's own identity)"
        )
    if access.kind == SERVICE_PRINCIPAL:
        return "grant the datastore's service principal Storage Blob Data Contributor on the ADLS Gen2 account"
    return "update the datastore's credentials: its key or SAS token is wrong, expired or may not list and write"


def check_storage(blobs: Any) -> str:
    """List the inputs' folder, and write and delete a file in the outputs' one, with the datastore's credential."""
    next(iter(blobs.names("r-script-inputs")), None)
    probe_blob = f"{PROBE_FOLDER}/{uuid.uuid4().hex}"
    blobs.write(probe_blob, b"")
    blobs.delete(probe_blob)
    return "lists r-script-inputs/, writes and deletes in r-script-outputs/"


def compute_summary(name: str, vm_size: Any, min_nodes: Any, max_nodes: Any, identity_type: Any) -> dict[str, Any]:
    """A cluster as the preflight describes it, from what either SDK reads of it; its managed identity's type
    (v1 ``SystemAssigned``/``UserAssigned``, v2 ``system_assigned``/``user_assigned``, or both at once) as
    ``system-assigned``, ``user-assigned`` or None.

    :param name: the cluster.
    :param vm_size: its VM size.
    :param min_nodes: its minimum node count.
    :param max_nodes: its maximum node count.
    :param identity_type: the SDK's identity type (None: no managed identity).
    """
    kind = str(identity_type or "").lower()
    identity = "system-assigned" if "system" in kind else "user-assigned" if "user" in kind else None
    unknown = "?"
    return {
        "name": name,
        "vm_size": vm_size,
        "identity": identity,
        "min_nodes": unknown if min_nodes is None else min_nodes,
        "max_nodes": unknown if max_nodes is None else max_nodes,
    }


def describe_compute(compute: dict[str, Any], access: DatastoreAccess | None, needs_compute_identity: bool) -> str:
    """One line of the cluster; :class:`CheckFailed` when jobs would read an identity-based datastore with a
    managed identity it does not have."""
    identity = compute.get("identity")
    line = (
        f"{compute['name']}: {compute['vm_size']}, {compute['min_nodes']} to {compute['max_nodes']} nodes, "
        f"managed identity: {identity or 'none'}"
    )
    if identity is None and needs_compute_identity and access is not None and access.kind == IDENTITY:
        raise CheckFailed(
            f"{line}; datastore {access.name} keeps no credential, so jobs read it with the cluster's managed identity",
            "enable a managed identity on the cluster (az ml compute update --identity-type SystemAssigned) and grant "
            "it Storage Blob Data Contributor on the storage and AcrPull on the workspace's container registry; or, "
            "on SDK v2, set job_identity to user_identity",
        )
    return line


def azure_checks(backend: Any) -> list[Check]:
    """The workspace, datastore, storage, compute and environment checks of an Azure ML engine.

    :param backend: an Azure ML backend (v1 or v2): ``workspace_answers``, ``access``, ``blobs``, ``compute_summary``,
        ``environment_summary`` and ``needs_compute_identity``.
    """
    workspace = probe("workspace", FIX_WORKSPACE, backend.workspace_answers)
    if not workspace.ok:
        skipped = "not checked: the workspace did not answer"
        return [
            workspace,
            *(Check(name, False, skipped) for name in ("datastore", "storage", "compute", "environment")),
        ]
    checks = [workspace]
    found: dict[str, DatastoreAccess] = {}

    def datastore() -> str:
        found["access"] = backend.access()
        return found["access"].describe()

    checks.append(probe("datastore", FIX_DATASTORE, datastore))
    access = found.get("access")
    if access is None:
        checks.append(Check("storage", False, "not checked: no datastore"))
    else:
        checks.append(probe("storage", storage_fix(access), lambda: check_storage(backend.blobs())))
    needs_identity = backend.needs_compute_identity()
    checks.append(
        probe("compute", FIX_COMPUTE, lambda: describe_compute(backend.compute_summary(), access, needs_identity))
    )
    checks.append(probe("environment", FIX_ENVIRONMENT, backend.environment_summary))
    return checks


def built_image_line() -> str:
    """The environment line when the connection names none: the image is built at the first run."""
    from azureml_parallel_r.backends.azure.environment import IMAGE_R_VERSION

    return (
        f"none registered: the image is built from include/environment/Dockerfile (R {IMAGE_R_VERSION}) at the "
        "first run (its build log is in the job's), then reused"
    )
