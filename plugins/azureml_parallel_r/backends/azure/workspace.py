"""Where and how runs go in an Azure ML workspace: the connection's settings shared by both Azure ML engines."""

from __future__ import annotations

from dataclasses import dataclass, field

from azureml_parallel_r.shipped_code import INCLUDE_DIR

# a run's unset process_count_per_node is one per core on the cluster, whose size is not known before the job: 4, the
# cores of the Standard_DS3_v2 clusters Microsoft's examples create (azureml-examples setup: cpu-cluster)
ASSUMED_PROCESSES_PER_NODE = 4


@dataclass(frozen=True)
class WorkspaceSettings:
    """Where and how pipelines run in the workspace (from the connection's extra).

    :param compute_target: the compute cluster's name.
    :param datastore: the datastore holding inputs and outputs (default: the workspace default).
    :param environment_name: a registered environment to use (``name`` or ``name:version``); when unset,
        one is built from ``include/environment/Dockerfile``.
    :param experiment_name: default experiment.
    :param source_directory: the folder holding ``entry/`` and ``r/`` (default ``include/``).
    :param retry_backoff: first delay of the backoff on transient service errors, in seconds.
    :param extra_environment_variables: set for the entry script besides the request's own.
    :param r_script_dirs: folders besides the source directory that R scripts may come from (they must exist
        on the compute nodes too, e.g. in the image; scripts in the source directory ship with the step).
    :param job_identity: the identity jobs read and write data with (:mod:`azureml_parallel_r.job_identity`; None:
        Azure's default); a run's own ``job_identity`` wins.
    :param r_packages: the connection's ``r_packages``: what every R script run through it needs.
    :param authority: the connection's Microsoft Entra ID authority host, for a datastore's service principal that
        names none (default: azure-identity's, the public cloud).
    """

    compute_target: str = "cpu-cluster"
    datastore: str | None = None
    environment_name: str | None = None
    experiment_name: str = "r-parallel-batch"
    source_directory: str = str(INCLUDE_DIR)
    retry_backoff: float = 2.0
    extra_environment_variables: dict[str, str] = field(default_factory=dict)
    r_script_dirs: tuple[str, ...] = ()
    authority: str | None = None
    job_identity: str | None = None
    r_packages: tuple[str, ...] = ()
