"""The plain values of a run: what crosses the backend interface (:mod:`azureml_parallel_r.backends.base`) and what
validation, lineage and the operators work with.

Everything here is plain data (dataclasses with ``to_dict``/``from_dict``), so it travels through XCom and trigger
serialization unchanged. Standard library only.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from azureml_parallel_r import status as run_status
from azureml_parallel_r.compute.entry_settings import DEFAULT_R_SCRIPT, R_MODES
from azureml_parallel_r.run_settings import ParallelRunSettings, first_task_creation_timeout

T = TypeVar("T")

RUN_ID_PLACEHOLDER = "{run-id}"
LOG_TAIL_CHARS = 8000  # how much of the end of each job log a RunResults keeps


class _Plain:
    """to_dict/from_dict for the dataclasses below (unknown keys are ignored, so old XComs still load)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class DatasetRef(_Plain):
    """A registered FileDataset version.

    :param name: the dataset's registered name.
    :param version: its version number.
    :param path: the datastore path it was created from (``r-script-inputs/2026-11-24``).
    :param file_count: how many files it holds (0 for an empty or missing folder).
    :param reused: True when an existing version for the same path and date was returned.
    :param rerun_of: for the dataset of a repair run (the failed files of an earlier run), that run:
        ``dag_run_id``, ``run_id``, ``output_path``, ``date``, ``failed_files``.
    :param kind: ``files`` (a FileDataset, a ``uri_folder``: each file an item) or ``table`` (a folder with an
        ``MLTable`` file: a TabularDataset, an ``mltable`` input, whose mini-batches are DataFrames).
    :param partition_keys: a table's partition keys (columns): each partition is one mini-batch and one item.
    :param partitions: how many partitions the table had at registration (with partition keys).
    """

    name: str
    version: int
    path: str
    file_count: int
    reused: bool = False
    rerun_of: dict[str, Any] | None = None
    kind: str = "files"
    partition_keys: list[str] = field(default_factory=list)
    partitions: int | None = None

    @property
    def tabular(self) -> bool:
        return self.kind == "table"


@dataclass(frozen=True)
class RunRequest(_Plain):
    """Everything needed to build and submit the ParallelRunStep pipeline.

    :param dataset: the input FileDataset.
    :param output_path: datastore path of the outputs; ``{run-id}`` is replaced by the id of the run that
        writes them (the local run; on Azure ML the step run, chosen and recorded at submission).
    :param run_key: what identifies the submission (dag_id, Airflow run_id, task_id, the dataset version, the
        submission attempt and token): a run is reattached to only with the same key.
    :param r_script: the R script, relative to the source directory or absolute.
    :param r_args: extra arguments for the R script.
    :param r_packages: R packages the script needs besides those declared next to it (``name``,
        ``name==version``, ``name>=version``).
    :param r_mode: ``worker`` or ``per-file``.
    :param settings: the run's ParallelRunConfig settings (one type for both engines).
    :param experiment_name: Azure ML experiment ("" for the connection's; the local engine records it).
    :param tags: extra run tags.
    :param job_identity: the identity the Azure ML job reads and writes data with
        (:mod:`azureml_parallel_r.job_identity`; None: the connection's ``job_identity``, else Azure's default).
    :param mini_batch_data_size: a table's ``mini_batch_size`` without partition keys: an approximate data size
        (``1024``, ``100 kb``, ``10MB``, ``1GB``; None: the runtime's default, 1 MB). A file input's is the settings'.
    """

    dataset: DatasetRef
    output_path: str
    run_key: dict[str, str]
    r_script: str = DEFAULT_R_SCRIPT
    r_args: list[str] = field(default_factory=list)
    r_packages: list[str] = field(default_factory=list)
    r_mode: str = R_MODES[0]
    settings: ParallelRunSettings = field(default_factory=ParallelRunSettings)
    experiment_name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    job_identity: str | None = None
    mini_batch_data_size: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRequest:
        request = super().from_dict(data)
        if isinstance(request.dataset, dict):
            object.__setattr__(request, "dataset", DatasetRef.from_dict(request.dataset))
        if isinstance(request.settings, dict):
            object.__setattr__(request, "settings", ParallelRunSettings.from_dict(request.settings))
        return request

    def entry_arguments(self, *, input_root: str | None = None, input_name: str | None = None) -> list[str]:
        """The entry script's own arguments (``include/entry/batch_wrapper.py``).

        :param input_root: where the dataset's files appear on the compute, when known in advance.
        :param input_name: the named input whose mount path the runtime exposes (Azure ML).
        """
        file_timeout = self.settings.file_timeout or 0
        args = ["--r-script", self.r_script, "--r-mode", self.r_mode, "--file-timeout", f"{file_timeout:g}"]
        if self.dataset.tabular:  # run() gets DataFrames: there is no folder of files to find
            args += ["--input-kind", "table"]
        else:
            args += ["--input-root", input_root] if input_root else []
            args += ["--input-name", input_name] if input_name else []
        args += [f"--r-package={package}" for package in self.r_packages]
        first_task = first_task_creation_timeout(self.dataset.file_count)
        if first_task is not None:  # the runtime's own (predefined) argument: a large input takes long to list
            args += ["--first_task_creation_timeout", str(first_task)]
        return args + [f"--r-arg={arg}" for arg in self.r_args]


