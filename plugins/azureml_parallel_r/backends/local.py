"""The local backend: the embedded default. A folder plays the datastore, the local ParallelRunStep engine
plays Azure ML, and a small registry under ``<datastore>/.azureml-local/`` plays the workspace::

    <datastore_root>/r-script-inputs/<date>/...                 inputs
    <datastore_root>/r-script-outputs/<date>/<run id>/          outputs (+ logs/ from the local engine)
    <datastore_root>/.azureml-local/datasets/<name>.json        registered dataset versions
    <datastore_root>/.azureml-local/runs/<run id>.json          submitted runs with their run-key tags
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azureml_parallel_r import status as run_status
from azureml_parallel_r.backends.base import ParallelRunBackend
from azureml_parallel_r.backends.results import FolderStore, collect_results
from azureml_parallel_r.compute.records import LOGS_DIR
from azureml_parallel_r.engine.job import JobSpec, new_run_id, read_json, write_json
from azureml_parallel_r.engine.runs import LocalRun, start_run
from azureml_parallel_r.inputs import InputFolderError, files_gone, is_within, list_input_entries, printable
from azureml_parallel_r.models import (
    LOG_TAIL_CHARS,
    RUN_ID_PLACEHOLDER,
    DatasetRef,
    RegisteredFiles,
    RunRef,
    RunRequest,
    RunResults,
    RunState,
    StorageLocation,
    listing_fingerprint,
)
from azureml_parallel_r.run_settings import DEFAULT_APPEND_ROW_FILE_NAME
from azureml_parallel_r.shipped_code import ENTRY_SCRIPT, INCLUDE_DIR

if TYPE_CHECKING:
    from azureml_parallel_r.preflight import Check

DEFAULT_SOURCE_DIRECTORY = str(INCLUDE_DIR)
REGISTRY = ".azureml-local"
LOG_FILES = ("job_result.txt", "job_error.txt")


def local_results(
    state: RunState,
    output_dir: str,
    logs_dir: str,
    rows_file_name: str,
    dataset: dict[str, Any] | None = None,
    failures_only: bool = False,
) -> RunResults:
    """What a local engine run left in its output folder (rows, failure records, output files, job logs), read by the
    one results reader, :func:`~azureml_parallel_r.backends.results.collect_results`, over the folder. A run whose
    controller died has no rows file: the rows of its completed mini-batches are read from its logs.

    :param state: the run's status.
    :param output_dir: the run's output folder.
    :param logs_dir: the engine's logs folder for the run.
    :param rows_file_name: the append_row file's name.
    :param dataset: the input dataset the run was submitted over (``{"name", "version"}``).
    :param failures_only: its failure records and job logs only (:func:`collect_results`).
    """
    rows_file = rows_file_name
    if not os.path.isfile(os.path.join(output_dir, rows_file)):
        rows_file = os.path.relpath(os.path.join(logs_dir, "sys", f"{rows_file_name}.partial"), output_dir)
    logs = FolderStore(logs_dir)

    def job_logs() -> dict[str, str]:
        return {name: text[-LOG_TAIL_CHARS:] for name in LOG_FILES if (text := logs.read_text(name)) is not None}

    return collect_results(
        state, FolderStore(output_dir), ".", rows_file, job_logs, dataset, failures_only=failures_only
    )


class RunNotFoundError(LookupError):
    """No run with that id was submitted to this local datastore."""


class LocalBackend(ParallelRunBackend):
    """Runs pipelines with the local ParallelRunStep engine over a folder standing in for the datastore.

    :param datastore_root: the folder that plays the datastore.
    :param source_directory: the step's source directory (``include/`` with ``entry/`` and ``r/``).
    :param process_count_per_node: default worker processes when a request leaves it unset.
    :param r_script_dirs: folders besides the source directory that R scripts may come from.
    """

    engine = "local"

    def __init__(
        self,
        datastore_root: str,
        *,
        source_directory: str = DEFAULT_SOURCE_DIRECTORY,
        process_count_per_node: int | None = None,
        r_script_dirs: tuple[str, ...] = (),
        r_packages: tuple[str, ...] = (),
    ) -> None:
        self.root = Path(datastore_root).resolve()
        self.r_packages = tuple(r_packages)
        self.check_loads = True  # this engine's R is this machine's: the script's packages must load here
        self.source_directory = source_directory
        self.r_script_dirs = tuple(r_script_dirs)
        self.process_count_per_node = process_count_per_node
        self.assumed_processes_per_node = process_count_per_node  # what a run's unset count becomes here
        self.registry = self.root / REGISTRY

    def check_connection(self) -> str:
        """The datastore folder exists and a file can be written in it (and is removed again)."""
        if not self.root.is_dir():
            raise NotADirectoryError(f"datastore_root {self.root} does not exist or is not a folder")
        probe = self.root / f".azureml-parallel-r-probe-{os.getpid()}-{time.monotonic_ns()}"
        try:
            probe.write_bytes(b"")
        finally:
            probe.unlink(missing_ok=True)
        return f"datastore folder {self.root} exists and is writable"

    def storage_location(self, path: str) -> StorageLocation:
        return StorageLocation("file", socket.gethostname(), None, str(self._datastore_path(path)))

    def lineage_source(self) -> str:
        return f"file://{socket.gethostname()}{self.root}"

    # -- datasets ---------------------------------------------------------------------------------------

    def register_file_dataset(self, path: str, *, name: str, tags: dict[str, str]) -> DatasetRef:
        """Register the folder as the next version, or reuse the version registered for the same path, date and
        files (same names, sizes and modification times): a folder whose files changed since gets a new
        version, so clearing a DAG run processes what the folder holds now. The version's file list is kept:
        validation checks the files the run was given, not files added later."""
        folder = self._datastore_path(path)
        return self._register(path, name, tags, list_input_entries(str(folder)) if folder.is_dir() else [])

    def register_table_dataset(
        self, path: str, *, name: str, tags: dict[str, str], partition_keys: Sequence[str] = ()
    ) -> DatasetRef:
        """Register the table's folder as :meth:`register_file_dataset` does its files (every file of it, the MLTable
        file included), recording its partitions (read with pandas, as the local engine will cut them); a folder
        without an MLTable file is refused, saying how to make it a table."""
        from azureml_parallel_r.engine.tables import partition_folders
        from azureml_parallel_r.mltable import is_table, not_a_table

        folder = self._datastore_path(path)
        if not folder.is_dir():
            return self._register(path, name, tags, [])
        if not is_table(str(folder)):
            raise not_a_table(path)
        keys = list(partition_keys)
        try:
            found = partition_folders(str(folder), keys) if keys else None
        except ValueError as exc:
            raise InputFolderError(f"the table in {path!r} cannot be read: {exc}") from exc
        return self._register(
            path, name, tags, list_input_entries(str(folder)), kind="table", partition_keys=keys, partitions=found
        )

    def register_file_subset(self, path: str, files: Sequence[str], *, name: str, tags: dict[str, str]) -> DatasetRef:
        """Register exactly ``files`` of the folder (a repair run's failed files) as the next version, reused as
        :meth:`register_file_dataset` reuses one; a file that is no longer there is refused, by name."""
        folder = self._datastore_path(path)
        root = str(folder)  # resolved: a real path
        entries: list[tuple[str, int, int]] = []
        gone: list[str] = []
        outside: list[str] = []
        for relative in sorted(set(files)):
            file = os.path.join(root, relative)
            if not is_within(os.path.realpath(file), root):  # a link out of the folder: not even its type is read
                outside.append(f"{printable(relative)} (a link to {printable(os.path.realpath(file))})")
                continue
            try:
                info = os.stat(file)
            except OSError:
                info = None
            if info is None or not stat.S_ISREG(info.st_mode):
                gone.append(relative)
            else:
                entries.append((relative, info.st_size, info.st_mtime_ns))
        if outside:
            raise InputFolderError(
                f"{len(outside)} of the files to rerun now lead outside {path!r}, and are never "
                f"read: {', '.join(outside[:10])}"
            )
        if gone:
            raise files_gone(path, gone)
        return self._register(path, name, tags, entries)

    def _register(
        self,
        path: str,
        name: str,
        tags: dict[str, str],
        entries: list[tuple[str, int, int]],
        *,
        kind: str = "files",
        partition_keys: list[str] | None = None,
        partitions: list[str] | None = None,
    ) -> DatasetRef:
        """Register ``entries`` (relative path, size, mtime in ns; sorted) of ``path`` as a version, or reuse one; a
        table's version records its kind, keys and partitions too."""
        table: dict[str, Any] = {"kind": kind, "partition_keys": list(partition_keys or []), "partitions": None}
        if partitions is not None:
            table["partitions"] = len(partitions)
        fingerprint = listing_fingerprint(
            [(relative, size, str(mtime)) for relative, size, mtime in entries]
            + ([("", 0, f"{kind}:{','.join(partition_keys or [])}")] if kind != "files" else [])
        )
        versions_file = self.registry / "datasets" / f"{name}.json"
        with self._locked("datasets"):
            versions: list[dict[str, Any]] = (read_json(str(versions_file)) or {}).get("versions", [])
            for version in versions:
                same = version["path"] == path and version["tags"].get("logical_date") == tags.get("logical_date")
                if same and version.get("fingerprint") == fingerprint:
                    known = {k: version[k] for k in table if k in version}
                    return DatasetRef(name, version["version"], path, version["file_count"], reused=True, **known)
            if not entries:  # an empty folder is not registered: Azure ML refuses empty datasets too
                return DatasetRef(name, 0, path, 0, **table)
            number = max((v["version"] for v in versions), default=0) + 1
            record = RegisteredFiles.record(
                path, [(relative, size, str(mtime)) for relative, size, mtime in entries], partitions
            )
            write_json(str(self._files_path(name, number)), record, indent=None)  # compact: a million files
            versions.append(
                {
                    "version": number,
                    "path": path,
                    "file_count": len(entries),
                    "tags": tags,
                    "fingerprint": fingerprint,
                    "registered_at": time.time(),
                    **table,
                }
            )
            write_json(str(versions_file), {"name": name, "versions": versions})
        return DatasetRef(name, number, path, len(entries), **table)

    def _files_path(self, name: str, version: int) -> Path:
        return self.registry / "datasets" / name / f"v{version}.files.json"

    def _files_record(self, dataset: DatasetRef) -> dict[str, Any] | None:
        return read_json(str(self._files_path(dataset.name, dataset.version)))

    def _files_record_name(self, dataset: DatasetRef) -> str:
        return str(self._files_path(dataset.name, dataset.version))

    def current_entries(self, dataset: DatasetRef, files: Sequence[str]) -> Iterator[tuple[str, int, str]]:
        """One ``stat`` per registered file (its size and modification time in ns, as registered): no listing of the
        folder is held in memory."""
        folder = self._datastore_path(dataset.path)
        for relative in files:
            try:
                info = os.stat(folder / relative)
            except OSError:  # gone: nothing to compare
                continue
            yield relative, info.st_size, str(info.st_mtime_ns)

    # -- runs -------------------------------------------------------------------------------------------

    def preflight_checks(self) -> list[Check]:
        """The datastore folder is writable, and this machine's R (and whether it is the compute image's)."""
        from azureml_parallel_r.preflight import CheckFailed, probe
        from azureml_parallel_r.r_scripts import r_version

        def r_here() -> str:
            found = r_version()
            if found is None:
                raise CheckFailed("Rscript is not on PATH", "install R (scripts/setup.sh installs Debian's)")
            said = "; ".join(self.request_warnings_for_r(found))
            return f"R {found}" + (f" ({said})" if said else " (the compute image's)")

        return [
            probe("datastore", "create the folder, or fix the connection's datastore_root", self.check_connection),
            probe("R", "install R", r_here),
        ]

    def request_warnings_for_r(self, local: str | None) -> list[str]:
        """The R-version warning for this machine's R ``local`` (none when it is the compute image's)."""
        from azureml_parallel_r.backends.azure.environment import IMAGE_R_VERSION

        if local is None or local == IMAGE_R_VERSION:
            return []
        return [
            f"this machine's R is {local}, the Azure ML compute image's is {IMAGE_R_VERSION} "
            "(include/environment/Dockerfile): a script and the package versions it gets may behave differently "
            "there than in this local run"
        ]

    def request_warnings(self, request: RunRequest) -> list[str]:
        """This machine's R, when it is not the Azure ML compute image's: a script and its packages tested here may
        behave differently there (``include/environment/Dockerfile``)."""
        from azureml_parallel_r.r_scripts import r_version

        return self.request_warnings_for_r(r_version())

    def submit(self, request: RunRequest) -> RunRef:
        run_id = new_run_id()
        output_path = request.output_path.replace(RUN_ID_PLACEHOLDER, run_id)
        output_dir = self._datastore_path(output_path)
        input_dir = str(self._datastore_path(request.dataset.path))
        files_record = self._files_path(request.dataset.name, request.dataset.version)
        spec = JobSpec(
            run_id=run_id,
            input_dir=input_dir,
            output_dir=str(output_dir),
            entry_script=ENTRY_SCRIPT,
            source_dir=self.source_directory,
            logs_dir=str(output_dir / LOGS_DIR),
            entry_args=tuple(request.entry_arguments(input_root=input_dir)),
            settings=request.settings.with_changes(
                process_count_per_node=request.settings.process_count_per_node or self.process_count_per_node
            ),
            # exactly the registered files: one added to the folder since is not part of this run (a table's files
            # are its MLTable's to name)
            input_files=str(files_record) if files_record.is_file() and not request.dataset.tabular else None,
            partition_keys=tuple(request.dataset.partition_keys),
            table_mini_batch_size=request.mini_batch_data_size if request.dataset.tabular else None,
        )
        write_json(
            str(self.registry / "runs" / f"{run_id}.json"),
            {
                "run_id": run_id,
                "output_path": output_path,
                "logs_dir": spec.logs_dir,
                "rows_file_name": request.settings.rows_file_name,
                "run_key": request.run_key,
                "experiment_name": request.experiment_name,
                "tags": request.tags,
                "dataset": request.dataset.to_dict(),
                "submitted_at": time.time(),
            },
        )
        try:
            start_run(spec)
        except BaseException:
            (self.registry / "runs" / f"{run_id}.json").unlink(missing_ok=True)
            raise
        return self._ref(run_id, output_path)

    def find_run(self, run_key: dict[str, str], *, experiment_name: str = "") -> RunRef | None:
        folder = self.registry / "runs"
        records = [read_json(str(path)) for path in folder.glob("*.json")] if folder.is_dir() else []
        matching = sorted((r for r in records if r and r["run_key"] == run_key), key=lambda r: -r["submitted_at"])
        for record in matching:
            if self.get_status(record["run_id"]).status not in run_status.UNSUCCESSFUL:
                return self._ref(record["run_id"], record["output_path"], reattached=True)
        return None

    def get_status(self, run_id: str) -> RunState:
        state = self._local_run(run_id).state()
        return RunState(
            run_id=run_id,
            status=state.status,
            message=state.message,
            counts=state.counts,
            started_at=state.started_at,
            ended_at=state.ended_at,
            cpu_seconds=state.cpu_seconds,
        )

    def cancel(self, run_id: str) -> RunState:
        self._local_run(run_id).cancel()
        return self.get_status(run_id)

    def fetch_results(self, run_id: str, *, failures_only: bool = False) -> RunResults:
        record = self._record(run_id)
        dataset = record.get("dataset") or {}
        return local_results(
            self.get_status(run_id),
            str(self._datastore_path(record["output_path"])),
            record["logs_dir"],
            record.get("rows_file_name", DEFAULT_APPEND_ROW_FILE_NAME),
            {"name": dataset["name"], "version": dataset["version"]} if "name" in dataset else None,
            failures_only,
        )

    def write_output_file(self, run_id: str, name: str, content: bytes) -> str:
        target = self._datastore_path(self._record(run_id)["output_path"]) / name
        tmp = target.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, target)
        return str(target)

    def _output_store(self) -> FolderStore:
        return FolderStore(str(self.root))

    def output_dir(self, run_id: str) -> str:
        """The local folder holding the run's outputs."""
        return str(self._datastore_path(self._record(run_id)["output_path"]))

    # -- helpers ----------------------------------------------------------------------------------------

    def _ref(self, run_id: str, output_path: str, *, reattached: bool = False) -> RunRef:
        url = (self._datastore_path(output_path) / LOGS_DIR).as_uri()
        return RunRef(run_id=run_id, url=url, output_path=output_path, engine=self.engine, reattached=reattached)

    def _record(self, run_id: str) -> dict[str, Any]:
        record = read_json(str(self.registry / "runs" / f"{os.path.basename(run_id)}.json"))
        if record is None:
            raise RunNotFoundError(f"no local run {run_id!r} under {self.registry / 'runs'}")
        return record

    def _local_run(self, run_id: str) -> LocalRun:
        return LocalRun(run_id, self._record(run_id)["logs_dir"])

    def _datastore_path(self, path: str) -> Path:
        """Resolve a datastore path under the root; refuse paths that leave it."""
        resolved = (self.root / path.lstrip("/")).resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise ValueError(f"datastore path {path!r} leaves the datastore root {self.root}")
        return resolved

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        self.registry.mkdir(parents=True, exist_ok=True)
        with open(self.registry / f".{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
