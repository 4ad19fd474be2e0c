"""ParallelRunStep entry script: hand each input file of a FileDataset mini-batch to an R script.

The runtime imports this module in every worker process, calls :func:`init` once, :func:`run` for each
mini-batch (a list of local file paths; for a tabular input, a pandas DataFrame, with the ``mini_batch_context``
naming its partition when the step has ``partition_keys``) and :func:`shutdown` at the end. A file goes to the R
script's ``process_file(input_path, output_dir, args)``, a table's mini-batch to its
``process_partition(data, keys, output_dir, args)`` as a data.frame (:mod:`azureml_parallel_r.compute.tables`).
Arguments are read with ``parse_known_args`` so the runtime's own arguments pass through untouched:

``--r-script PATH``        the R script defining ``process_file(input_path, output_dir, args)``; relative
                           paths are resolved against the source directory (default ``r/process_file.r``)
``--r-mode MODE``          ``worker`` (default: one persistent R process per worker process) or
                           ``per-file`` (a fresh R process for every file: the compatibility path)
``--file-timeout S``       seconds one file may take before R is killed and the file fails (default 300;
                           0 = no limit). Keep ``mini_batch_size x`` typical time below run_invocation_timeout.
``--r-arg=VALUE``          one extra argument for the R script (repeat for several; ``=`` keeps values that
                           start with a dash)
``--r-package=REQ``        an R package the script needs, ``name``, ``name==version`` or ``name>=version``
                           (repeat for several), besides those of an ``renv.lock`` or ``DESCRIPTION`` next to the
                           script (include/entry/r_packages.py); R checks them all, and the packages the script
                           names, before any file runs
``--output-dir DIR``       the run's output folder: ``results/`` and ``failures/`` go below it (default:
                           ``AZUREML_BI_OUTPUT_PATH``)
``--results-dir DIR``      the results folder, when not ``<output dir>/results`` (the v2 engine mounts it,
                           the failures folder and the rows file separately)
``--failures-dir DIR``     the failure records' folder, when not ``<output dir>/failures``
``--input-root DIR``       the dataset's mount/download folder; outputs are filed under the input path
                           relative to it
``--input-name NAME``      the named input (``as_named_input(NAME)``): its mount folder is found the way
                           the runtime's ``Run.get_context().input_datasets[NAME]`` finds it (below); used
                           when ``--input-root`` is not given. Without either, the step's only mounted input
                           is the root (the local engine exposes its ``--input`` that way).
``--rscript PATH``         the Rscript executable (default: ``Rscript`` on PATH)
``--r-restart-every N``    restart R after every N files, to bound slow leaks (default: only after a file
                           fails, which always restarts R)

Of the runtime's own arguments it reads ``--run_invocation_timeout``: a mini-batch stops taking files shortly
before it (:func:`invocation_margin`) and returns the rows of the files it finished, rather than being killed
with them; the runtime counts the others as failed (and tries them again while tries are left).

How the dataset's root is found (``--input-root``, ``--input-name``, or the step's one mounted input) and the rest
of the arguments are read: :mod:`azureml_parallel_r.compute.entry_config`. :func:`init` fails, saying what to fix,
when the root cannot be found; :func:`run` fails a mini-batch whose files lie outside it rather than filing their
outputs under their absolute paths. The work itself is :class:`azureml_parallel_r.compute.batch.BatchProcessor`'s;
this script is the runtime's interface to it.

:func:`run` returns one JSON line per succeeded file (input, relative_path, outputs, seconds, value,
warnings). A failed file is left out, so the runtime counts it, and its error (message, R stderr tail,
attempt) is written to ``failures/<relative path>.json``. A file fails alone, with a record, also when its
outputs cannot be filed (a link to nothing among them, a full or refused output disk) and when the node's scratch
disk was full while it ran (R only warns about, or does not even notice, a write that failed there). Standard
library only (plus R): this file ships to the compute nodes, with the package ``azureml_parallel_r.compute`` beside
``entry/`` in the step's source directory.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from azureml_parallel_r.compute import entry_config

# the step's source directory holds azureml_parallel_r/compute/ beside entry/ and r/ (the engines stage it so)
from azureml_parallel_r.compute.batch import BatchProcessor, PartitionFailed, runtime_context
from azureml_parallel_r.compute.entry_config import EntryConfig
from azureml_parallel_r.compute.entry_settings import invocation_margin

__all__ = [
    "BatchProcessor",
    "EntryConfig",
    "PartitionFailed",
    "init",
    "invocation_margin",
    "parse_config",
    "processor",
    "run",
    "shutdown",
]

logger = logging.getLogger("azureml_parallel_r.entry")
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the step's source directory, above entry/


def parse_config(argv: list[str]) -> EntryConfig:
    """This script's settings from its arguments (a relative ``--r-script`` is found in :data:`SOURCE_DIR`).

    :param argv: the process arguments without the program name.
    """
    return entry_config.parse_config(argv, SOURCE_DIR)


_processor: BatchProcessor | None = None


def init() -> None:
    """Parse arguments, check R and the R script, and start this process's R session."""
    global _processor
    config = parse_config(sys.argv[1:])
    logger.setLevel(config.logging_level)  # the run's level: DEBUG adds a line per mini-batch, WARNING only failures
    log_dir, process_name, log_name = runtime_context()
    processor = BatchProcessor(config, log_dir, process_name, log_name)
    processor.start()
    _processor = processor
    logger.info("R session ready (%s mode): %s", config.r_mode, config.r_script)


def processor() -> BatchProcessor | None:
    """This process's :class:`BatchProcessor`, once :func:`init` made it (None before and after shutdown)."""
    return _processor


def run(mini_batch: Any, mini_batch_context: Any = None) -> list[str]:
    """Process one mini-batch: the files of a file input (one JSON result row per succeeded file), or a table's
    DataFrame (its one row; :class:`PartitionFailed` when R failed it, so the runtime tries it again).

    :param mini_batch: local paths of the mini-batch's files, or a pandas DataFrame (a tabular input).
    :param mini_batch_context: the runtime's context with ``partition_keys``: its ``partition_key_value`` names the
        partition (passed by the runtime only then; a file input's partition keys do not change where outputs go).
    """
    if _processor is None:
        raise RuntimeError("run() called before init()")
    if hasattr(mini_batch, "to_csv") and hasattr(mini_batch, "columns"):  # a DataFrame: a table's mini-batch
        return _processor.process_table(mini_batch, getattr(mini_batch_context, "partition_key_value", None))
    return _processor.process_batch([os.fspath(path) for path in mini_batch])


def shutdown() -> None:
    """Stop the R session and remove this process's scratch folder."""
    global _processor
    if _processor is not None:
        _processor.close()
        _processor = None
