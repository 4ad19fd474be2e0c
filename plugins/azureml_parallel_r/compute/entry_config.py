"""The entry script's settings: its own arguments, the runtime's it reads, and where the dataset's files are.

The entry script reads its arguments with ``parse_known_args``, so the runtime's own pass through untouched; of
those it reads ``--run_invocation_timeout`` (a mini-batch stops taking files ``invocation_margin`` before it:
:mod:`azureml_parallel_r.compute.entry_settings`) and ``--logging_level`` (its logger's level). The arguments are
listed in the entry script's docstring (``include/entry/batch_wrapper.py``).

How Azure ML tells a ParallelRunStep where a FileDataset input is mounted: the driver gets the input only by
name (``--input_fds_0 NAME``, azureml/pipeline/core/_parallel_run_step_base.py), and the job's environment
lists the dataset variables in ``AZUREML_DATASET_ENVIRONMENT_VARS`` (``NAME:mount,...``) with the mount path
in ``os.environ[NAME]`` (azureml/core/run.py, ``InputDatasets._load_input_datasets``).
``AZUREML_DATAREFERENCE_<NAME>`` is set for DataReference and PipelineData inputs only, so it is not read.

Standard library only: this module ships to the compute nodes.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from azureml_parallel_r.compute.entry_settings import DEFAULT_FILE_TIMEOUT, DEFAULT_R_SCRIPT, R_MODES
from azureml_parallel_r.compute.output_layout import output_folders
from azureml_parallel_r.compute.r_launch import RSetupError, find_rscript
from azureml_parallel_r.compute.r_packages import declared_packages

INPUT_KINDS = ("files", "table")  # --input-kind: a folder of files, or a table whose mini-batches are DataFrames


@dataclass(frozen=True)
class EntryConfig:
    """The entry script's settings, parsed from its arguments.

    :param r_script: absolute path of the R script.
    :param r_mode: ``worker`` or ``per-file``.
    :param file_timeout: seconds per file, ``None`` for no limit.
    :param r_args: extra arguments for the R script.
    :param output_dir: the step's output directory (None when the two folders below are given on their own).
    :param results_dir: where succeeded files' outputs go (``--results-dir``, else ``<output_dir>/results``).
    :param failures_dir: where failure records go (``--failures-dir``, else ``<output_dir>/failures``).
    :param input_root: the dataset's root folder (its mount or download folder; "" for a table's input).
    :param rscript: the Rscript executable.
    :param restart_every: restart R after this many files (None: only after a failure).
    :param invocation_timeout: the runtime's ``run_invocation_timeout`` in seconds (None: not given).
    :param r_packages: the R packages declared for the script (:func:`r_packages.declared_packages`), as dicts.
    :param logging_level: the run's logging level (the runtime's ``--logging_level``), for this script's logger.
    """

    r_script: str
    r_mode: str
    file_timeout: float | None
    r_args: tuple[str, ...]
    output_dir: str | None
    results_dir: str
    failures_dir: str
    input_root: str
    rscript: str
    restart_every: int | None = None
    invocation_timeout: float | None = None
    r_packages: tuple[dict[str, str | None], ...] = ()
    logging_level: str = "INFO"
    input_kind: str = "files"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batch_wrapper.py", add_help=False, allow_abbrev=False)
    parser.add_argument("--r-script", default=DEFAULT_R_SCRIPT)
    parser.add_argument("--r-mode", choices=R_MODES, default=R_MODES[0])
    parser.add_argument("--file-timeout", type=float, default=DEFAULT_FILE_TIMEOUT)
    parser.add_argument("--r-arg", action="append", default=[], dest="r_args")
    parser.add_argument("--r-package", action="append", default=[], dest="r_packages")
    parser.add_argument("--output-dir")
    parser.add_argument("--results-dir")
    parser.add_argument("--failures-dir")
    parser.add_argument("--input-root")
    parser.add_argument("--input-name")
    parser.add_argument("--input-kind", choices=INPUT_KINDS, default=INPUT_KINDS[0])
    parser.add_argument("--rscript", default=os.environ.get("RSCRIPT", "Rscript"))
    parser.add_argument("--r-restart-every", type=int, default=None)
    parser.add_argument("--run_invocation_timeout", type=float, default=None)  # the runtime's own
    parser.add_argument("--logging_level", default=None)  # the runtime's own: the run's logging level
    return parser


def resolve_r_script(path: str, source_dir: str) -> str:
    """Return the R script's absolute path: as given when absolute, else under the source directory.

    :param path: the ``--r-script`` argument.
    :param source_dir: the step's source directory (the folder above ``entry/``).
    """
    candidate = path if os.path.isabs(path) else os.path.join(source_dir, path)
    if os.path.isfile(candidate):
        return os.path.abspath(candidate)
    raise RSetupError(
        f"R script not found: {path!r} (looked at {candidate}); pass --r-script with a path relative to the "
        "source directory or an absolute path"
    )


DATASET_VARIABLES = "AZUREML_DATASET_ENVIRONMENT_VARS"


def runtime_input_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The names of the mounted or downloaded inputs the runtime exposes (``AZUREML_DATASET_ENVIRONMENT_VARS``)."""
    environ = os.environ if environ is None else environ
    pairs = [item.split(":") for item in environ.get(DATASET_VARIABLES, "").split(",") if item]
    return [pair[0] for pair in pairs if len(pair) == 2 and pair[0] and pair[1].lower() != "direct"]


