"""What a local job runs over and with: its items, and its own copy of the source directory.

- The input folder is the FileDataset: its files, sorted by path, are the items; given a list of files (a registered
  dataset version's), exactly those (a file added to the folder since is not one; a listed file gone since fails
  alone, in R).
- An input folder holding an ``MLTable`` file is a table, whose mini-batches the runtime hands to ``run()`` as
  DataFrames, sized in bytes or by partition; partition keys on a file input group its files (:mod:`.tables`).
- The source directory is copied for the run, as Azure ML snapshots it for a job: the workers (and R) work in that
  copy, so what a script writes to a relative path never lands in the source directory, and concurrent runs do not
  share a folder.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

from azureml_parallel_r.engine.job import JobSpec, read_json
from azureml_parallel_r.engine.tables import MiniBatch, file_partitions, table_batches
from azureml_parallel_r.inputs import list_input_files
from azureml_parallel_r.mltable import is_table

SNAPSHOT_IGNORED = ("__pycache__", "*.pyc", ".git", ".ipynb_checkpoints")


def job_batches(spec: JobSpec, mini_batch_size: int, workdir: str) -> list[MiniBatch]:
    """The job's mini-batches (see the module); ``ValueError`` (or ``OSError``) saying why there are none to run.

    :param spec: the job.
    :param mini_batch_size: files per mini-batch of a file input without partition keys.
    :param workdir: the run's temporary folder (a table's mini-batches are written there).
    """
    if is_table(spec.input_dir):
        return table_batches(
            spec.input_dir, os.path.join(workdir, "tables"), spec.partition_keys, spec.table_mini_batch_size
        )
    files = job_items(spec)
    if spec.partition_keys:
        return file_partitions(spec.input_dir, files, spec.partition_keys, spec.partition_format)
    return [
        MiniBatch(items=files[i : i + mini_batch_size], count=len(files[i : i + mini_batch_size]))
        for i in range(0, len(files), mini_batch_size)
    ]


TABLE_FILE_SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl")
HINT_SAMPLE = 1000  # the files looked at for the hint: a sample, not the whole listing


def table_files_hint(spec: JobSpec, batches: list[MiniBatch]) -> str | None:
    """What to tell a user whose file input is all table files (``.csv``, ``.tsv``, ``.parquet``, ``.jsonl``) with no
    MLTable file: ``run()`` gets lists of paths, which an entry script written for DataFrames fails on, try after
    try. None when the input is a table, is partitioned, or holds other files (of the first :data:`HINT_SAMPLE`).

    :param spec: the job.
    :param batches: its mini-batches.
    """
    if is_table(spec.input_dir) or spec.partition_keys:
        return None
    sample = [path for batch in batches[:HINT_SAMPLE] for path in batch.items][:HINT_SAMPLE]
    if not sample or not all(path.lower().endswith(TABLE_FILE_SUFFIXES) for path in sample):
        return None
    return (
        f"note: {spec.input_dir} holds table files ({sample[0].rsplit('.', 1)[-1]}) but no MLTable file, so it is a "
        "folder of files: run() gets lists of their paths, not DataFrames. To hand run() DataFrames, add an MLTable "
        "file (paths and a read_delimited or read_parquet transformation; docs/r-script.md)"
    )


def job_items(spec: JobSpec) -> list[str]:
    """A file input's items, as paths (see the module); ``ValueError`` (or ``OSError``) saying why there are none.

    :param spec: the job.
    """
    if spec.input_files is None:
        return list_input_files(spec.input_dir)
    recorded = read_json(spec.input_files)
    if recorded is None:
        raise ValueError(f"the list of input files {spec.input_files} does not exist")
    return [os.path.join(spec.input_dir, relative) for relative in recorded["files"]]


def snapshot_source_directory(spec: JobSpec, folder: str) -> JobSpec:
    """Copy the spec's source directory to ``folder`` (caches and ``.git`` left out, links kept) and return the spec
    with ``folder`` as its source directory, as Azure ML gives each job its own snapshot of the step's source
    directory to work in.

    :param spec: the job.
    :param folder: where the copy goes (a new folder).
    """
    shutil.copytree(spec.source_dir, folder, symlinks=True, ignore=shutil.ignore_patterns(*SNAPSHOT_IGNORED))
    return dataclasses.replace(spec, source_dir=folder)
