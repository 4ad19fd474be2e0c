"""The settings of one ParallelRunStep run: one type, one set of defaults, checked once, for every path.

The operator builds it, the request carries it, the Azure ML backend turns it into a ``ParallelRunConfig``,
the local engine and its command line run with it. Names and meanings follow ``ParallelRunConfig``
(azureml/pipeline/core/_parallel_run_config_base.py); ``file_timeout`` is the entry script's per-file limit.

Defaults are Azure's except where ours must agree with each other: ``run_invocation_timeout`` left unset is
derived from the per-file limit (``mini_batch_size x file_timeout + 60`` s, at most the v2 runtime's 259200 s), so
that a hung file is killed by the entry script, fails alone and the mini-batch goes on, before the runtime kills the
whole mini-batch. Any ``run_invocation_timeout`` Azure accepts (> 0 s: ``ParallelRunConfig``'s own check; v2's
settings table bounds ``retry_settings.timeout`` to (0, 259200], which the v2 engine checks) is accepted, Azure's
default of 60 s included: given one and no per-file limit, the per-file limit is made to fit inside it
(:func:`fitted_file_timeout`), and an explicit per-file limit that cannot fit is a warning (:meth:`warnings`) that
says what will happen, since the entry script stops taking files shortly before the invocation's deadline
(``invocation_margin``) and returns the rows of those it finished. With ``file_timeout=0`` (no per-file limit)
the runtime's default of 60 s applies.

Standard library only: imported by the DAG's operators at parse time.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

# the entry script's own defaults and the output folder's names are the compute package's (defined once, there)
from azureml_parallel_r.compute.entry_settings import DEFAULT_FILE_TIMEOUT, invocation_margin
from azureml_parallel_r.compute.records import RESERVED_OUTPUT_NAMES

OUTPUT_ACTIONS = ("append_row", "summary_only")
# ParallelRunConfig's logging_level: "Possible values are 'WARNING', 'INFO', and 'DEBUG'. (optional, default value is
# 'INFO'.)" (azureml/pipeline/core/_parallel_run_config_base.py); v2's parallel job takes the same names
LOGGING_LEVELS = ("DEBUG", "INFO", "WARNING")
INPUT_NAME = "input_files"  # the step's one input: its FileDataset (v2: data asset) and the folder it is mounted at
DEFAULT_APPEND_ROW_FILE_NAME = "parallel_run_step.txt"
RUNTIME_DEFAULT_INVOCATION_TIMEOUT = 60.0
INVOCATION_MARGIN = 60.0
MAX_INVOCATION_TIMEOUT = 259200.0  # v2's retry_settings.timeout: (0, 259200] (the parallel job YAML reference)
# --first_task_creation_timeout: the runtime lists the input before its first mini-batch and fails the job when that
# takes longer than this, 600 s by default, within (0, 259200] (the parallel job YAML reference's settings table).
# Listing about four million files took about 553 s in Microsoft's measurement, so
# large inputs get twice the expected listing time plus a start-up allowance (FIRST_TASK_ALLOWANCE), never less than
# the default: nothing changes below about 1.7 million files.
FIRST_TASK_CREATION_DEFAULT = 600
FIRST_TASK_ALLOWANCE = 120
LISTING_SECONDS_PER_FILE = 553 / 4_000_000
# mini_batch_size left unset: about this many mini-batches per worker process, between 1 and AUTO_MINI_BATCH_MAX files
# (an uneven last mini-batch then costs little, and a mini-batch stays short enough to retry)
AUTO_BATCHES_PER_PROCESS = 10
AUTO_MINI_BATCH_MAX = 200


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
    :param logging_level: the runtime's logging level, passed to the entry script as ``--logging_level`` (as Azure
        ML's driver does), one of :data:`LOGGING_LEVELS`.
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
    logging_level: str = "INFO"

    def __post_init__(self) -> None:
        for message in self.problems():
            raise ValueError(message)

    def problems(self) -> list[str]:
        """Every setting out of range, as a sentence that says what to change."""
        checks = [
            (self.mini_batch_size >= 1, f"mini_batch_size must be >= 1 file, got {self.mini_batch_size}"),
            (self.node_count >= 1, f"node_count must be >= 1, got {self.node_count}"),
            (
                self.process_count_per_node is None or self.process_count_per_node >= 1,
                f"process_count_per_node must be >= 1, got {self.process_count_per_node}",
            ),
            (self.error_threshold >= -1, f"error_threshold must be -1 (ignore) or >= 0, got {self.error_threshold}"),
            (
                self.allowed_failed_count is None or self.allowed_failed_count >= -1,
                f"allowed_failed_count must be -1 (ignore) or >= 0, got {self.allowed_failed_count}",
            ),
            (
                self.allowed_failed_percent is None or 0 <= self.allowed_failed_percent <= 100,
                f"allowed_failed_percent must be within [0, 100], got {self.allowed_failed_percent}",
            ),
            (
                self.run_invocation_timeout is None or self.run_invocation_timeout > 0,
                f"run_invocation_timeout must be > 0 seconds, got {self.run_invocation_timeout}",
            ),
            (self.run_max_try >= 1, f"run_max_try must be >= 1, got {self.run_max_try}"),
            (
                self.file_timeout is None or self.file_timeout >= 0,
                f"file_timeout must be >= 0 seconds (0: no limit), got {self.file_timeout}",
            ),
            (
                self.logging_level in LOGGING_LEVELS,
                f"logging_level must be one of {', '.join(LOGGING_LEVELS)}, got {self.logging_level!r}",
            ),
            (
                self.output_action in OUTPUT_ACTIONS,
                f"output_action must be one of {', '.join(OUTPUT_ACTIONS)}, got {self.output_action!r}",
            ),
            (
                _plain_file_name(self.append_row_file_name),
                f"append_row_file_name must be a plain file name (no folder, not . or ..), got "
                f"{self.append_row_file_name!r}",
            ),
            (
                self.rows_file_name not in RESERVED_OUTPUT_NAMES,
                f"append_row_file_name {self.append_row_file_name!r} is a name the run's output folder uses itself "
                f"({', '.join(RESERVED_OUTPUT_NAMES)}, in any case); choose another, e.g. parallel_run_step.txt",
            ),
        ]
        return [message for ok, message in checks if not ok]

    def warnings(self) -> list[str]:
        """What these settings will do that a user may not expect, each as a sentence: an explicit per-file limit
        that cannot fit inside an explicit ``run_invocation_timeout``. Not refused: the entry script stops before the
        invocation's deadline, so no file's finished results are lost."""
        timeout, file_timeout = self.run_invocation_timeout, self.file_timeout
        if timeout is None or not file_timeout or file_timeout <= fitted_file_timeout(timeout):
            return []
        stop = timeout - invocation_margin(timeout)
        return [
            f"file_timeout={file_timeout:g} s does not fit inside run_invocation_timeout={timeout:g} s: a file still "
            f"running {stop:g} s into its mini-batch is stopped there (R is killed) and fails with kind "
            f"invocation_timeout, and its mini-batch is tried again while tries are left (run_max_try="
            f"{self.run_max_try}); the files the mini-batch finished keep their results. Lower file_timeout, or raise "
            "run_invocation_timeout, to have a slow file fail alone with kind timeout instead"
        ]

    @property
    def invocation_timeout(self) -> float:
        """The ``run_invocation_timeout`` in force: as given, else derived from the per-file limit."""
        if self.run_invocation_timeout is not None:
            return float(self.run_invocation_timeout)
        if self.file_timeout:
            derived = math.ceil(self.mini_batch_size * self.file_timeout + INVOCATION_MARGIN)
            return float(min(derived, MAX_INVOCATION_TIMEOUT))
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
        for the rest, so that each default is declared once, here. A ``run_invocation_timeout`` given without a
        ``file_timeout`` makes the per-file limit fit inside it (:func:`fitted_file_timeout`).

        :param values: field values; ``None`` means not given.
        """
        given = {name: value for name, value in values.items() if value is not None}
        timeout = given.get("run_invocation_timeout")
        if "file_timeout" not in given and isinstance(timeout, int | float) and timeout > 0:
            given["file_timeout"] = fitted_file_timeout(float(timeout))
        return cls(**given)

    def with_changes(self, **changes: Any) -> ParallelRunSettings:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParallelRunSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def fitted_file_timeout(timeout: float) -> float:
    """The per-file limit of a run given ``run_invocation_timeout`` and no per-file limit: the default one, lowered to
    end before the entry script stops taking files (so that a hung file fails alone, with kind ``timeout``, and the
    mini-batch goes on), and never 0 (no limit).

    :param timeout: the run's ``run_invocation_timeout`` in seconds.
    """
    return min(DEFAULT_FILE_TIMEOUT, max(timeout / 2, timeout - invocation_margin(timeout)))


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
    separators = {"/", "\\", "\0", os.sep} | ({os.altsep} if os.altsep else set())
    return bool(name) and name not in (".", "..") and not any(sep in name for sep in separators)


