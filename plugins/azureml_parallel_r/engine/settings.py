"""ParallelRunConfig-like settings of one local job, with Azure's defaults and range checks."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

OUTPUT_ACTIONS = ("append_row", "summary_only")
DEFAULT_APPEND_ROW_FILE_NAME = "parallel_run_step.txt"


@dataclass(frozen=True)
class ParallelRunSettings:
    """The runtime knobs of a ParallelRunStep, named as in ``ParallelRunConfig``.

    :param mini_batch_size: files per ``run()`` call.
    :param node_count: simulated nodes (each gets ``process_count_per_node`` worker processes).
    :param process_count_per_node: worker processes per node; defaults to the number of cores.
    :param error_threshold: failed files tolerated before the job fails; -1 ignores all.
    :param allowed_failed_count: failed mini-batches tolerated; ``None`` or -1 ignores all.
    :param allowed_failed_percent: percent of failed mini-batches tolerated, checked once every
        mini-batch has been scheduled; ``None`` or 100 ignores all.
    :param run_invocation_timeout: seconds one ``run()`` call may take before its process is killed.
    :param run_max_try: tries of a failed or timed-out mini-batch.
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
    run_invocation_timeout: float = 60.0
    run_max_try: int = 3
    output_action: str = "append_row"
    append_row_file_name: str = DEFAULT_APPEND_ROW_FILE_NAME
    environment_variables: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            (self.mini_batch_size >= 1, f"mini_batch_size must be >= 1 file, got {self.mini_batch_size}"),
            (self.node_count >= 1, f"node_count must be >= 1, got {self.node_count}"),
            (
                self.process_count_per_node is None or self.process_count_per_node >= 1,
                f"process_count_per_node must be >= 1, got {self.process_count_per_node}",
            ),
            (
                self.error_threshold >= -1,
                f"error_threshold must be -1 (ignore) or >= 0, got {self.error_threshold}",
            ),
            (
                self.allowed_failed_count is None or self.allowed_failed_count >= -1,
                f"allowed_failed_count must be -1 (ignore) or >= 0, got {self.allowed_failed_count}",
            ),
            (
                self.allowed_failed_percent is None or 0 <= self.allowed_failed_percent <= 100,
                f"allowed_failed_percent must be within [0, 100], got {self.allowed_failed_percent}",
            ),
            (
                self.run_invocation_timeout > 0,
                f"run_invocation_timeout must be > 0 seconds, got {self.run_invocation_timeout}",
            ),
            (self.run_max_try >= 1, f"run_max_try must be >= 1, got {self.run_max_try}"),
            (
                self.output_action in OUTPUT_ACTIONS,
                f"output_action must be one of {', '.join(OUTPUT_ACTIONS)}, got {self.output_action!r}",
            ),
            (
                bool(self.append_row_file_name) and os.sep not in self.append_row_file_name,
                f"append_row_file_name must be a plain file name, got {self.append_row_file_name!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def processes_per_node(self) -> int:
        return self.process_count_per_node or os.cpu_count() or 1

    @property
    def worker_count(self) -> int:
        return self.node_count * self.processes_per_node

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParallelRunSettings:
        return cls(**data)