@dataclass(frozen=True)
class RunRef(_Plain):
    """A submitted pipeline run.

    :param run_id: the pipeline run id.
    :param url: where to look at it (Azure ML studio, or the local logs folder).
    :param output_path: datastore path of its outputs (run id filled in).
    :param engine: ``local`` or ``azureml``.
    :param reattached: True when an existing run with the same run key was found instead of submitting.
    """

    run_id: str
    url: str
    output_path: str
    engine: str
    reattached: bool = False


@dataclass(frozen=True)
class RunState(_Plain):
    """A run's status.

    :param run_id: the pipeline run id.
    :param status: one of :data:`azureml_parallel_r.status.ALL`.
    :param message: why it is in this state (the failure reason for Failed).
    :param counts: file and mini-batch counters, when the engine knows them.
    :param started_at: epoch seconds.
    :param ended_at: epoch seconds, for a terminal run.
    :param cpu_seconds: the CPU time its processes used, where the engine measures it (the local engine, once ended).
    """

    run_id: str
    status: str
    message: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    started_at: float | None = None
    ended_at: float | None = None
    cpu_seconds: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in run_status.TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == run_status.FINISHED


@dataclass(frozen=True)
class StorageLocation(_Plain):
    """Where a datastore path lives, in the terms lineage names it by (OpenLineage's dataset naming).

    :param scheme: ``file`` (a folder of this machine), ``wasbs`` (Azure Blob Storage) or ``abfss`` (ADLS Gen2).
    :param authority: the host name (``file``) or the storage account's name.
    :param container: the blob container or ADLS file system (None for ``file``).
    :param path: the path: absolute for ``file``, else within the container.
    """

    scheme: str
    authority: str
    container: str | None
    path: str


