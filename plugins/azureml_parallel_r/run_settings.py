"""The settings of one ParallelRunStep run: one type, one set of defaults, checked once, for every path.

The operator builds it, the request carries it, the Azure ML backend turns it into a ``ParallelRunConfig``,
the local engine and its command line run with it. Names and meanings follow ``ParallelRunConfig``
(azureml/pipeline/core/_parallel_run_config_base.py); ``file_timeout`` is the entry script's per-file limit.

Defaults are Azure's except where ours must agree with each other: ``run_invocation_timeout`` left unset is
derived from the per-file limit (``mini_batch_size x file_timeout + 60`` s), so that a hung file is killed
by the entry script, fails alone and the mini-batch goes on, before the runtime kills the whole mini-batch.
An explicit ``run_invocation_timeout`` at or below ``mini_batch_size x file_timeout`` is refused with a
message saying what to change. With ``file_timeout=0`` (no per-file limit) the runtime's default of 60 s
applies.

Standard library only: imported by the DAG's operators at parse time.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

OUTPUT_ACTIONS = ("append_row", "summary_only")
INPUT_NAME = "input_files"  # the step's one input: its FileDataset (v2: data asset) and the folder it is mounted at
DEFAULT_APPEND_ROW_FILE_NAME = "parallel_run_step.txt"
# The entry script's own choices (include/entry/batch_wrapper.py keeps copies: the code shipped to the compute cannot
# import this module; tests/test_run_settings.py checks that they agree).
DEFAULT_R_SCRIPT = "r/process_file.r"  # the example R script, relative to the source directory
R_MODES = ("worker", "per-file")  # one persistent R session per worker process (the default), or one R per file
DEFAULT_FILE_TIMEOUT = 300.0
RUNTIME_DEFAULT_INVOCATION_TIMEOUT = 60.0
INVOCATION_MARGIN = 60.0
# mini_batch_size left unset: about this many mini-batches per worker process, between 1 and AUTO_MINI_BATCH_MAX files
# (an uneven last mini-batch then costs little, and a mini-batch stays short enough to retry)
AUTO_BATCHES_PER_PROCESS = 10
AUTO_MINI_BATCH_MAX = 200
# What a run's output folder holds besides the rows file; a rows file of one of these names would land inside a folder
# of the run or overwrite one of its files. include/entry/output_layout.py has its own RESULTS_DIR and FAILURES_DIR
# (the code shipped to the compute cannot import this module); tests/test_run_settings.py checks that they agree.
RESULTS_DIR = "results"
FAILURES_DIR = "failures"
RESERVED_OUTPUT_NAMES = (RESULTS_DIR, FAILURES_DIR, "logs", "validation.json", "status.json", "job_spec.json")


@dataclass(frozen=True)
class ParallelRunSettings:
    """The runtime knobs of a ParallelRunStep, named as in ``ParallelRunConfig``.

    :param mini_batch_size: files per ``run()`` call.
    :param node_count: compute nodes (the local engine simulates them as process groups).
    :param process_count_per_node: worker processes per node; ``None``: one per core.
    :param error_threshold: failed files tolerated before the job fails; -1 ignores all.
    :param allowed_failed_count: failed mini-batches tolerated; ``None`` or -1 ignores all.
    :param allowed_failed_percent: percent of failed mini-batches tolerated; ``None`` or 100 ignores all.
    :param run_invocation_timeout: seconds one ``run()`` call may take; ``None``: derived (see the module).
    :param run_max_try: tries of a failed or timed-out mini-batch.
    :param file_timeout: seconds one file may take in the entry script before R is killed (0: no limit;
        ``None``: not ours to know, for entry scripts other than ours).
    :param output_action: ``append_row`` (rows gathered into one file) or ``summary_only``.
    :param append_row_file_name: the append_row file's name.
    :param environment_variables: set for every worker process.
    """

    mini_batch_size: int = 10
    node_count: int = 1
    process_count_per_node: int | None = None
    error_threshold: int = -1
    allowed_failed_count: int | None = None
    allowed_failed_percent: float | None = None
    run_invocation_timeout: float | None = None
    run_max_try: int = 3
    file_timeout: float | None = DEFAULT_FILE_TIMEOUT
    output_action: str = "append_row"
    append_row_file_name: str = DEFAULT_APPEND_ROW_FILE_NAME
    environment_variables: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for message in self.problems():
            raise ValueError(message)

    def problems(self) -> list[str]:
        """Every setting out of range, as a sentence that says what to change."""
        checks = [
            (self.mini_batch_size >= 1, f"mini_batch_size must be >= 1 file, got {self.mini_batch_size}"),
            (self.node_count >= 1, f"node_count must be >= 1, got {self.node_count}"),
            (self.process_count_per_node is None or self.process_count_per_node >= 1,
             f"process_count_per_node must be >= 1, got {self.process_count_per_node}"),
            (self.error_threshold >= -1, f"error_threshold must be -1 (ignore) or >= 0, got {self.error_threshold}"),
            (self.allowed_failed_count is None or self.allowed_failed_count >= -1,
             f"allowed_failed_count must be -1 (ignore) or >= 0, got {self.allowed_failed_count}"),
            (self.allowed_failed_percent is None or 0 <= self.allowed_failed_percent <= 100,
             f"allowed_failed_percent must be within [0, 100], got {self.allowed_failed_percent}"),
            (self.run_invocation_timeout is None or self.run_invocation_timeout > 0,
             f"run_invocation_timeout must be > 0 seconds, got {self.run_invocation_timeout}"),
            (self.run_max_try >= 1, f"run_max_try must be >= 1, got {self.run_max_try}"),
            (self.file_timeout is None or self.file_timeout >= 0,
             f"file_timeout must be >= 0 seconds (0: no limit), got {self.file_timeout}"),
            (self.output_action in OUTPUT_ACTIONS,
             f"output_action must be one of {', '.join(OUTPUT_ACTIONS)}, got {self.output_action!r}"),
            (_plain_file_name(self.append_row_file_name),
             f"append_row_file_name must be a plain file name (no folder, not . or ..), got "
             f"{self.append_row_file_name!r}"),
            (self.rows_file_name not in RESERVED_OUTPUT_NAMES,
             f"append_row_file_name {self.append_row_file_name!r} is a name the run's output folder uses itself "
             f"({', '.join(RESERVED_OUTPUT_NAMES)}, in any case); choose another, e.g. parallel_run_step.txt"),
        ]  # fmt: skip
        problems = [message for ok, message in checks if not ok]
        if not problems and self.run_invocation_timeout is not None and self.file_timeout:
            batch = self.mini_batch_size * self.file_timeout
            if self.run_invocation_timeout <= batch:
                problems.append(
                    f"run_invocation_timeout={self.run_invocation_timeout:g} s must be above mini_batch_size x "
                    f"file_timeout = {self.mini_batch_size} x {self.file_timeout:g} s = {batch:g} s, or one slow "
                    "file makes the runtime kill the whole mini-batch: raise run_invocation_timeout, lower "
                    "file_timeout or mini_batch_size, or leave run_invocation_timeout unset to derive it"
                )
        return problems

    @property
    def invocation_timeout(self) -> float:
        """The ``run_invocation_timeout`` in force: as given, else derived from the per-file limit."""
        if self.run_invocation_timeout is not None:
            return float(self.run_invocation_timeout)
        if self.file_timeout:
            return float(math.ceil(self.mini_batch_size * self.file_timeout + INVOCATION_MARGIN))
        return RUNTIME_DEFAULT_INVOCATION_TIMEOUT

    @property
    def rows_file_name(self) -> str:
        """The append_row file's name as the runtime writes it: lower-cased (the ParallelRunStep runtime
        lower-cases ``append_row_file_name``; both engines do, and both backends read this name)."""
        return self.append_row_file_name.lower()

    @property
    def processes_per_node(self) -> int:
        return self.process_count_per_node or os.cpu_count() or 1

    @property
    def worker_count(self) -> int:
        return self.node_count * self.processes_per_node

    @classmethod
    def from_given(cls, **values: Any) -> ParallelRunSettings:
        """The settings from arguments that default to "unset" (``None``): the values given, and this type's defaults
        for the rest, so that each default is declared once, here.

        :param values: field values; ``None`` means not given.
        """
        return cls(**{name: value for name, value in values.items() if value is not None})

    def with_changes(self, **changes: Any) -> ParallelRunSettings:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParallelRunSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def default_mini_batch_size(file_count: int, processes: int) -> int:
    """``mini_batch_size`` for a run whose user left it unset: about ``file_count / (processes x
    AUTO_BATCHES_PER_PROCESS)``, between 1 and ``AUTO_MINI_BATCH_MAX`` files.

    :param file_count: the run's input files.
    :param processes: its worker processes in all (nodes x processes per node).
    """
    share = math.ceil(max(0, file_count) / (max(1, processes) * AUTO_BATCHES_PER_PROCESS))
    return max(1, min(AUTO_MINI_BATCH_MAX, share))


def _plain_file_name(name: str) -> bool:
    """A name that stays in its folder: not empty, not ``.`` or ``..``, no separator or NUL."""
    separators = {"/", "\\", "\0"} | ({os.sep, os.altsep} - {None})
    return bool(name) and name not in (".", "..") and not any(sep in name for sep in separators)
