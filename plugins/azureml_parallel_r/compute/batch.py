"""One worker process's files through one R script: run each file, file its outputs, record its failure.

:class:`BatchProcessor` is what the entry script (``include/entry/batch_wrapper.py``) drives: it parses nothing and
knows no runtime; it takes an :class:`~azureml_parallel_r.compute.entry_config.EntryConfig` and a log folder, starts
R once (:mod:`azureml_parallel_r.compute.r_session`), and for each mini-batch returns the result rows of the files
that succeeded and writes a failure record for each file that did not (:mod:`azureml_parallel_r.compute.records`).
Standard library only: it ships to the compute nodes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from azureml_parallel_r.compute.entry_config import EntryConfig
from azureml_parallel_r.compute.entry_settings import invocation_margin
from azureml_parallel_r.compute.journal import Journal
from azureml_parallel_r.compute.output_layout import OutputLayout, json_line, relative_input_path
from azureml_parallel_r.compute.r_session import FileOutcome, Item, RSession, RSetupError
from azureml_parallel_r.compute.records import FailureRecord, ResultRow
from azureml_parallel_r.compute.tables import key_values, partition_path, write_table

__all__ = ["BatchProcessor", "PartitionFailed", "runtime_context"]

# R warnings that say a write failed: R goes on after them, with an output it did not finish
WRITE_FAILURE_WARNINGS = ("problem writing to connection", "problem closing connection", "No space left on device")
logger = logging.getLogger("azureml_parallel_r.entry")


ENTRY_SCRIPT_LOGS = "user/entry_script_log/"  # the runtime's folder of entry-script logs, in a run's logs folder


def run_log_name(path: str) -> str:
    """Where an R log is, as a failure record names it: below the run's logs folder where it is in the runtime's
    ``user/entry_script_log/`` (Azure ML studio shows that folder under the step's "Outputs + logs"; the local engine
    keeps it in ``logs/``), else its absolute path.

    :param path: the R log's path on the node.
    """
    full = os.path.abspath(path).replace(os.sep, "/")
    at = full.rfind("/" + ENTRY_SCRIPT_LOGS)
    return full[at + 1 :] if at >= 0 else full


def runtime_context() -> tuple[str, str, str]:
    """Return (log folder, process name, log name): the runtime's ``EntryScript().log_dir``, whose content Azure ML
    uploads with the job's logs (``logs/user/entry_script_log/<node_id>/``); ``<host>-<pid>``, unique across the nodes
    and processes of a job (the journal and scratch folders are named after it); and ``EntryScript().agent_name``
    (``processNNN``, unique on its node: "The process name in pattern processNNN", Troubleshooting the
    ParallelRunStep), which names R's log in that folder as the runtime names the process's own logs (``<host>-<pid>``
    where the runtime has no agent name). Outside a ParallelRunStep runtime (run by hand, tests), a folder under the
    temporary directory."""
    name = f"{socket.gethostname()}-{os.getpid()}"
    try:
        from azureml_user.parallel_run import EntryScript
    except ImportError:  # not under a ParallelRunStep runtime
        return os.path.join(tempfile.gettempdir(), "azureml-parallel-r-logs"), name, name
    entry_script = EntryScript()
    return str(entry_script.log_dir), name, str(getattr(entry_script, "agent_name", None) or name)


class PartitionFailed(RuntimeError):
    """A table's mini-batch failed in R (its failure record says why): ``run()`` raises it, so that the runtime counts
    the mini-batch failed and tries it again, as it does a file missing from ``run()``'s rows."""


