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
from azureml_parallel_r.run_settings import INPUT_NAME, parse_data_size
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


def _mini_batch_size(request: RunRequest) -> int | str | None:
    """``ParallelRunConfig.mini_batch_size``: files for a FileDataset; for a TabularDataset its data size (the SDK's
    forms, "1024, 1024KB, 10MB, and 1GB", given as bytes), or None with partition keys, which the SDK refuses beside a
    size ("Parameters mini_batch_size and partition_keys are mutually exclusive") or when the run leaves it to the
    runtime's 1MB."""
    if not request.dataset.tabular:
        return request.settings.mini_batch_size
    if request.dataset.partition_keys or not request.mini_batch_data_size:
        return None
    return parse_data_size(request.mini_batch_data_size)


def tabular_dataset(datastore: Any, path: str, spec: dict[str, Any]) -> Any:
    """The TabularDataset an MLTable file describes, built as SDK v1 builds one (it reads no MLTable file): its
    ``paths`` as datastore paths below ``path`` (a folder as ``<folder>/**``), its reader
    (``read_delimited``: ``Dataset.Tabular.from_delimited_files`` with its delimiter, header, encoding and path column;
    ``read_parquet``: ``from_parquet_files``; ``read_json_lines``: ``from_json_lines_files``), its
    ``extract_columns_from_partition_format`` as ``partition_format``, then ``drop_columns``/``keep_columns``.
    Columns are read as text (``infer_column_types=False``: inferring reads the data here, where it need not be).

    :param datastore: the datastore holding the table.
    :param path: the table's folder on it.
    :param spec: the MLTable file's content (:func:`~azureml_parallel_r.mltable.check_mltable`).
    """
    from azureml.core import Dataset

    base = path.strip("/")
    paths = []
    for entry in spec["paths"]:
        ((kind, value),) = entry.items()
        relative = str(value).removeprefix("./").strip("/")
        if "://" in relative or relative.startswith(".."):
            raise ValueError(f"the MLTable path {value!r} is not below the table's folder")
        paths.append((datastore, f"{base}/{relative}/**" if kind == "folder" else f"{base}/{relative}"))
    reader, options, columns, partition_format = "", {}, [], None
    for step in spec.get("transformations") or []:
        ((name, value),) = step.items()
        if name in ("read_delimited", "read_parquet", "read_json_lines") and not reader:
            reader, options = name, dict(value or {})
        elif name == "extract_columns_from_partition_format":
            partition_format = "/" + str((value or {}).get("partition_format", "")).removeprefix("./").lstrip("/")
        elif name in ("drop_columns", "keep_columns"):
            columns.append((name, [value] if isinstance(value, str) else list(value or [])))
        else:
            raise ValueError(f"the transformation {name!r} has no SDK v1 equivalent here")
    common = {
        "validate": False,
        "include_path": bool(options.get("include_path_column")),
        "partition_format": partition_format,
    }
    if reader == "read_parquet":
        dataset = Dataset.Tabular.from_parquet_files(path=paths, **common)
    elif reader == "read_json_lines":
        dataset = Dataset.Tabular.from_json_lines_files(path=paths, **common)
    else:
        header = {"no_header": "NO_HEADERS", "from_first_file": "FROM_FIRST_FILE"}.get(
            str(options.get("header")), "ALL_FILES_HAVE_SAME_HEADERS"
        )
        from azureml.data.dataset_type_definitions import PromoteHeadersBehavior

        dataset = Dataset.Tabular.from_delimited_files(
            path=paths,
            separator=str(options.get("delimiter", ",")),
            header=getattr(PromoteHeadersBehavior, header),
            encoding=str(options.get("encoding", "utf8")),
            infer_column_types=False,
            empty_as_string=bool(options.get("empty_as_string", False)),
            **common,
        )
    for name, names in columns:
        dataset = dataset.drop_columns(names) if name == "drop_columns" else dataset.keep_columns(names)
    return dataset


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
        mini_batch_size=_mini_batch_size(request),
        partition_keys=list(request.dataset.partition_keys) or None,
        run_invocation_timeout=math.ceil(settings.invocation_timeout),  # whole seconds, never 0
        run_max_try=settings.run_max_try,
        logging_level=settings.logging_level,
        allowed_failed_count=settings.allowed_failed_count,
        allowed_failed_percent=settings.allowed_failed_percent,
        environment_variables={**(extra_environment_variables or {}), **settings.environment_variables},
    )
    tabular = request.dataset.tabular
    step = ParallelRunStep(
        name=STEP_NAME,
        parallel_run_config=config,
        # a TabularDataset's input is direct: the runtime reads its mini-batches ("Please ensure input dataset
        # consumption mode is direct", _ParallelRunStepBase._get_input_type)
        inputs=[dataset.as_named_input(INPUT_NAME) if tabular else dataset.as_named_input(INPUT_NAME).as_mount()],
        output=output,
        arguments=request.entry_arguments(input_name=INPUT_NAME),
        allow_reuse=False,
    )
    return step, output