@dataclass
class RunResults(_Plain):
    """What a run left behind, for the sensor's failure summary and the output validation.

    :param state: the run's final status.
    :param rows: lines of the append_row file (empty when it was not written); read as iterated
        (:class:`Streamed`) when they come from a run's storage.
    :param failures: failure records from ``failures/``, by input path relative to the dataset root.
    :param output_files: every file under ``results/``, relative to the run's output folder; listed as iterated.
    :param logs: the job's own logs by name (``job_result.txt``, ``job_error.txt``, ...), tails only;
        ``step_error.txt`` is the error the service recorded for a step that failed before its runtime wrote logs.
    :param dataset: the input dataset version the run recorded when it was submitted (``{"name", "version"}``;
        None when it records none).
    """

    state: RunState
    rows: Sequence[str] | Streamed = field(default_factory=list)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    output_files: Sequence[str] | Streamed = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    dataset: dict[str, Any] | None = None

    def failure_summary(self, limit: int = 5) -> str:
        """A readable account of why files failed: the first ``limit`` files with their R stderr tails."""
        from azureml_parallel_r.inputs import printable

        lines = [f"Pipeline run {self.state.run_id} is {self.state.status}: {self.state.message}".rstrip(": ")]
        if self.failures:
            lines.append(f"{len(self.failures)} file(s) failed; the first {min(limit, len(self.failures))}:")
            for relative, record in sorted(self.failures.items())[:limit]:
                # a name or an error may hold line breaks: each stays on its line, escaped
                lines.append(
                    f"- {printable(relative)} ({record.get('kind', 'error')}, attempt "
                    f"{record.get('attempt', '?')}): {printable(str(record.get('error')))}"
                )
                tail = (record.get("stderr_tail") or "").strip()
                if tail:
                    lines.extend("    | " + printable(line) for line in tail.splitlines()[-10:])
        for name in ("step_error.txt", "job_error.txt", "job_result.txt"):
            if self.logs.get(name) and self.state.status != run_status.FINISHED:
                lines.append(f"--- {name} ---")
                lines.extend("    " + printable(line) for line in self.logs[name].strip().splitlines()[-15:])
        return "\n".join(lines)


def error_text(error: BaseException) -> str:
    """``Type: message`` for any exception. Some azureml exceptions fail in ``str()`` (a ServiceException
    without details), so it is never called unguarded."""
    try:
        text = str(error)
    except Exception:
        text = getattr(error, "message", "") or ""
    return f"{type(error).__name__}: {text}".rstrip(": ")