class BatchProcessor:
    """Processes files with one R script and files their outputs; one instance per worker process.

    :param config: the parsed entry-script settings.
    :param log_dir: folder for the R session's log (stdout and stderr of R).
    :param process_name: a name unique to this worker process.
    :param log_name: the R log's name in ``log_dir/r/`` (default: ``process_name``).
    """

    def __init__(self, config: EntryConfig, log_dir: str, process_name: str, log_name: str | None = None) -> None:
        self.config = config
        self.layout = OutputLayout(
            config.output_dir, process_name, results_dir=config.results_dir, failures_dir=config.failures_dir
        )
        self.journal = Journal(config.results_dir, process_name)
        self._real_root = os.path.realpath(config.input_root)
        self._real_folders: dict[str, str] = {}  # an input folder -> its real path (links resolved)
        self.session = RSession(
            config.r_script,
            os.path.join(log_dir, "r", f"{log_name or process_name}.txt"),
            rscript=config.rscript,
            file_timeout=config.file_timeout,
            restart_every=config.restart_every,
            on_wait=self.journal.flush,
            packages=list(config.r_packages),
        )

    def start(self) -> None:
        """Start R and load the script once, so a broken script fails here and not per file: one that does not
        define the function the input needs (``process_partition`` for ``--input-kind table``, else
        ``process_file``) too."""
        os.makedirs(os.path.dirname(self.config.results_dir), exist_ok=True)  # the output folder; results/ on use
        self.layout.remove_stale_scratch()
        self.session.start()
        needed, signature, other = (
            ("process_partition", "process_partition(data, keys, output_dir, args)", "process_file")
            if self.config.input_kind == "table"
            else ("process_file", "process_file(input_path, output_dir, args)", "process_partition")
        )
        if needed not in self.session.functions:
            self.session.end()
            raise RSetupError(
                f"the R script {self.config.r_script} defines no {signature}, which a {self.config.input_kind} input "
                f"needs (it defines {other}, for a {'file' if other == 'process_file' else 'table'} input)"
            )
        if self.config.r_mode == "per-file":
            self.session.close()

    def process_batch(self, input_paths: list[str]) -> list[str]:
        """Process a mini-batch; return the JSON result rows of the files that succeeded.

        Worker mode streams the whole list through one R process; per-file mode starts R for each file.
        Failed files are recorded under ``failures/`` and left out of the rows.

        :param input_paths: local paths of the input files.
        """
        timeout = self.config.invocation_timeout
        deadline = time.monotonic() + timeout - invocation_margin(timeout) if timeout else None
        relatives = [relative_input_path(path, self.config.input_root) for path in input_paths]  # or raise
        self.layout.refresh()
        self._real_folders = {}  # worked out again per mini-batch: memory stays flat, a folder replaced is seen
        done = self._finished_earlier(relatives)
        if done:  # a retried mini-batch: only the files without results from an earlier try run again
            logger.info("%d of %d files of this mini-batch have results from an earlier try", len(done), len(relatives))
        todo = [i for i, relative in enumerate(relatives) if relative not in done]
        todo = [i for i in todo if not self._leads_outside(input_paths[i], relatives[i])]
        logger.debug("mini-batch of %d file(s): %d to run in R", len(input_paths), len(todo))
        if len(todo) == len(input_paths):
            return self._run_files(input_paths, relatives, deadline)
        return list(done.values()) + self._run_files(
            [input_paths[i] for i in todo], [relatives[i] for i in todo], deadline
        )

    def process_table(self, frame: Any, keys: dict[str, Any] | None = None) -> list[str]:
        """Process one mini-batch of a table (a partition with ``keys``, or a slice of rows) with the R script's
        ``process_partition(data, keys, output_dir, args)``; return its result row. Its outputs go to
        ``results/<partition path>/`` (:func:`~azureml_parallel_r.compute.tables.partition_path`); a retried
        mini-batch whose result an earlier try kept returns that row.

        :param frame: the mini-batch's pandas DataFrame, as the runtime hands it to ``run()``.
        :param keys: ``mini_batch_context.partition_key_value`` (None: no partition keys).
        :raises PartitionFailed: the partition failed (its failure record is written): the runtime counts the
            mini-batch failed and tries it again while tries are left.
        """
        relative = partition_path(keys, frame)
        if "process_partition" not in self.session.functions:
            error = (
                f"the R script {self.config.r_script} defines no process_partition(data, keys, output_dir, args), "
                "which a table input (an MLTable folder) needs: define it (process_file is for file inputs)"
            )
            self._failed(relative, relative, FileOutcome(ok=False, kind="r_error", error=error))
            raise PartitionFailed(error)
        timeout = self.config.invocation_timeout
        deadline = time.monotonic() + timeout - invocation_margin(timeout) if timeout else None
        self.layout.refresh()
        done = self._finished_earlier([relative])
        if done:
            logger.info("partition %r has its result from an earlier try", relative)
            return list(done.values())
        (csv_path,) = self.layout.scratch_paths(1)
        csv_path += ".csv"
        try:
            table = write_table(frame, csv_path)
            table["keys"] = key_values(keys)
            rows = self._run_files([relative], [relative], deadline, tables=[(csv_path, table)])
        finally:
            with contextlib.suppress(OSError):
                os.remove(csv_path)
        if not rows:
            raise PartitionFailed(f"partition {relative!r} failed: see failures/{relative}.json")
        return rows

    def _leads_outside(self, input_path: str, relative: str) -> bool:
        """True (and the file failed, with a record saying where it leads) when ``input_path`` is, or lies in a
        folder that is, a link whose target is outside the dataset root: such a file is never handed to R. One
        ``lstat`` per file; each folder's real path is worked out once."""
        folder = os.path.dirname(input_path)
        real_folder = self._real_folders.get(folder)
        if real_folder is None:
            real_folder = self._real_folders[folder] = os.path.realpath(folder)
        try:
            is_link = stat.S_ISLNK(os.lstat(input_path).st_mode)
        except OSError:
            return False  # gone: R's own error says so
        real = os.path.realpath(input_path) if is_link else os.path.join(real_folder, os.path.basename(input_path))
        root = self._real_root
        if real == root or real.startswith(os.path.join(root, "")):
            return False
        self._failed(
            input_path,
            relative,
            FileOutcome(
                ok=False,
                kind="outside_input",
                error=f"it leads to {real}, outside the input folder {root}: a link out of "
                "the input folder is never read (register the file itself, inside the folder)",
            ),
        )
        return True

    def _run_files(
        self,
        input_paths: list[str],
        relatives: list[str],
        deadline: float | None = None,
        tables: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> list[str]:
        """Run R over the files until ``deadline`` (``time.monotonic()``); return the rows of those that succeeded.
        Files the deadline left unfinished fail with a record; the runtime counts them and tries them again.
        With ``tables`` (per item, its CSV and how R reads it) the items are a table's partitions, and
        ``input_paths`` are what their rows and records name as their input."""
        if not input_paths:
            return []
        scratches = self.layout.scratch_paths(len(input_paths))  # R creates each one
        args = list(self.config.r_args)
        items: list[Item] = (
            list(zip(input_paths, scratches, strict=True))
            if tables is None
            else [(csv, scratch, table) for (csv, table), scratch in zip(tables, scratches, strict=True)]
        )
        if self.config.r_mode == "per-file":
            outcomes: Iterator[FileOutcome] = self._process_alone(items, args, deadline)
        else:
            outcomes = self.session.process_many(items, args, deadline=deadline)
        rows = []
        handled = 0
        try:
            for outcome in outcomes:
                row = self._file_done(input_paths[handled], relatives[handled], scratches[handled], outcome)
                handled += 1
                if row is not None:
                    rows.append(row)
            if handled < len(items):  # the deadline came first: these files were not started
                logger.warning(
                    "run_invocation_timeout is near: %d of %d files of this mini-batch were not started",
                    len(items) - handled,
                    len(items),
                )
                for i in range(handled, len(items)):
                    self.layout.discard(scratches[i])
                    self._failed(
                        input_paths[i],
                        relatives[i],
                        FileOutcome(
                            ok=False,
                            kind="invocation_timeout",
                            error="not started: its mini-batch reached run_invocation_timeout first",
                        ),
                    )
                handled = len(items)
        finally:
            self.journal.flush()
            for scratch in scratches[handled:]:  # files not reached when R could not be restarted
                self.layout.discard(scratch)
        return rows

    def _finished_earlier(self, relatives: list[str]) -> dict[str, str]:
        """Begin the mini-batch's journal; return the rows of its files that an earlier try of it finished (in
        its journals, with their results folder still there). A first try reads no journal, and only the files
        found in them are checked on disk, so it costs no per-file system call.
        ``AZUREML_PARALLEL_R_RESUME=0`` turns this off (the benchmark's baseline)."""
        finished = self.journal.begin(relatives)
        if os.environ.get("AZUREML_PARALLEL_R_RESUME") == "0":
            return {}
        return {
            relative: row for relative, row in finished.items() if os.path.isdir(self.layout.results_path(relative))
        }

    def _process_alone(self, items: list[Item], args: list[str], deadline: float | None) -> Iterator[FileOutcome]:
        """Per-file mode: a fresh R process for each file, none started once ``deadline`` has passed."""
        for item in items:
            if deadline is not None and time.monotonic() >= deadline:
                return
            try:
                table = item[2] if len(item) > 2 else None
                yield self.session.process(item[0], item[1], args, deadline=deadline, table=table)
            finally:
                self.session.close()

    def _file_done(self, input_path: str, relative: str, scratch: str, outcome: FileOutcome) -> str | None:
        """File a finished file's outputs or its failure; return its result row when it succeeded."""
        outcome = self._checked_writes(outcome)  # before anything is removed: the disk as the file left it
        if not outcome.ok:
            self.layout.discard(scratch)
            self._failed(input_path, relative, outcome)
            return None
        try:
            outputs = self.layout.commit(scratch, relative)
        except OSError as exc:  # this file's outputs cannot be filed: it fails alone, the others keep their rows
            self.layout.discard(scratch)
            full = " (the output disk is full)" if exc.errno == errno.ENOSPC else ""
            self._failed(
                input_path,
                relative,
                dataclasses.replace(
                    outcome,
                    ok=False,
                    kind="filing_error",
                    value=None,
                    error=f"its outputs could not be put under results/{full}: {exc.strerror or exc}"
                    + (f": {exc.filename}" if exc.filename else ""),
                ),
            )
            return None
        self.layout.clear_failure(relative)
        row = ResultRow(
            input=input_path,
            relative_path=relative,
            outputs=outputs,
            seconds=outcome.seconds,
            value=outcome.value,
            warnings=list(outcome.warnings),
        )
        line = json_line(row.to_json())
        self.journal.record(relative, line)
        return line

    def _checked_writes(self, outcome: FileOutcome) -> FileOutcome:
        """The outcome, failed when the file's writes may not all have reached the disk: R warned that a write
        failed, or the node's scratch disk was full while the file ran (R does not notice every failed write: a
        ``png()`` device leaves a truncated image without a word). A failure that met a full disk says so."""
        full = self.layout.scratch_full(time.time() - outcome.seconds)  # R runs ahead: no earlier than its start
        if outcome.ok:
            warned = [w for w in outcome.warnings if any(text in w for text in WRITE_FAILURE_WARNINGS)]
            if full or warned:
                reason = f"{full}; free space on it, or write smaller outputs" if full else f"R warned: {warned[0]}"
                return dataclasses.replace(
                    outcome,
                    ok=False,
                    value=None,
                    kind="disk_full" if full else "write_error",
                    error=f"its outputs may be incomplete: {reason}",
                )
        elif full and outcome.kind in ("r_error", "crash"):
            return dataclasses.replace(outcome, kind="disk_full", error=f"{full}: {outcome.error}")
        return outcome

    def _failed(self, input_path: str, relative: str, outcome: FileOutcome) -> None:
        """Record a failed file (``failures/<path>.json``) and log it; a record that cannot be written is logged
        and never fails the other files of the mini-batch."""
        try:
            attempt = self.layout.record_failure(relative, self._failure_record(input_path, relative, outcome))
        except OSError as exc:
            logger.error(
                "%r failed (%s: %r) and its failure record could not be written: %s",
                relative,
                outcome.kind,
                outcome.error,
                exc,
            )
            return
        # names and errors as Python literals: a name or an R message holding a line break cannot forge a log line
        logger.warning("%r failed (attempt %d, %s): %r", relative, attempt, outcome.kind, outcome.error)

    def _failure_record(self, input_path: str, relative: str, outcome: FileOutcome) -> FailureRecord:
        return FailureRecord(
            input=input_path,
            relative_path=relative,
            kind=outcome.kind,
            error=outcome.error or outcome.kind,
            call=outcome.call,
            warnings=list(outcome.warnings),
            stderr_tail=outcome.stderr_tail,
            seconds=outcome.seconds,
            r_script=self.config.r_script,
            process=os.path.basename(self.layout.scratch_root),
            log=run_log_name(self.session.log_path),
        )

    def close(self) -> None:
        self.session.end()
        self.journal.close()
        self.layout.remove_scratch()
