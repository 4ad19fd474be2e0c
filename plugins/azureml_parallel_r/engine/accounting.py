"""How the runtime counts a job's items and mini-batches, and when it has failed too many of them.

- A try of a mini-batch of files succeeds on one item per element ``run()`` returned, at most the mini-batch's size,
  and on none when it raised, timed out or crashed. A table's mini-batch (a DataFrame) succeeds on all its rows when
  ``run()`` returns, whatever it returns: Microsoft's partition sample (azureml-examples
  ``cli/jobs/parallel/1a_oj_sales_prediction``, ``parallel_train.py``) returns ``[]`` for every partition.
- The job fails as soon as failed items > ``error_threshold`` (unless -1) or failed mini-batches >
  ``allowed_failed_count`` (unless -1/None), and, once every mini-batch has started, when the failed mini-batch
  percent > ``allowed_failed_percent``; like Azure, a mini-batch counts as failed while its latest try failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from azureml_parallel_r.engine.tables import MiniBatch
from azureml_parallel_r.engine.worker_process import Attempt
from azureml_parallel_r.run_settings import ParallelRunSettings


@dataclass
class Counts:
    """A job's counters, as its status reports them."""

    total_files: int = 0
    total_mini_batches: int = 0
    succeeded_files: int = 0
    failed_files: int = 0
    completed_mini_batches: int = 0
    failed_attempts: int = 0


def succeeded_items(attempt: Attempt, batch: MiniBatch) -> int:
    """The items of a mini-batch that a try succeeded on (see the module).

    :param attempt: the try.
    :param batch: the mini-batch.
    """
    if attempt.kind != "ok":
        return 0
    return batch.count if batch.tabular else min(len(attempt.rows), batch.count)


def threshold_breach(
    settings: ParallelRunSettings, failed_files: int, failed_batches: int, total_batches: int, started_batches: int
) -> str | None:
    """Why the job has failed too many items or mini-batches (see the module), or None.

    :param settings: the job's thresholds.
    :param failed_files: items counted failed so far.
    :param failed_batches: mini-batches whose latest try failed.
    :param total_batches: the job's mini-batches.
    :param started_batches: those handed to a worker at least once.
    """
    s = settings
    if s.error_threshold != -1 and failed_files > s.error_threshold:
        return f"{failed_files} files failed, more than error_threshold={s.error_threshold}"
    if s.allowed_failed_count is not None and s.allowed_failed_count != -1 and failed_batches > s.allowed_failed_count:
        return f"{failed_batches} mini-batches failed, more than allowed_failed_count={s.allowed_failed_count}"
    if s.allowed_failed_percent is not None and total_batches and started_batches == total_batches:
        percent = 100.0 * failed_batches / total_batches
        if percent > s.allowed_failed_percent:
            return (
                f"{percent:.1f}% of mini-batches failed, more than allowed_failed_percent={s.allowed_failed_percent:g}"
            )
    return None
