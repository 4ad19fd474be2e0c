"""What a local job runs over and with: its items, and its own copy of the source directory.

- The input folder is the FileDataset: its files, sorted by path, are the items; given a list of files (a registered
  dataset version's), exactly those (a file added to the folder since is not one; a listed file gone since fails
  alone, in R).
- An input folder holding an ``MLTable`` file (tabular data, whose mini-batches the runtime hands to ``run()`` as
  DataFrames, sized in bytes) is refused: the local engine models file inputs only.
- The source directory is copied for the run, as Azure ML snapshots it for a job: the workers (and R) work in that
  copy, so what a script writes to a relative path never lands in the source directory, and concurrent runs do not
  share a folder.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

from azureml_parallel_r.engine.job import JobSpec, read_json
from azureml_parallel_r.inputs import list_input_files

SNAPSHOT_IGNORED = ("__pycache__", "*.pyc", ".git", ".ipynb_checkpoints")


def job_items(spec: JobSpec) -> list[str]:
    """The job's items, as paths (see the module); ``ValueError`` (or ``OSError``) saying why there are none to run.

    :param spec: the job.
    """
    if os.path.isfile(os.path.join(spec.input_dir, "MLTable")):
        raise ValueError(
            f"{spec.input_dir} holds an MLTable file: a tabular input, whose mini-batches are pandas DataFrames, which "
            "the local engine does not model (it hands run() lists of file paths); give it a folder of files, or run "
            "the job on Azure ML"
        )
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