def listing_fingerprint(entries: list[tuple[str, int, str]]) -> str:
    """A short fingerprint of a folder's listing: (relative path, size, version stamp: mtime or ETag) per file.
    Registering a folder again reuses its dataset version only when the fingerprint is the same."""
    import hashlib

    digest = hashlib.sha256()
    for relative, size, stamp in sorted(entries):
        digest.update(f"{relative}\0{size}\0{stamp}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


class DatasetFilesMissingError(LookupError):
    """A registered dataset version's file list is gone: which files its runs were given cannot be known."""


@dataclass(frozen=True)
class RegisteredFiles:
    """The files of a registered dataset version, as its registration recorded them (``v<version>.files.json``): each
    file's path relative to the version's folder, sorted, with its size and version stamp (the modification time in
    ns on a local datastore, the ETag on blob storage) at registration. :meth:`record` and :meth:`from_record` are the
    one definition of that record, for every engine. Sizes and stamps are kept as 64-bit arrays (a stamp as its hash),
    so that a million files cost 16 MB beyond their names.

    :param files: the files, relative to the folder, sorted.
    :param sizes: their sizes in bytes (None: a record from before sizes were kept).
    :param stamps: the hashes of their version stamps (None likewise).
    :param partitions: a table's partitions at registration, as their outputs' folders
        (:func:`~azureml_parallel_r.compute.tables.partition_path`), sorted: the items its runs have (None: files).
    """

    files: list[str]
    sizes: array | None = None
    stamps: array | None = None
    partitions: list[str] | None = None

    @property
    def items(self) -> list[str]:
        """What a run over the version must account for: its partitions (a partitioned table), else its files."""
        return self.files if self.partitions is None else self.partitions

    @staticmethod
    def record(
        path: str, entries: Iterable[tuple[str, int, str]], partitions: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The record a registration keeps: ``{"path", "files", "sizes", "stamps"}``, sorted by path, and a table's
        ``partitions``.

        :param path: the version's folder on the datastore.
        :param entries: (relative path, size, stamp) per file, in any order.
        :param partitions: a partitioned table's partitions (their outputs' folders).
        """
        ordered = sorted(entries)
        record: dict[str, Any] = {
            "path": path,
            "files": [e[0] for e in ordered],
            "sizes": [int(e[1]) for e in ordered],
            "stamps": [str(e[2]) for e in ordered],
        }
        if partitions is not None:
            record["partitions"] = sorted(partitions)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RegisteredFiles:
        """From a kept record (one written before sizes were kept has only ``files``).

        :param record: the parsed record.
        """
        files, sizes, stamps = list(record["files"]), record.get("sizes"), record.get("stamps")
        partitions = sorted(record["partitions"]) if isinstance(record.get("partitions"), list) else None
        if not (isinstance(sizes, list) and isinstance(stamps, list) and len(sizes) == len(stamps) == len(files)):
            return cls(sorted(files), partitions=partitions)
        if any(files[i] > files[i + 1] for i in range(len(files) - 1)):  # written sorted; sorted again if not
            ordered = sorted(zip(files, sizes, stamps, strict=True))
            files, sizes, stamps = [e[0] for e in ordered], [e[1] for e in ordered], [e[2] for e in ordered]
        return cls(files, array("q", map(int, sizes)), array("q", (hash(str(stamp)) for stamp in stamps)), partitions)

    def changed(self, current: Iterable[tuple[str, int, str]]) -> dict[str, str]:
        """The registered files whose size or version stamp is not what was registered, with what changed, from the
        current (relative path, size, stamp) of files in the folder. Files not registered are ignored, and a
        registered file missing from ``current`` is not one: nothing can be said of content that is gone. Empty for
        a record without sizes.

        :param current: the folder's files now, in any order.
        """
        if self.sizes is None or self.stamps is None:
            return {}
        changed: dict[str, str] = {}
        for relative, size, stamp in current:
            i = bisect.bisect_left(self.files, relative)
            if i == len(self.files) or self.files[i] != relative:
                continue
            if int(size) != self.sizes[i]:
                changed[relative] = (
                    f"its size changed from {self.sizes[i]} to {size} bytes after it was registered, "
                    "so the run may have read other content than was registered"
                )
            elif hash(str(stamp)) != self.stamps[i]:
                changed[relative] = (
                    "it was modified after it was registered (same size), so the run may have read "
                    "other content than was registered"
                )
        return changed


class Streamed:
    """Lines or names read again from where they are each time they are iterated (a rows file, a listing of
    ``results/``): a run's outputs can hold more than should be kept in memory. ``len``, indexing and ``==`` read
    it through (for small results and tests); validation only iterates.

    :param source: returns a fresh iterator over the items.
    """

    def __init__(self, source: Callable[[], Iterable[str]]) -> None:
        self._source = source

    def __iter__(self) -> Iterator[str]:
        return iter(self._source())

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __getitem__(self, index: int) -> str:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list | tuple | Streamed):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Streamed({self._source!r})"


def row_lines(chunks: Iterable[str]) -> Iterator[str]:
    """The rows of an append_row file read in chunks: one per ``\\n``-terminated line, blank lines skipped. Never
    ``str.splitlines``, which also splits on U+2028, U+0085 and other Unicode line breaks that a row's JSON may hold.

    :param chunks: the file's text, in pieces of any size.
    """
    pending = ""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split("\n")
        for line in lines:
            if line.strip():
                yield line.rstrip("\r")
    if pending.strip():
        yield pending.rstrip("\r")


def split_rows(text: str) -> list[str]:
    """The rows of an append_row file's whole text (:func:`row_lines`)."""
    return list(row_lines((text,)))


def failure_key(name: str, record: dict[str, Any]) -> str:
    """The input path a failure record is about: the record says so (always, for hashed file names), else its
    file name under ``failures/`` without ``.json``."""
    relative = record.get("relative_path") if isinstance(record, dict) else None
    return relative if isinstance(relative, str) and relative else name[: -len(".json")]
