"""The files a local run writes about itself: its status, its result and error logs, the rows, and its per-try logs.

Their layout follows Azure's (the troubleshooting page, https://learn.microsoft.com/azure/machine-learning/v1/
how-to-debug-parallel-run-step): ``job_result.txt``, ``job_error.txt``, ``job_progress_overview.<YYYYMMDDHH>.txt``,
``sys/job_report/processed_mini-batches.csv``; beside them the engine's own ``status.json`` and
``sys/mini_batches.jsonl``, and the rows file, written to ``sys/<name>.partial`` as mini-batches complete and moved into
the output folder in one rename when the run ends (not on cancel).

These files are part of a run: one that cannot be written (a full or failing output disk) fails the run, with the
file and the reason, said once in one line of the controller's log (:meth:`RunLogs.write_failure`). The final status
is then written over the old one in place, which needs no new space.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from azureml_parallel_r.compute.records import STATUS_FILE
from azureml_parallel_r.engine.job import JobSpec, overwrite_json, write_json

PROCESSED_MINI_BATCHES = ("sys", "job_report", "processed_mini-batches.csv")
PROCESSED_COLUMNS = (
    "mini_batch_id",
    "try",
    "node_id",
    "process_name",
    "result",
    "items",
    "succeeded_items",
    "elapsed_seconds",
    "error_message",
)


class RunLogs:
    """The run's own files (see the module).

    :param spec: the job.
    :param on_failure: called with the reason when one of them cannot be written: the run must fail.
    """

    def __init__(self, spec: JobSpec, on_failure: Callable[[str], None]) -> None:
        self.spec = spec
        self.on_failure = on_failure
        self._lock = threading.Lock()
        self._failed = False
        self._report_started = False  # processed_mini-batches.csv has its header
        self._rows: TextIO | None = None

    def prepare(self) -> bool:
        """Make the output and logs folders; False (the run failing) when they cannot be made."""
        try:
            os.makedirs(self.spec.output_dir, exist_ok=True)
            os.makedirs(os.path.join(self.spec.logs_dir, *PROCESSED_MINI_BATCHES[:-1]), exist_ok=True)
        except OSError as exc:
            self.write_failure(exc.filename or self.spec.logs_dir, exc)
            return False
        return True

    def write_failure(self, path: str, error: OSError) -> str:
        """One of the run's files cannot be written: the run fails with that file and the reason, said in one line
        of the controller's log (no traceback). Returns the reason."""
        full = " (the disk is full)" if error.errno == errno.ENOSPC else ""
        reason = f"the local engine cannot write {path}: {error.strerror or error}{full}"
        with self._lock:
            first, self._failed = not self._failed, True
        if first:
            with contextlib.suppress(OSError):  # that log may be on the same full disk
                print(f"local engine: {reason}; the run fails", file=sys.stderr, flush=True)
        self.on_failure(reason)
        return reason

    def append(self, path: str, text: str) -> None:
        """Append to one of the run's logs; a log that cannot be written fails the run (its disk is the output's)."""
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            self.write_failure(path, exc)

    @contextlib.contextmanager
    def rows(self, name: str | None, canceled: Callable[[], bool]) -> Iterator[None]:
        """While the run goes on, its rows file (``name``; None: ``summary_only``, no rows) is open for
        :meth:`keep_rows`; when it ends, the file is moved into the output folder, or removed if ``canceled()``."""
        if name is None:
            yield
            return
        partial = os.path.join(self.spec.logs_dir, "sys", f"{name}.partial")
        try:
            handle = open(partial, "w", encoding="utf-8", errors="backslashreplace", newline="\n")  # noqa: SIM115
        except OSError as exc:
            self.write_failure(partial, exc)
            yield
            return
        with handle:
            self._rows = handle
            try:
                yield
            finally:
                self._rows = None
        target = os.path.join(self.spec.output_dir, name)
        try:
            if canceled():
                os.remove(partial)
            else:
                shutil.move(partial, target)
        except OSError as exc:
            self.write_failure(target, exc)

    def keep_rows(self, rows: Sequence[str]) -> None:
        """A completed mini-batch's rows, flushed at once: they survive a killed controller."""
        if not rows or self._rows is None:
            return
        try:
            self._rows.write("".join(f"{row}\n" for row in rows))
            self._rows.flush()
        except OSError as exc:  # rows that cannot be kept: the run cannot succeed
            self.write_failure(self._rows.name, exc)

    def log_attempt(self, row: Sequence[Any], record: dict[str, Any]) -> None:
        """One try of a mini-batch: ``row`` in the runtime's ``processed_mini-batches.csv`` (:data:`PROCESSED_COLUMNS`;
        its header with the first try) and ``record`` in the engine's own ``mini_batches.jsonl``."""
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        with self._lock:
            header, self._report_started = not self._report_started, True
        if header:
            writer.writerow(PROCESSED_COLUMNS)
        writer.writerow(row)
        self.append(os.path.join(self.spec.logs_dir, *PROCESSED_MINI_BATCHES), text.getvalue())
        self.append(os.path.join(self.spec.logs_dir, "sys", "mini_batches.jsonl"), json.dumps(record) + "\n")

    def progress(self, line: str) -> None:
        """A progress line in this hour's ``job_progress_overview``."""
        overview = os.path.join(self.spec.logs_dir, f"job_progress_overview.{time.strftime('%Y%m%d%H')}.txt")
        self.append(overview, f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    def write_results(self, result: str, error: str | None) -> bool:
        """``job_result.txt`` and, for a failed run, ``job_error.txt``; False (the run failing, see
        :meth:`write_failure`) when one cannot be written."""
        written = True
        for name, content in (("job_result.txt", result), ("job_error.txt", error)):
            if content is None:
                continue
            path = os.path.join(self.spec.logs_dir, name)
            try:
                os.makedirs(self.spec.logs_dir, exist_ok=True)
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(content)
            except OSError as exc:
                self.write_failure(path, exc)
                written = False
        return written

    def write_status(self, record: dict[str, Any], *, ended: bool = False) -> None:
        """Replace ``status.json``. When that fails, a running run fails (:meth:`write_failure`); the final status is
        then written over the old one in place, which needs no new space on a full disk."""
        path = os.path.join(self.spec.logs_dir, STATUS_FILE)
        try:
            write_json(path, record)
        except OSError as exc:
            if not ended:
                self.write_failure(path, exc)
                return
            try:
                overwrite_json(path, record)
            except OSError as again:
                with contextlib.suppress(OSError):
                    print(
                        f"local engine: cannot write the final status {path}: {again.strerror or again}; the run "
                        f"reads Failed once its heartbeat is stale",
                        file=sys.stderr,
                        flush=True,
                    )
