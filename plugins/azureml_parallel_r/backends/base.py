"""The backend interface the operators, sensor and trigger talk to: one engine behind it.

An engine registers a file dataset, submits a ParallelRunStep pipeline over it, reports the run's status,
cancels it and fetches its results. The values that cross the interface are in :mod:`azureml_parallel_r.models`.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from azureml_parallel_r.backends.datastore_files import count_output_files, read_output_file, stage_files
from azureml_parallel_r.backends.script_checks import ScriptChecks
from azureml_parallel_r.models import (
    DatasetFilesMissingError,
    DatasetRef,
    RegisteredFiles,
    RunRef,
    RunRequest,
    RunResults,
    RunState,
    StorageLocation,
    error_text,
)

if TYPE_CHECKING:
    from azureml_parallel_r.preflight import Check


class ParallelRunBackend(abc.ABC):
    """One engine: registers datasets, submits and watches ParallelRunStep pipeline runs."""

    engine: str = ""
    source_directory: str = ""
    r_script_dirs: tuple[str, ...] = ()
    r_packages: tuple[str, ...] = ()  # the connection's r_packages (set by the engine's constructor): every script's
    # worker processes per node when a run leaves process_count_per_node unset, as far as known before it runs
    assumed_processes_per_node: int | None = None  # None: this machine's cores

    def processes_per_node(self, requested: int | None) -> int:
        """The worker processes per node a run will have, for choosing its mini-batch size.

        :param requested: the run's ``process_count_per_node`` (None: the engine's default).
        """
        return requested or self.assumed_processes_per_node or os.cpu_count() or 1

    def prepare(self, request: RunRequest, *, choose_mini_batch_size: bool = False) -> RunRequest:
        """The request as this engine runs it, made in one place: the connection's R packages before the request's own
        (the entry script reads both), and, when the user left ``mini_batch_size`` unset, the size for its files over
        this engine's worker processes (:func:`~azureml_parallel_r.run_settings.default_mini_batch_size`).

        :param request: the run as the operator built it.
        :param choose_mini_batch_size: whether the mini-batch size is this engine's to choose.
        """
        from azureml_parallel_r.run_settings import default_mini_batch_size

        settings = request.settings
        if choose_mini_batch_size:
            processes = settings.node_count * self.processes_per_node(settings.process_count_per_node)
            size = default_mini_batch_size(request.dataset.file_count, processes)
            settings = settings.with_changes(mini_batch_size=size)
        return dataclasses.replace(request, r_packages=[*self.r_packages, *request.r_packages], settings=settings)

    check_loads: bool = False  # whether the R packages must load with this machine's R (the local engine's R)

    def script_checks(self) -> ScriptChecks:
        """This engine's R-script checks (:class:`~azureml_parallel_r.backends.script_checks.ScriptChecks`)."""
        return ScriptChecks(self.source_directory, tuple(self.r_script_dirs), self.check_loads)

    def check_r_script(self, r_script: str, r_packages: Sequence[str] = ()) -> str:
        """Before submitting: the R script resolves under the source directory (or an allowed folder), exists,
        parses where R is installed, and its package declarations read (:meth:`ScriptChecks.check`). Returns its path;
        raises ``RScriptError`` saying what to fix.

        :param r_script: the run's ``r_script`` (relative to the source directory, or absolute).
        :param r_packages: the run's plain list of R packages.
        """
        return self.script_checks().check(r_script, r_packages)

    @abc.abstractmethod
    def preflight_checks(self) -> list[Check]:
        """The engine's checks before a first run, for the preflight and the connection's Test button
        (:mod:`azureml_parallel_r.preflight`): each says what it found, or why it failed and what to do."""

    def request_warnings(self, request: RunRequest) -> list[str]:
        """Before submitting: what will run differently from what the user may expect (logged as warnings; nothing is
        refused). The base has nothing to say.

        :param request: the run.
        """
        return []

    def check_request(self, request: RunRequest) -> None:
        """Before submitting: raise ``ValueError`` saying what to fix when this engine cannot run ``request`` as it is
        (a setting its service would refuse). Nothing is created. Every request this interface can express runs on
        the local engine, so the base checks nothing.

        :param request: the run.
        """
        return None

    def declared_r_packages(self, request: RunRequest) -> list[dict[str, Any]]:
        """The R packages declared for the request's script (next to it, and its ``r_packages``), as plain dicts: what
        the Azure engines build into the compute image.

        :param request: the run.
        """
        return self.script_checks().declared(request.r_script, request.r_packages)

    @abc.abstractmethod
    def storage_location(self, path: str) -> StorageLocation:
        """Where a datastore path (``r-script-inputs/2026-11-24``) lives, for lineage.

        :param path: a path on the engine's datastore.
        """

    @abc.abstractmethod
    def lineage_source(self) -> str:
        """The engine's own name for where its runs are (a workspace, a local datastore), for lineage."""

    @abc.abstractmethod
    def register_file_dataset(self, path: str, *, name: str, tags: dict[str, str]) -> DatasetRef:
        """Register the files under a datastore path as a FileDataset version, or reuse the version
        registered earlier for the same path and ``tags["logical_date"]``.

        :param path: datastore path of the input folder.
        :param name: the dataset's name.
        :param tags: tags recorded with the version (logical date, path, run key).
        """

    def register_table_dataset(
        self, path: str, *, name: str, tags: dict[str, str], partition_keys: Sequence[str] = ()
    ) -> DatasetRef:
        """Register a folder with an ``MLTable`` file as a tabular dataset version (v2: a data asset of type
        ``mltable``; v1: a TabularDataset), or reuse the version registered for the same path, date, files and keys;
        with partition keys, its partitions are recorded: the items its runs must account for.

        :param path: datastore path of the table's folder.
        :param name: the dataset's name.
        :param tags: tags recorded with the version (logical date, path, run key).
        :param partition_keys: the columns whose values make its partitions (none: mini-batches by size).
        """
        raise NotImplementedError(f"engine {self.engine} does not register tables")

    def register_file_subset(self, path: str, files: Sequence[str], *, name: str, tags: dict[str, str]) -> DatasetRef:
        """Register some files of a datastore folder (a repair run's: the failed files of an earlier run) as a
        dataset version whose files keep their paths relative to the folder.

        On blob storage (the Azure ML engines) the files are copied under ``RERUNS_ROOT/<date>/<id>/`` with their
        relative paths, and that folder is registered as any input folder is: the run then sees exactly the layout
        of a normal run (a ``uri_folder`` or a FileDataset of a folder, mounted as documented), where a dataset of a
        file list would be mounted without the files' common prefix ("A common prefix will be removed from the file
        paths based on how data source was specified": ``FileDataset.to_path``, azureml/data/file_dataset.py; for a v2
        ``mltable`` of files no source says how a mount lays them out). The id is derived from the folder, the files
        and the run key, so a retried task reuses the copies it made; a file already there with its size is not
        copied again.

        :param path: datastore path of the input folder.
        :param files: the files, relative to it.
        :param name: the dataset's name.
        :param tags: tags recorded with the version (``logical_date`` names the staging folder's date).
        """
        staging = stage_files(self._output_store(), path, files, tags)
        return self.register_file_dataset(staging, name=name, tags={**tags, "path": staging, "rerun_source": path})

    def list_dataset_files(self, dataset: DatasetRef) -> list[str]:
        """The dataset version's files as registered, relative to its folder, sorted (a file added to the folder later
        is not one); :class:`DatasetFilesMissingError` when the registered list is gone.

        :param dataset: the version.
        """
        return self.registered_files(dataset).files

    def registered_files(self, dataset: DatasetRef) -> RegisteredFiles:
        """The dataset version's files with their sizes and version stamps at registration. The registered list is the
        truth of what a run was given: without it (deleted, archived) nothing else stands in (the folder's files now
        may be others), so :class:`DatasetFilesMissingError` says so.

        :param dataset: the version (version 0: a folder that was empty or missing, which has no files).
        """
        if dataset.version == 0:
            return RegisteredFiles([])
        record = self._files_record(dataset)
        if record is None:
            where = self._files_record_name(dataset)
            raise DatasetFilesMissingError(
                f"the registered file list of dataset {dataset.name} v{dataset.version} ({where}) is gone: which "
                "files its runs were given cannot be known, and the folder's files now may be others. "
                "Register the folder again (clear register_dataset) to process it as it is now"
            )
        return RegisteredFiles.from_record(record)

    def changed_files(self, dataset: DatasetRef, registered: RegisteredFiles) -> dict[str, str]:
        """The registered files whose size or version stamp is no longer what was registered, with what changed: a file
        rewritten, appended to or still being uploaded at registration, whose results may be for other content.

        :param dataset: the version.
        :param registered: its :meth:`registered_files`.
        """
        return registered.changed(self.current_entries(dataset, registered.files))

    @abc.abstractmethod
    def _files_record(self, dataset: DatasetRef) -> dict[str, Any] | None:
        """The registration's record of a version's files (:meth:`RegisteredFiles.record`), or None when it is gone."""

    @abc.abstractmethod
    def _files_record_name(self, dataset: DatasetRef) -> str:
        """Where a version's record is kept, for messages."""

    @abc.abstractmethod
    def current_entries(self, dataset: DatasetRef, files: Sequence[str]) -> Iterator[tuple[str, int, str]]:
        """(relative path, size, version stamp) of the version's files as they are now in its folder, in any order; a
        file that is gone is left out (and files not in ``files`` may be yielded).

        :param dataset: the version.
        :param files: its registered files.
        """

    @abc.abstractmethod
    def submit(self, request: RunRequest) -> RunRef:
        """Build and submit the pipeline; return at once."""

    @abc.abstractmethod
    def find_run(self, run_key: dict[str, str], *, experiment_name: str = "") -> RunRef | None:
        """Return the live or finished run submitted with ``run_key`` (not a failed or canceled one).

        :param run_key: the submission's key (:attr:`RunRequest.run_key`).
        :param experiment_name: where it was submitted ("" for the connection's experiment).
        """

    @abc.abstractmethod
    def get_status(self, run_id: str) -> RunState:
        """Return the run's current status."""

    @abc.abstractmethod
    def cancel(self, run_id: str) -> RunState:
        """Cancel the run (a no-op for a finished one) and return its status."""

    @abc.abstractmethod
    def fetch_results(self, run_id: str, *, failures_only: bool = False) -> RunResults:
        """Collect the run's rows, failure records, output file list and job logs.

        :param run_id: the pipeline run id.
        :param failures_only: its failure records and job logs only (what a failure summary needs): no rows file
            and no listing of ``results/``, which grows with the files that succeeded.
        """

    @abc.abstractmethod
    def write_output_file(self, run_id: str, name: str, content: bytes) -> str:
        """Write a file into the run's output folder (``validation.json``); return its location."""

    def read_output_text(self, output_path: str, name: str) -> str | None:
        """A file of a run's output folder (``validation-failures.jsonl``) as text, or None when it is not there.

        :param output_path: the run's output folder on the datastore (its record's ``output_path``).
        :param name: the file's name in that folder (no ``/``: only the folder's own files are read).
        """
        return read_output_file(self._output_store(), output_path, name)

    def count_output_files(self, output_path: str, folder: str) -> int:
        """How many files a folder of a run's output folder holds, from a listing (the failure records so far).

        :param output_path: the run's output folder on the datastore.
        :param folder: the folder's name in it (``failures``).
        """
        return count_output_files(self._output_store(), output_path, folder)

    def _output_store(self) -> Any:
        """The engine's datastore as a :class:`~azureml_parallel_r.backends.results.ResultStore`."""
        raise NotImplementedError(f"engine {self.engine} reads no output files")

    def describe_failure(self, run_id: str, reason: str = "") -> str:
        """The run's failure summary (first failed files with their R stderr tails, job error log); never raises.

        :param run_id: the pipeline run id.
        :param reason: why the wait ended (the run's status message or the trigger's error): always in the text.
        """
        try:
            summary = self.fetch_results(run_id, failures_only=True).failure_summary()
        except Exception as exc:
            return f"Pipeline run {run_id} did not finish: {reason} (its results could not be read: {error_text(exc)})"
        # the reason comes first whenever the summary does not already say it: a waiting error (a connection that
        # cannot be read, a status read that failed) leaves a run that is still "Running", which alone misleads
        return summary if not reason or reason in summary else f"{reason}\n{summary}"
