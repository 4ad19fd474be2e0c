"""The local ParallelRunStep runtime: the same rules as Azure ML, on one machine.

- The job's items (:mod:`.job_inputs`: the input folder's files, or a registered list) are cut into mini-batches of
  ``mini_batch_size`` files, or by partition keys; a folder with an ``MLTable`` file is a table, cut by partition
  keys or by data size into DataFrames (:mod:`.tables`). The workers work in the run's own copy of the source
  directory.
- ``node_count x process_count_per_node`` worker processes each import the entry script, call ``init()``
  once, then ``run(mini_batch)`` for every mini-batch they pull (``run(mini_batch, mini_batch_context)`` with partition
  keys), and ``shutdown()`` at the end.
- A mini-batch fails when ``run()`` raises, exceeds ``run_invocation_timeout`` (the process is killed and
  replaced) or returns fewer items than it was given; it is tried again until ``run_max_try`` tries, then
  its missing items count as failed. Only the rows of a mini-batch's last try are kept. Every element ``run()``
  returns is a row (a DataFrame: each of its rows, written with ``DataFrame.to_csv`` as
  ``parallel_run_step.settings.json`` says, see :mod:`.append_row_settings`), however many there are per input: the
  batch scoring docs ("There's no requirement about the cardinality ... All elements in the result DataFrame ... are
  written"); succeeded items are counted as the runtime counts them, one per returned element, at most the
  mini-batch's size.
- Items and mini-batches are counted, and the job fails on too many failures, as :mod:`.accounting` says.
- ``init()`` failing (or the entry script failing to import) does not end the job at once: the process is replaced
  (a new ``processNNN``), and a node stops starting processes after ``3 * process_count_per_node`` such failures;
  the job fails when no node is left, or when it has run 2 minutes with ``2 * node_count * process_count_per_node``
  failures ("What happens if init function in entry script fails?", Troubleshooting the ParallelRunStep,
  https://learn.microsoft.com/azure/machine-learning/v1/how-to-debug-parallel-run-step). An entry script the engine
  cannot run at all (no ``run()``, a generator ``run()``, a ``run()`` whose arguments are not the ones the job
  passes) fails it at once.
- The v2 runtime's predefined program arguments apply (:mod:`.predefined_arguments`).
- append_row: the controller alone writes the rows, so concurrent workers never interleave; the file
  appears in the output folder in one rename when the job ends (not on cancel).
- Each node has a temporary folder (``TMPDIR``) for the run's lifetime, as a job's container has on Azure; when the
  run ends, every process that carries its id is ended, as the container's end would.
- The run's own files (status, rows, result and per-try logs: :mod:`.run_logs`) follow Azure's layout; one that the
  controller cannot write (a full or failing output disk) fails the run. The workers' logs (``user/stdout/<node_id>/
  <process_name>.stdout.txt``: print() and the root logger at INFO; ``user/stderr/...``;
  ``user/entry_script_log/<node_id>/<process_name>.log.txt``) have node ids ``0``, ``1``, ... and process names
  ``processNNN``, numbered on per node as processes are replaced.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from azureml_parallel_r import status as run_status
from azureml_parallel_r.engine.accounting import Counts, succeeded_items, threshold_breach
from azureml_parallel_r.engine.append_row_settings import dataframe_csv_options
from azureml_parallel_r.engine.job import CANCEL_FILE, JobSpec
from azureml_parallel_r.engine.job_inputs import job_batches, snapshot_source_directory, table_files_hint
from azureml_parallel_r.engine.job_reports import JobReports
from azureml_parallel_r.engine.predefined_arguments import RuntimeTimeouts, apply_predefined_arguments
from azureml_parallel_r.engine.run_logs import RunLogs
from azureml_parallel_r.engine.tables import MiniBatch
from azureml_parallel_r.engine.worker_process import (
    STOP_GRACE_SECONDS,
    Attempt,
    EntryScriptRefused,
    InitFailed,
    WorkerProcess,
    driver_arguments,
    end_run_processes,
    worker_environment,
)

INIT_FAILURES_PER_PROCESS = 3  # a node stops after 3 * process_count_per_node init() failures
JOB_INIT_FAILURES_PER_PROCESS = 2  # the job, after 2 * node_count * process_count_per_node of them ...
JOB_INIT_FAILURE_SECONDS = 120.0  # ... once it has run 2 minutes


class ParallelRunJob(JobReports):
    """Runs one :class:`JobSpec` to a final status (``Finished``, ``Failed`` or ``Canceled``).

    :param spec: the job.
    :param on_progress: called with a one-line progress message (default: nothing).
    :param progress_interval: seconds between progress messages and status updates.
    """

    def __init__(
        self,
        spec: JobSpec,
        *,
        on_progress: Callable[[str], None] | None = None,
        progress_interval: float = 2.0,
    ) -> None:
        self.spec = spec
        self.settings = spec.settings
        self.on_progress = on_progress or (lambda _line: None)
        self.progress_interval = progress_interval
        self.counts = Counts()
        self._cond = threading.Condition()
        self.logs = RunLogs(spec, self._abort)  # the run's own files; one that cannot be written fails the run
        self._cancel = threading.Event()
        self._batches: list[MiniBatch] = []
        self._attempts: list[int] = []
        self._queue: deque[int] = deque()
        self._in_flight = 0
        self._failed_batches: set[int] = set()
        self._started_batches: set[int] = set()  # mini-batches handed to a worker at least once
        self._abort_reason: str | None = None
        self._errors: list[str] = []
        self._workers: list[WorkerProcess] = []
        self._started = time.time()
        self._code = spec  # the spec whose source directory is the run's own copy, once made
        self._timeouts = RuntimeTimeouts()
        self._csv_options: dict[str, Any] = {}
        self._processes_started: dict[int, int] = {}  # node -> processes started on it (their NNN)
        self._init_failures: dict[int, int] = {}  # node -> init() failures
        self._starting: dict[int, int] = {}  # node -> processes whose init() is under way
        self._slots_left = 0
        self._first_start: float | None = None  # when run() was first called (time.monotonic())
        self._last_progress = time.monotonic()  # when a mini-batch last ended (or the job started)

    # -- public -----------------------------------------------------------------------------------------

    def request_cancel(self) -> None:
        """Stop the job: running workers are terminated and the status becomes Canceled (signal-safe)."""
        self._cancel.set()

    def run(self) -> str:
        """Run the job to the end and return its final status."""
        self._started = time.time()
        self._write_status(run_status.RUNNING, "running")
        try:
            self.spec.check_code()
            self.settings, self._timeouts = apply_predefined_arguments(self.spec.settings, self.spec.entry_args)
            self._csv_options = dataframe_csv_options(self.spec.source_dir)
        except (ValueError, OSError) as exc:
            return self._finish(run_status.FAILED, str(exc))
        with tempfile.TemporaryDirectory(prefix=f"{self.spec.run_id}-wd-") as workdir:
            try:
                self._batches = job_batches(self.spec, self.settings.mini_batch_size, workdir)
            except (ValueError, OSError) as exc:
                return self._finish(run_status.FAILED, str(exc))
            hint = table_files_hint(self.spec, self._batches)
            if hint:  # said now, and in job_error.txt should the run fail
                self.on_progress(hint)
                self._errors.append(hint)
            return self._run_batches(workdir)

    def _run_batches(self, workdir: str) -> str:
        """Run the job's mini-batches (cut, in ``self._batches``) to the end; return the final status."""
        self._attempts = [0] * len(self._batches)
        self._queue = deque(range(len(self._batches)))
        self.counts.total_files = sum(batch.count for batch in self._batches)
        self.counts.total_mini_batches = len(self._batches)
        if not self.logs.prepare():
            return self._finish(run_status.FAILED, self._abort_reason or "the output folder cannot be made")
        rows_file = self.settings.rows_file_name if self.settings.output_action == "append_row" else None
        with self.logs.rows(rows_file, self._cancel.is_set):
            try:
                self._code = snapshot_source_directory(self.spec, os.path.join(workdir, "code"))
            except OSError as exc:
                self._abort(f"cannot copy the source directory {self.spec.source_dir} for the run: {exc}")
            threads = [
                threading.Thread(target=self._slot, args=(node, workdir), daemon=True)
                for node in range(self.settings.node_count)
                for _process in range(self.settings.processes_per_node)
            ][: 0 if self._stopping() else max(1, len(self._batches))]
            self._slots_left = len(threads)
            self._last_progress = time.monotonic()
            for thread in threads:
                thread.start()
            self._supervise(threads)
            end_run_processes(self.spec.run_id)  # before the node folders go: nothing of the run outlives it
        return self._finish(*self._final_status())

    # -- scheduling -------------------------------------------------------------------------------------

    def _slot(self, node: int, workdir: str) -> None:
        """One worker process slot on ``node``: pull mini-batches; replace the process when it dies, times out or
        fails its ``init()`` (until the node gives up, see the module)."""
        worker: WorkerProcess | None = None
        index: int | None = None
        try:
            while (index := self._next_batch()) is not None:
                if worker is None or not worker.alive:
                    worker = self._spawn(node, workdir)
                    if worker is None:  # this node gives up: init() keeps failing
                        self._release(index)
                        return
                started = time.monotonic()
                if self._first_start is None:
                    self._first_start = started
                attempt = worker.run_batch(self._batches[index], self.settings.invocation_timeout)
                self._record(index, attempt, worker, time.monotonic() - started)
                index = None
        except EntryScriptRefused as exc:
            self._abort(str(exc), release=index)
        except BaseException as exc:  # a bug here must fail the job, never let it finish quietly
            self._abort(f"local engine error on node {node}: {exc!r}", release=index)
            raise
        finally:
            if worker is not None:
                worker.stop()
            with self._cond:
                self._slots_left -= 1
                if self._slots_left == 0 and (self._queue or self._in_flight) and self._abort_reason is None:
                    self._abort_reason = self._no_worker_left()
                self._cond.notify_all()

    def _spawn(self, node: int, workdir: str) -> WorkerProcess | None:
        """A new worker process on ``node``, its ``init()`` done; None when the node stops trying (its
        ``3 * process_count_per_node``-th init() failure, which also fails the job when no other node is left)."""
        per_node = INIT_FAILURES_PER_PROCESS * self.settings.processes_per_node
        while not self._stopping():
            with self._cond:
                # while the node's last allowed failures may still come from processes starting now, wait for them:
                # the node never starts more processes than its limit lets fail
                while self._init_failures.get(node, 0) + self._starting.get(node, 0) >= per_node and (
                    self._starting.get(node, 0) and not self._stopping()
                ):
                    self._cond.wait(0.5)
                if self._init_failures.get(node, 0) >= per_node or self._stopping():
                    return None  # the node stopped starting processes
                number = self._processes_started.get(node, 0)
                self._processes_started[node] = number + 1
                self._starting[node] = self._starting.get(node, 0) + 1
            process = f"process{number:03d}"
            try:
                worker = WorkerProcess(
                    self._code, str(node), process, worker_environment(self.spec, str(node), process, workdir)
                )
                with self._cond:
                    self._workers.append(worker)
                worker.start(
                    driver_arguments(self._applied_spec(), self._code),
                    csv_options=self._csv_options,
                    partitioned=bool(self.spec.partition_keys),
                )
                return worker
            except InitFailed as exc:
                if self._init_failed(node, exc):
                    return None
            finally:
                with self._cond:
                    self._starting[node] -= 1
                    self._cond.notify_all()
        return None

    def _init_failed(self, node: int, exc: InitFailed) -> bool:
        """Count one init() failure on ``node``; True when the node stops starting processes."""
        per_node = INIT_FAILURES_PER_PROCESS * self.settings.processes_per_node
        per_job = JOB_INIT_FAILURES_PER_PROCESS * self.settings.processes_per_node * self.settings.node_count
        with self._cond:
            failures = self._init_failures[node] = self._init_failures.get(node, 0) + 1
            total = sum(self._init_failures.values())
            self._errors.append(str(exc))
        print(
            f"local engine: {exc} (init() failure {failures} of at most {per_node} on node {node})",
            file=sys.stderr,
            flush=True,
        )
        if total >= per_job and time.time() - self._started > JOB_INIT_FAILURE_SECONDS:
            self._abort(
                f"{exc}\n(the job stops: {total} init() failures after {JOB_INIT_FAILURE_SECONDS:.0f} s, "
                f"2 * node_count * process_count_per_node = {per_job})"
            )
            return True
        return failures >= per_node

    def _no_worker_left(self) -> str:
        """Why mini-batches are left with no worker process to run them (under the lock)."""
        if not self._init_failures:
            return "no worker process is left to run the remaining mini-batches"
        per_node = INIT_FAILURES_PER_PROCESS * self.settings.processes_per_node
        return (
            f"{self._errors[-1]}\n(every node stopped starting worker processes after {per_node} init() failures, "
            f"3 * process_count_per_node; {sum(self._init_failures.values())} in all)"
        )

    def _applied_spec(self) -> JobSpec:
        return dataclasses.replace(self.spec, settings=self.settings)

    def _release(self, index: int) -> None:
        """Put back a mini-batch a slot took but could not run (not a try)."""
        with self._cond:
            self._in_flight -= 1
            self._queue.appendleft(index)
            self._cond.notify_all()

    def _next_batch(self) -> int | None:
        with self._cond:
            while not self._stopping():
                if self._queue:
                    index = self._queue.popleft()
                    self._in_flight += 1
                    self._started_batches.add(index)
                    return index
                if self._in_flight == 0:
                    return None
                self._cond.wait(0.5)
            return None

    def _record(self, index: int, attempt: Attempt, worker: WorkerProcess, seconds: float) -> None:
        """Account for one ``run()`` call: keep its rows, retry it, or count its items as failed."""
        with self._cond:
            self._in_flight -= 1
            self._last_progress = time.monotonic()
            self._cond.notify_all()
            if self._stopping():
                return
            self._attempts[index] += 1
            tries = self._attempts[index]
            batch = self._batches[index]
            complete = succeeded_items(attempt, batch) == batch.count
            self._log_attempt(index, tries, worker, attempt, seconds)
            if complete:
                self._failed_batches.discard(index)
            else:
                self.counts.failed_attempts += 1
                self._failed_batches.add(index)
                if attempt.kind == "ok":
                    attempt.error = f"run() returned {len(attempt.rows)} rows for {batch.count} files"
                if tries < self.settings.run_max_try:
                    self._queue.append(index)
                    self._check_thresholds()
                    return
                self._errors.append(f"mini-batch {index} failed after {tries} tries ({attempt.kind}): {attempt.error}")
            kept = attempt.rows if attempt.kind == "ok" else []  # every element run() returned is a row
            succeeded = succeeded_items(attempt, batch)
            self.counts.succeeded_files += succeeded
            self.counts.failed_files += batch.count - succeeded
            self.counts.completed_mini_batches += 1
            self.logs.keep_rows(kept)
            self._check_thresholds()

    def _check_thresholds(self) -> None:
        if self._abort_reason is None:
            reason = self._threshold_breach()
            if reason:
                self._abort(reason)

    def _threshold_breach(self) -> str | None:
        return threshold_breach(
            self.settings,
            self.counts.failed_files,
            len(self._failed_batches),
            len(self._batches),
            len(self._started_batches),
        )

    def _abort(self, reason: str, release: int | None = None) -> None:
        with self._cond:
            if release is not None:  # the slot took this mini-batch but could not run it
                self._in_flight -= 1
            if self._abort_reason is None:
                self._abort_reason = reason
            self._cond.notify_all()

    def _stopping(self) -> bool:
        return self._abort_reason is not None or self._cancel.is_set()

    # -- supervision ------------------------------------------------------------------------------------

    def _supervise(self, threads: list[threading.Thread]) -> None:
        """Wait for the slots; on cancel or abort terminate the workers, then kill what is left."""
        signalled_at: float | None = None
        next_progress = time.monotonic()
        while any(thread.is_alive() for thread in threads):
            if not self._cancel.is_set() and os.path.exists(os.path.join(self.spec.logs_dir, CANCEL_FILE)):
                self.request_cancel()  # asked by any process that sees the run's folder (no pid involved)
            if self._stopping() and signalled_at is None:
                signalled_at = time.monotonic()
                self._signal_workers(signal.SIGTERM)
            if signalled_at is not None and time.monotonic() - signalled_at > STOP_GRACE_SECONDS:
                self._signal_workers(signal.SIGKILL)
            self._check_timeouts()
            if time.monotonic() >= next_progress:
                self._progress()
                next_progress = time.monotonic() + self.progress_interval
            for thread in threads:
                thread.join(0.05)

    def _check_timeouts(self) -> None:
        """The v2 runtime's ``--first_task_creation_timeout`` and ``--progress_update_timeout``, when asked for."""
        if self._stopping():
            return
        now = time.monotonic()
        first, progress = self._timeouts.first_task_creation, self._timeouts.progress_update
        if first is not None and self._first_start is None and now - self._last_progress > first:
            self._abort(f"no mini-batch started within --first_task_creation_timeout={first:g} s")
        elif progress is not None and now - self._last_progress > progress:
            self._abort(f"no mini-batch ended within --progress_update_timeout={progress:g} s")

    def _signal_workers(self, signum: int) -> None:
        with self._cond:
            workers = list(self._workers)
        for worker in workers:
            worker.signal(signum)

    def _final_status(self) -> tuple[str, str]:
        if self._cancel.is_set():
            return run_status.CANCELED, "canceled"
        reason = self._abort_reason or self._threshold_breach()
        if reason:
            return run_status.FAILED, reason
        return run_status.FINISHED, "finished"
