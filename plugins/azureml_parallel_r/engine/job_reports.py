"""What the local engine's controller reports of a job as it runs and when it ends: each mini-batch try (the runtime's
``processed_mini-batches.csv`` and the engine's ``mini_batches.jsonl``), the progress line, ``job_result.txt`` and
``job_error.txt``, and the status file (:class:`~azureml_parallel_r.compute.records` names it) that ``LocalRun`` and
the local backend read. :class:`JobReports` is a part of :class:`~azureml_parallel_r.engine.runtime.ParallelRunJob`.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from azureml_parallel_r import status as run_status
from azureml_parallel_r.compute.records import StatusRecord
from azureml_parallel_r.engine.accounting import Counts, succeeded_items

if TYPE_CHECKING:
    from azureml_parallel_r.engine.job import JobSpec
    from azureml_parallel_r.engine.run_logs import RunLogs
    from azureml_parallel_r.engine.tables import MiniBatch
    from azureml_parallel_r.engine.worker_process import Attempt, WorkerProcess


def cpu_seconds() -> float:
    """The CPU time (user and system) of this controller and of the processes it has reaped: its workers and, as each
    worker reaps its own, their R processes. A worker still running is not in it: the figure is complete once the run
    has ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 3)


class JobReports:
    """The controller's reports; the job provides its spec, counts, logs and the state they report."""

    spec: JobSpec
    counts: Counts
    logs: RunLogs
    on_progress: Callable[[str], None]
    _batches: list[MiniBatch]
    _failed_batches: set[int]
    _errors: list[str]
    _started: float
    _abort_reason: str | None

    # -- the run's own files (engine/run_logs.py) ---------------------------------------------------------

    def _log_attempt(self, index: int, tries: int, worker: WorkerProcess, attempt: Attempt, seconds: float) -> None:
        """One try of a mini-batch, in the runtime's ``processed_mini-batches.csv`` and the engine's own
        ``mini_batches.jsonl``."""
        size = self._batches[index].count
        succeeded = succeeded_items(attempt, self._batches[index])
        error = (attempt.error or "")[-2000:]
        self.logs.log_attempt(
            [
                index,
                tries,
                worker.node,
                worker.process,
                "Succeeded" if succeeded == size else "Failed",
                size,
                succeeded,
                f"{seconds:.3f}",
                error,
            ],
            {
                "mini_batch": index,
                "try": tries,
                "process": worker.name,
                "files": size,
                "rows": len(attempt.rows),
                "outcome": attempt.kind,
                "seconds": round(seconds, 3),
                "error": error or None,
            },
        )

    def _progress(self) -> None:
        line = self._summary_line(run_status.RUNNING)
        self.on_progress(line)
        self._write_status(run_status.RUNNING, "running")
        self.logs.progress(line)

    def _summary_line(self, state: str) -> str:
        c = self.counts
        return (
            f"{state}: {c.succeeded_files}/{c.total_files} files succeeded, {c.failed_files} failed; "
            f"{c.completed_mini_batches}/{c.total_mini_batches} mini-batches done, "
            f"{len(self._failed_batches)} failed; {time.time() - self._started:.1f}s"
        )

    def _finish(self, state: str, message: str) -> str:
        """Write the job's result logs and final status; return the final status. A run whose own records cannot be
        written (``job_result.txt``, ``job_error.txt``: a full or failing output disk) ends Failed with that cause,
        whatever it would have ended as: a Finished run must have its records."""
        if not self._write_result_logs(state, message) and state == run_status.FINISHED:
            state, message = run_status.FAILED, self._abort_reason or message
            self._write_result_logs(state, message)  # its job_error.txt, if the disk lets it
        summary = self._summary_line(state)
        self._write_status(state, message, ended=True)
        self.on_progress(
            f"{summary} (output: {self.spec.output_dir})" + ("" if state == "Finished" else f"; {message}")
        )
        return state

    def _write_result_logs(self, state: str, message: str) -> bool:
        """``job_result.txt``, and ``job_error.txt`` for a failed run; False (the run failing) when one cannot be
        written."""
        summary = self._summary_line(state)
        result = summary if state == run_status.FINISHED else f"{summary}\nreason: {message}"
        error = "\n\n".join([f"reason: {message}", *self._errors[:20]]) if state == run_status.FAILED else None
        return self.logs.write_results(result + "\n", None if error is None else error + "\n")

    def _write_status(self, state: str, message: str, *, ended: bool = False) -> None:
        self.logs.write_status(self._status_record(state, message, ended), ended=ended)

    def _status_record(self, state: str, message: str, ended: bool) -> dict[str, Any]:
        return StatusRecord(
            run_id=self.spec.run_id,
            status=state,
            message=message,
            heartbeat=time.time(),
            pid=os.getpid(),
            started_at=self._started,
            ended_at=time.time() if ended else None,
            input_dir=self.spec.input_dir,
            output_dir=self.spec.output_dir,
            logs_dir=self.spec.logs_dir,
            counts={**vars(self.counts), "failed_mini_batches": len(self._failed_batches)},
            cpu_seconds=cpu_seconds(),
        ).to_json()
