"""One local job: what to run (:class:`JobSpec`) and where its state lives (the run folder files)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from azureml_parallel_r.compute.records import FAILURES_DIR, RESULTS_DIR, SPEC_FILE
from azureml_parallel_r.run_settings import ParallelRunSettings

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # on PYTHONPATH
CANCEL_FILE = "cancel.request"  # written by whoever cancels; the controller polls for it


def new_run_id(prefix: str = "local") -> str:
    """Return a fresh run id in the style of Azure ML's (``local_20261124_171500_1a2b3c4d``)."""
    return f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(4)}"


def write_json(path: str, data: Any, indent: int | None = 1) -> None:
    """Replace ``path`` with ``data`` as JSON in one rename, so readers never see half a file.

    :param path: destination; its folder is created when missing.
    :param data: anything ``json.dumps`` accepts.
    :param indent: as ``json.dump``'s (None: compact, for long lists).
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=indent, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a full disk: no half-written file left beside ``path``
            os.remove(tmp)
        raise


def overwrite_json(path: str, data: Any) -> None:
    """Write ``data`` as JSON over the existing file ``path``, in place, padded with spaces to its old length: no new
    file and, while the text fits the blocks the file has, no new space. The last resort for a run's final status
    on a full disk (a reader that meets the write half done reads again: see ``LocalRun.state``).

    :param path: an existing file.
    :param data: anything ``json.dumps`` accepts.
    """
    text = json.dumps(data, ensure_ascii=False).encode("utf-8")
    with open(path, "r+b") as handle:
        handle.write(text + b" " * max(0, os.fstat(handle.fileno()).st_size - len(text)))


def read_json(path: str) -> dict[str, Any] | None:
    """Return the JSON object in ``path``, or ``None`` when the file does not exist yet."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class JobSpec:
    """Everything one local ParallelRunStep job needs.

    :param run_id: the run's id.
    :param input_dir: the FileDataset: every file below this folder is one item.
    :param output_dir: the step's output folder (``AZUREML_BI_OUTPUT_PATH`` for the entry script).
    :param entry_script: the entry script, relative to ``source_dir`` or absolute.
    :param source_dir: the step's source directory (put on ``sys.path``, the workers' working folder).
    :param logs_dir: where status, progress and per-process logs go (Azure's ``logs/`` layout).
    :param entry_args: arguments for the entry script (read with ``parse_known_args``).
    :param settings: the ParallelRunConfig knobs.
    :param input_files: a JSON file ``{"files": [paths relative to input_dir]}`` naming the items (a registered
        dataset version's list); ``None``: every file below ``input_dir``.
    :param partition_keys: keys whose values make the mini-batches (columns of a table, fields of
        ``partition_format`` for files): :mod:`.tables`.
    :param partition_format: a file input's path format naming its partition fields (``{user}/{genres}.wav``).
    :param table_mini_batch_size: a table's ``mini_batch_size``, a data size (``10MB``); None: 1 MB.
    """

    run_id: str
    input_dir: str
    output_dir: str
    entry_script: str
    source_dir: str
    logs_dir: str
    entry_args: tuple[str, ...] = ()
    settings: ParallelRunSettings = field(default_factory=ParallelRunSettings)
    input_files: str | None = None
    partition_keys: tuple[str, ...] = ()
    partition_format: str | None = None
    table_mini_batch_size: str | None = None

    @property
    def entry_script_path(self) -> str:
        return os.path.normpath(os.path.join(self.source_dir, self.entry_script))

    def check_code(self) -> None:
        """Raise ``ValueError`` when the source folder or the entry script is missing."""
        if not os.path.isdir(self.source_dir):
            raise ValueError(f"source directory not found: {self.source_dir}")
        if not os.path.isfile(self.entry_script_path):
            raise ValueError(
                f"entry script not found: {self.entry_script_path} (--entry-script is relative to --source-dir)"
            )

    def check(self) -> None:
        """Before a run starts: raise ``ValueError`` saying what to fix when the spec cannot run at all: a missing
        source folder or entry script, an output folder that is not a writable folder, lies inside the input
        folder (its files would become inputs), or already holds a run (two runs would overwrite each other's
        rows)."""
        self.check_code()
        output, inputs = os.path.realpath(self.output_dir), os.path.realpath(self.input_dir)
        if output == inputs or output.startswith(os.path.join(inputs, "")):
            raise ValueError(
                f"the output folder {self.output_dir} is inside the input folder {self.input_dir}: its files would be "
                "read as inputs; choose an output folder outside it"
            )
        if os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
            raise ValueError(f"the output path {self.output_dir} exists and is not a folder")
        if os.path.exists(os.path.join(self.logs_dir, SPEC_FILE)):
            raise ValueError(f"{self.logs_dir} already holds a run; use a new output (or logs) folder per run")
        taken = [
            name
            for name in (self.settings.rows_file_name, RESULTS_DIR, FAILURES_DIR)
            if os.path.lexists(os.path.join(self.output_dir, name))
        ]
        if taken:
            raise ValueError(
                f"the output folder {self.output_dir} already holds a run's outputs ({', '.join(taken)}); use a new, "
                "empty output folder per run"
            )
        try:  # by trying: permissions alone do not tell (root, read-only mounts)
            os.makedirs(self.output_dir, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.output_dir):
                pass
        except OSError as exc:
            raise ValueError(f"the output folder {self.output_dir} cannot be written: {exc.strerror}") from exc

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["entry_args"] = list(self.entry_args)
        data["partition_keys"] = list(self.partition_keys)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        values = dict(data)
        values["entry_args"] = tuple(values.get("entry_args", ()))
        values["partition_keys"] = tuple(values.get("partition_keys", ()))
        values["settings"] = ParallelRunSettings.from_dict(values.get("settings", {}))
        return cls(**values)

    def save(self) -> str:
        path = os.path.join(self.logs_dir, SPEC_FILE)
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: str) -> JobSpec:
        data = read_json(path)
        if data is None:
            raise FileNotFoundError(f"job spec not found: {path}")
        return cls.from_dict(data)
