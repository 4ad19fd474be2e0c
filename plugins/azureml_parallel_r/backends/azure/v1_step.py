"""The Azure ML SDK v1 pipeline step of one run, built offline (no HTTP): a ParallelRunStep running the entry script
over the input FileDataset, its environment, and what the pipeline's description records about the run (its key,
dataset version and output folder, stored by the service when it creates the run). :mod:`.v1` submits, watches and
cancels it."""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from azureml_parallel_r.backends.azure.errors import with_retries
from azureml_parallel_r.backends.azure.runs import RUN_KEY_TAGS
from azureml_parallel_r.backends.azure.workspace import WorkspaceSettings
from azureml_parallel_r.models import RunRequest
from azureml_parallel_r.run_settings import INPUT_NAME
from azureml_parallel_r.shipped_code import ENTRY_SCRIPT

if TYPE_CHECKING:
    from azureml.core import Environment, Workspace
    from azureml.pipeline.steps import ParallelRunStep

OUTPUT_NAME = "r_outputs"
# not "azureml-...": the SDK reserves the prefixes "Microsoft" and "AzureML" for curated environments
# (azureml/core/environment.py, Environment's name parameter: "Do not start your environment name with ...")
ENVIRONMENT_NAME = "parallel-r-batch"
RESERVED_ENVIRONMENT_PREFIXES = ("microsoft", "azureml")
IMAGE_PYTHON = "/opt/miniconda/bin/python"  # the base image's conda Python (include/environment/Dockerfile)
STEP_NAME = "r-parallel-run"
DESCRIPTION_PREFIX = "azureml-parallel-r "


# -- what the run records about itself --------------------------------------------------------------------


def submission_id() -> str:
    """A new id for a submission's output folder, chosen before the run exists (time-ordered, unique)."""
    return f"{datetime.now(UTC):%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:8]}"


def run_description(request: RunRequest, output_path: str, rows_file: str) -> str:
    """The pipeline's description: the run key, the input dataset version and where the outputs go, stored with the
    run at creation (its tags can only be set afterwards)."""
    key = request.run_key
    record = {
        "run_key": {k: key[k] for k in RUN_KEY_TAGS if k in key},
        "output_path": output_path,
        "rows_file": rows_file,
        "dataset_name": request.dataset.name,
        "dataset_version": str(request.dataset.version),
    }
    return DESCRIPTION_PREFIX + json.dumps(record, sort_keys=True, separators=(",", ":"))


def parse_description(description: str | None) -> dict[str, Any]:
    """The record :func:`run_description` wrote, or ``{}`` for any other description."""
    if not description or not description.startswith(DESCRIPTION_PREFIX):
        return {}
    try:
        record = json.loads(description[len(DESCRIPTION_PREFIX) :])
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def build_environment(
    settings: WorkspaceSettings, workspace: Workspace | None = None, packages: list[dict[str, Any]] | None = None
) -> Environment:
    """The step's environment: a registered one by name (used as it is), or one built from
    ``include/environment/Dockerfile`` with the R packages the script declares
    (:func:`~.environment.image_dockerfile`), named ``parallel-r-batch`` or, with declared packages,
    ``parallel-r-batch-<hash of the Dockerfile>``: a changed declaration is another environment.

    :param settings: the connection's workspace settings.
    :param workspace: the workspace (for a registered environment).
    :param packages: the R packages declared for the run's script.
    """
    from azureml.core import Environment

    if settings.environment_name:
        if workspace is None:
            raise ValueError("a registered environment needs the workspace")
        name, _, version = settings.environment_name.partition(":")
        return with_retries(
            lambda: Environment.get(workspace, name, version or None),
            f"getting environment {settings.environment_name}",
            backoff=settings.retry_backoff,
        )
    from azureml.core.conda_dependencies import CondaDependencies

    from azureml_parallel_r.backends.azure.environment import image_dockerfile, image_identity

    dockerfile = image_dockerfile(packages or [])
    name = f"{ENVIRONMENT_NAME}-{image_identity(dockerfile)}" if packages else ENVIRONMENT_NAME
    environment = Environment(name)
    environment.docker.base_image = None
    environment.docker.base_dockerfile = dockerfile
    environment.python.user_managed_dependencies = True
    environment.python.interpreter_path = IMAGE_PYTHON
    # What the image's pip installs, declared: the service installs nothing from it (user-managed dependencies), but
    # the SDK reads it. An Environment's default list is azureml-defaults, which the image does not have; an empty
    # one makes ParallelRunStep warn on every submission that it "requires azureml-core" and
    # "azureml-dataset-runtime[fuse]" (_ParallelRunStepBase._check_required_pip_packages).
    declared = environment.python.conda_dependencies or CondaDependencies()
    for package in declared.pip_packages:
        declared.remove_pip_package(package)
    for package in image_pip_packages(dockerfile):
        declared.add_pip_package(package)
    environment.python.conda_dependencies = declared
    return environment


