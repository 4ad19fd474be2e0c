"""The formats a run's output folder holds, each defined once: every writer (the entry script, the local engine,
validation) and every reader (the engines' result fetching, validation, the run report and, through the JSON the
report's server makes from them, its JavaScript) uses these definitions.

::

    <output>/results/<relative path>/...        a succeeded file's outputs        (RESULTS_DIR)
    <output>/failures/<relative path>.json      its FailureRecord                 (FAILURES_DIR)
    <rows file>                                 one ResultRow per line (append_row)
    <output>/logs/status.json                   the local engine's StatusRecord   (LOGS_DIR, STATUS_FILE)
    <output>/logs/job_spec.json                 the local engine's job            (SPEC_FILE)
    <output>/validation.json                    validation's report               (VALIDATION_REPORT)
    <output>/validation-failures.jsonl          every failed or missing file      (VALIDATION_FAILURES)

Standard library only: this module ships to the compute nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Every name a run's output folder holds besides the rows file: a rows file of one of these names would land inside a
# folder of the run or overwrite one of its files (tests/test_run_settings.py runs a run and its validation to check
# that nothing else lands in the folder).
RESULTS_DIR = "results"  # the entry script: each succeeded file's outputs
FAILURES_DIR = "failures"  # the entry script: each failed file's record
LOGS_DIR = "logs"  # the local engine: its status, job spec and Azure-style logs (output/logs)
STATUS_FILE = "status.json"  # the local engine, in LOGS_DIR
SPEC_FILE = "job_spec.json"  # the local engine, in LOGS_DIR
VALIDATION_REPORT = "validation.json"  # validation: the report
VALIDATION_FAILURES = "validation-failures.jsonl"  # validation: every failed or missing file, one JSON per line
RUN_OUTPUT_NAMES = (RESULTS_DIR, FAILURES_DIR, LOGS_DIR)
VALIDATION_OUTPUT_NAMES = (VALIDATION_REPORT, VALIDATION_FAILURES)
RESERVED_OUTPUT_NAMES = (*RUN_OUTPUT_NAMES, *VALIDATION_OUTPUT_NAMES, STATUS_FILE, SPEC_FILE)

UNPROCESSED = "unprocessed"  # the failure kind of a file with neither a result row nor a failure record


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs validation twice as much per row
class ResultRow:
    """One succeeded file: what ``run()`` returns for it, one JSON line of the rows file.

    :param input: the file's local path on the node that ran it.
    :param relative_path: its path relative to the dataset root (the key every reader uses).
    :param outputs: its outputs, relative to the run's output folder (``results/<relative path>/<file>``).
    :param seconds: how long R took over it.
    :param value: what the R script's ``process_file`` returned (JSON).
    :param warnings: R's warnings while it ran.
    """

    input: str
    relative_path: str
    outputs: list[str]
    seconds: float | None
    value: Any = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The row as its JSON object (``warnings`` only when there are some)."""
        data: dict[str, Any] = {
            "input": self.input,
            "relative_path": self.relative_path,
            "outputs": self.outputs,
            "seconds": None if self.seconds is None else round(self.seconds, 4),
            "value": self.value,
        }
        if self.warnings:
            data["warnings"] = self.warnings
        return data

    @classmethod
    def from_json(cls, data: Any) -> ResultRow | None:
        """The row a parsed JSON line holds, or None when it is not a row (no string ``relative_path``).

        :param data: the parsed line.
        """
        if not isinstance(data, dict) or not isinstance(relative := data.get("relative_path"), str):
            return None
        warnings = data.get("warnings")  # most rows have none: validation reads a row per file (a hot path)
        return cls(
            str(data.get("input") or ""),
            relative,
            [str(output) for output in data.get("outputs") or ()],
            _number(data.get("seconds")),
            data.get("value"),
            [str(warning) for warning in warnings] if warnings else [],
        )


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """Why one file failed, its latest attempt: ``failures/<relative path>.json``.

    :param relative_path: the file's path relative to the dataset root.
    :param kind: what went wrong (``r_error``, ``timeout``, ``crash``, ... or :data:`UNPROCESSED`).
    :param error: the message that says it.
    :param call: the R call that raised the error, when R named one.
    :param warnings: R's warnings before it failed.
    :param stderr_tail: the end of R's standard error.
    :param seconds: how long the file ran.
    :param input: the file's local path on the node.
    :param r_script: the R script that ran it.
    :param process: the worker process that ran it.
    :param attempt: which failure of the file this is (1 for the first).
    :param time: when it was recorded (ISO 8601).
    :param log: the R log that holds the file's output: relative to the run's logs folder
        (``user/entry_script_log/<node>/r/<process>.txt``) under a ParallelRunStep runtime, else its absolute path.
    """

    relative_path: str
    kind: str
    error: str
    call: str | None = None
    warnings: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    seconds: float | None = None
    input: str | None = None
    r_script: str | None = None
    process: str | None = None
    attempt: int | None = None
    time: str | None = None
    log: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as its JSON object."""
        return {
            "input": self.input,
            "relative_path": self.relative_path,
            "kind": self.kind,
            "error": self.error,
            "call": self.call,
            "warnings": self.warnings,
            "stderr_tail": self.stderr_tail,
            "seconds": None if self.seconds is None else round(self.seconds, 4),
            "r_script": self.r_script,
            "process": self.process,
            "attempt": self.attempt,
            "time": self.time,
            "log": self.log,
        }

    @classmethod
    def from_json(cls, data: Any, relative_path: str) -> FailureRecord:
        """The record a failure file holds, whatever it holds: a field that is missing or of the wrong type reads as
        unknown, and a file that holds no record at all reads as :data:`UNPROCESSED`.

        :param data: the parsed file, or None when there is none.
        :param relative_path: the file it is about (the record's own ``relative_path`` wins when it has one).
        """
        if not isinstance(data, dict):
            return cls(relative_path=relative_path, kind=UNPROCESSED, error="no result and no failure record")
        attempt = data.get("attempt")
        return cls(
            relative_path=data["relative_path"] if isinstance(data.get("relative_path"), str) else relative_path,
            kind=str(data.get("kind") or UNPROCESSED),
            error=str(data.get("error") or "no result and no failure record"),
            call=None if data.get("call") is None else str(data.get("call")),
            warnings=[str(warning) for warning in data.get("warnings") or []],
            stderr_tail=str(data.get("stderr_tail") or ""),
            seconds=_number(data.get("seconds")),
            input=None if data.get("input") is None else str(data.get("input")),
            r_script=None if data.get("r_script") is None else str(data.get("r_script")),
            process=None if data.get("process") is None else str(data.get("process")),
            attempt=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
            time=None if data.get("time") is None else str(data.get("time")),
            log=None if data.get("log") is None else str(data.get("log")),
        )


@dataclass(frozen=True, slots=True)
class ReportedFailure:
    """What validation and the run report keep of a failed or missing file (``validation-failures.jsonl``, one per
    line; the report's JavaScript reads these keys).

    :param record: the file's failure record (:data:`UNPROCESSED` when it has none).
    :param allowed_by_pattern: whether an allowed-failure pattern matches the file.
    :param tail_chars: how much of R's stderr tail is kept.
    """

    record: FailureRecord
    allowed_by_pattern: bool
    tail_chars: int

    def to_json(self) -> dict[str, Any]:
        """The entry as its JSON object."""
        record = self.record
        return {
            "relative_path": record.relative_path,
            "kind": record.kind,
            "error": record.error,
            "call": record.call,
            "warnings": record.warnings,
            "stderr_tail": record.stderr_tail[-self.tail_chars :] if self.tail_chars else "",
            "attempt": record.attempt,
            "seconds": record.seconds,
            "log": record.log,
            "allowed_by_pattern": self.allowed_by_pattern,
        }


@dataclass(frozen=True)
class StatusRecord:
    """The local engine's ``logs/status.json``: what its controller says of a run while it runs and when it ends (the
    local backend and ``python -m azureml_parallel_r.engine status`` read it).

    :param run_id: the run.
    :param status: its status (Azure ML's word: ``NotStarted``, ``Running``, ``Finished``, ``Failed``, ``Canceled``).
    :param message: why it is so.
    :param heartbeat: when the controller last wrote it (``time.time()``): a run without one for long is dead.
    :param pid: the controller's process id.
    :param started_at: when the run started.
    :param ended_at: when it ended (None while it runs).
    :param input_dir: its input folder.
    :param output_dir: its output folder.
    :param logs_dir: its logs folder.
    :param counts: its files' and mini-batches' counts so far.
    :param cpu_seconds: the CPU time of its processes (controller, workers, R) that have ended.
    """

    run_id: str
    status: str
    message: str = ""
    heartbeat: float | None = None
    pid: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    input_dir: str | None = None
    output_dir: str | None = None
    logs_dir: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as ``status.json`` holds it."""
        return {
            "run_id": self.run_id,
            "status": str(self.status),
            "message": self.message,
            "heartbeat": self.heartbeat,
            "pid": self.pid,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "input_dir": self.input_dir,
            "output_dir": self.output_dir,
            "logs_dir": self.logs_dir,
            "counts": dict(self.counts),
            "cpu_seconds": self.cpu_seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StatusRecord:
        """The record a ``status.json`` holds (keys it does not know are left out).

        :param data: the parsed file.
        """
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})