def first_task_creation_timeout(file_count: int) -> int | None:
    """The ``--first_task_creation_timeout`` a run over ``file_count`` files needs, or None when the runtime's default
    (600 s) is enough; at most 259200 s, the setting's bound.

    :param file_count: the input's files.
    """
    needed = math.ceil(2 * file_count * LISTING_SECONDS_PER_FILE + FIRST_TASK_ALLOWANCE)
    return None if needed <= FIRST_TASK_CREATION_DEFAULT else int(min(needed, MAX_INVOCATION_TIMEOUT))


# A table's mini_batch_size: an approximate data size. azure-ai-ml's pattern is ^\d+([kKmMgG][bB])*$ with units of
# 1024 (entities/_builders/parallel.py); the CLI (v2) parallel job YAML reference writes "100 kb", with a space, and
# ParallelRunConfig "1024, 1024KB, 10MB, and 1GB" (default 1MB). The pattern takes both, and no zero (the trigger form
# uses it as it is).
DATA_SIZE_PATTERN = r"^0*[1-9][0-9]* ?([kKmMgG][bB])?$"
DATA_SIZE_UNITS = {"": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
DEFAULT_TABLE_MINI_BATCH_BYTES = 1024**2


def parse_data_size(text: str | int) -> int:
    """A table's ``mini_batch_size`` in bytes: a whole number, optionally with ``KB``, ``MB`` or ``GB`` (any case, a
    space before the unit allowed); units of 1024 (see :data:`DATA_SIZE_PATTERN`).

    :param text: the size as given.
    :raises ValueError: not a size, saying the forms accepted.
    """
    written = str(text)
    if not re.match(DATA_SIZE_PATTERN, written):
        raise ValueError(
            f"mini_batch_size for a tabular input is an approximate data size, like 1024 (bytes), 100 kb, 10MB or 1GB; "
            f"got {text!r}"
        )
    # matched as JSON Schema's "pattern" is (re.search, as the trigger form's check runs it): "$" takes a final "\n"
    number, unit = re.match(r"(\d+) ?(\D*)", written.strip()).groups()  # type: ignore[union-attr]
    return int(number) * DATA_SIZE_UNITS[unit.lower()]