def runtime_input_path(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The local folder of the named FileDataset input, found as ``Run.get_context().input_datasets[name]``
    finds it (azureml/core/run.py, ``InputDatasets._load_input_datasets``): ``AZUREML_DATASET_ENVIRONMENT_VARS``
    holds ``variable:mode`` pairs, and a mounted or downloaded input's folder is in ``os.environ[variable]``.

    :param name: the input's name (``as_named_input(name)``; the driver's ``--input_fds_0`` value).
    :param environ: the environment (default ``os.environ``).
    :raises ValueError: the input is not there, or is passed as a dataset id (direct mode), with what to fix.
    """
    environ = os.environ if environ is None else environ
    pairs = [item.split(":") for item in environ.get(DATASET_VARIABLES, "").split(",") if item]
    modes = {pair[0]: pair[1].lower() for pair in pairs if len(pair) == 2 and pair[0]}
    if name not in modes:
        raise ValueError(
            f"the runtime exposes no input named {name!r} ({DATASET_VARIABLES}={environ.get(DATASET_VARIABLES)!r}): "
            "give the step its FileDataset as .as_named_input(NAME).as_mount() and pass --input-name NAME"
        )
    if modes[name] == "direct":
        raise ValueError(
            f"input {name!r} reaches the job as a dataset id (direct mode), not as files: use .as_mount() or "
            ".as_download() on the step's input"
        )
    path = environ.get(name)
    if not path or not os.path.isdir(path):
        raise ValueError(f"input {name!r} should be mounted at {path!r}, but that folder does not exist")
    return path


def parse_config(argv: list[str], source_dir: str) -> EntryConfig:
    """Parse the entry script's own arguments and ignore the runtime's.

    :param argv: the process arguments without the program name.
    :param source_dir: the step's source directory (the folder above ``entry/``): a relative ``--r-script`` is
        found there.
    """
    args, _runtime_args = build_parser().parse_known_args(argv)
    output_dir = args.output_dir or os.environ.get("AZUREML_BI_OUTPUT_PATH") or None
    results_dir, failures_dir = output_folders(output_dir, args.results_dir, args.failures_dir)
    input_root = args.input_root or (runtime_input_path(args.input_name) if args.input_name else None)
    if args.input_kind == "table":  # run() gets DataFrames: no folder of files to file outputs under
        input_root = input_root or ""
    elif not input_root:
        inputs = runtime_input_names()
        if len(inputs) != 1:
            raise ValueError(
                "no dataset root: pass --input-root DIR (the folder the inputs are under) or --input-name NAME (the "
                f"step's named FileDataset input; the runtime exposes {inputs or 'none'}); outputs are filed under "
                "each input's path relative to that root"
            )
        input_root = runtime_input_path(inputs[0])  # the step's one FileDataset input
    if args.r_restart_every is not None and args.r_restart_every < 1:
        raise ValueError(f"--r-restart-every must be >= 1 file, got {args.r_restart_every}")
    if args.file_timeout < 0:
        raise ValueError(f"--file-timeout must be >= 0 seconds, got {args.file_timeout:g}")
    r_script = resolve_r_script(args.r_script, source_dir)
    return EntryConfig(
        r_script=r_script,
        r_mode=args.r_mode,
        file_timeout=args.file_timeout or None,
        r_args=tuple(args.r_args),
        output_dir=output_dir,
        results_dir=results_dir,
        failures_dir=failures_dir,
        input_root=input_root,
        rscript=find_rscript(args.rscript),
        restart_every=args.r_restart_every,
        invocation_timeout=args.run_invocation_timeout if (args.run_invocation_timeout or 0) > 0 else None,
        r_packages=tuple(package.to_dict() for package in declared_packages(r_script, args.r_packages)),
        logging_level=_logging_level(args.logging_level),
        input_kind=args.input_kind,
    )


def _logging_level(name: str | None) -> str:
    """The runtime's ``--logging_level`` as a level of Python's ``logging`` (INFO, Azure's default, when not given)."""
    level = (name or "INFO").upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"--logging_level must be a level of Python's logging (DEBUG, INFO, WARNING), got {name!r}")
    return level