def image_pip_packages(dockerfile: str) -> list[str]:
    """The packages the compute image's Dockerfile installs with pip, as pinned there: its quoted requirements
    (``"azureml-core==1.61.0.post4"``) in the ``pip install`` instruction.

    :param dockerfile: the Dockerfile's text.
    """
    install = re.search(r"^RUN python3 -m pip install(?:[^\n]*\\\n)*[^\n]*", dockerfile, re.M)
    if install is None:
        raise ValueError("the compute image's Dockerfile has no 'RUN python3 -m pip install' instruction")
    return re.findall(r'"([A-Za-z0-9][A-Za-z0-9._\-\[\],]*(?:[<>=!~]=?[^"\s]*)?)"', install.group(0))


def build_parallel_run_step(
    request: RunRequest,
    *,
    dataset: Any,
    datastore: Any,
    environment: Environment,
    source_directory: str,
    compute_target: str,
    output_path: str,
    extra_environment_variables: dict[str, str] | None = None,
) -> tuple[ParallelRunStep, Any]:
    """Build the ParallelRunStep (and its OutputFileDatasetConfig) for ``request``; no network involved.

    :param request: what to run.
    :param dataset: the input FileDataset.
    :param datastore: the datastore of the outputs.
    :param environment: the step's environment.
    :param source_directory: the staged source directory (``entry/`` + ``r/``).
    :param compute_target: the compute cluster's name.
    :param output_path: the concrete output folder on the datastore (no ``{run-id}`` left in it).
    :param extra_environment_variables: set for the entry script besides the request's own.
    """
    from azureml.data import OutputFileDatasetConfig
    from azureml.pipeline.steps import ParallelRunConfig, ParallelRunStep

    settings = request.settings
    output = OutputFileDatasetConfig(name=OUTPUT_NAME, destination=(datastore, output_path))
    config = ParallelRunConfig(
        environment=environment,
        entry_script=ENTRY_SCRIPT,
        source_directory=source_directory,
        error_threshold=settings.error_threshold,
        output_action=settings.output_action,
        append_row_file_name=settings.append_row_file_name,
        compute_target=compute_target,
        node_count=settings.node_count,
        process_count_per_node=settings.process_count_per_node,
        mini_batch_size=settings.mini_batch_size,
        run_invocation_timeout=math.ceil(settings.invocation_timeout),  # whole seconds, never 0
        run_max_try=settings.run_max_try,
        logging_level=settings.logging_level,
        allowed_failed_count=settings.allowed_failed_count,
        allowed_failed_percent=settings.allowed_failed_percent,
        environment_variables={**(extra_environment_variables or {}), **settings.environment_variables},
    )
    step = ParallelRunStep(
        name=STEP_NAME,
        parallel_run_config=config,
        inputs=[dataset.as_named_input(INPUT_NAME).as_mount()],
        output=output,
        arguments=request.entry_arguments(input_name=INPUT_NAME),
        allow_reuse=False,
    )
    return step, output
