"""Client for one persistent R session: an R process running ``session.R`` (beside this module).

R starts once, sources the user's script once, then processes file after file. Requests and responses
travel as JSON lines over two dedicated pipes (never stdin/stdout), so nothing the user's R code prints
can corrupt them; R's stdout and stderr are appended to a log file, whose tail is attached to a failure.

A file that makes R crash (segfault, ``quit()``) or run past ``file_timeout`` fails alone: the process
group is killed and the next file gets a fresh R. A batch may also have a deadline (the runtime's
``run_invocation_timeout``): R is stopped there, and the files finished so far keep their outcomes. After a
file fails with an R error, R is restarted too (a failure may leave R broken, e.g. out of memory, and must not
fail the files after it; the cost is paid only on failure), and with ``restart_every`` R is also restarted after
that many files, to bound slow leaks. Standard library only: this module ships to the compute nodes.
"""

from __future__ import annotations

import enum
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

from azureml_parallel_r.compute.r_launch import (
    R_INSTALL_HINT,
    RSetupError,
    describe_exit,
    find_rscript,
    launch_hook,
    r_environment,
)
from azureml_parallel_r.compute.r_link import EXIT_CHECK_SECONDS, KILL_GRACE_SECONDS, RProcessLink
from azureml_parallel_r.compute.r_log import DEFAULT_MAX_LOG_BYTES, RLog
from azureml_parallel_r.compute.r_processes import SessionProcesses
from azureml_parallel_r.compute.r_replies import FileOutcome, Replies, cut_outcome, reply_outcome

__all__ = ["SESSION_R", "FileOutcome", "RSession", "RSetupError", "find_rscript"]

SESSION_R = os.path.join(os.path.dirname(os.path.abspath(__file__)), "session.R")  # the R side, in this package
POLL_SECONDS = 0.01  # how soon a waiting batch reads the replies R wrote (and checks that R still runs) ...


# ... doubling while none come, up to EXIT_CHECK_SECONDS: a long file costs a few wake-ups a second, not a hundred
class Wait(str, enum.Enum):
    """How a wait for R during a batch ended (:meth:`RSession._wait`)."""

    WAITING = "waiting"  # the poll interval went by: time to read the replies R wrote
    OVER = "over"  # R said its batch is over
    DEAD = "dead"  # R is gone
    TIMEOUT = "timeout"  # the file's deadline (--file-timeout) passed
    CUT = "cut"  # the batch's deadline (run_invocation_timeout's margin) passed


# one item of a batch: (input path, output folder), and for a table's partition how R reads it (compute/tables.py)
Item = tuple[str, str] | tuple[str, str, dict[str, Any]]


def batch_item(item: Item) -> dict[str, Any]:
    """One item of a batch request, as ``session.R`` reads it.

    :param item: ``(input_path, output_dir)``, or ``(csv_path, output_dir, table)`` for a table's partition.
    """
    request: dict[str, Any] = {"input": item[0], "output_dir": item[1]}
    if len(item) > 2:
        request["table"] = item[2]
    return request


class RSession(RProcessLink):
    """One R process running ``session.R`` with the user's script loaded.

    :param r_script: path of the R script defining ``process_file(input_path, output_dir, args)``.
    :param log_path: file that receives R's stdout and stderr (appended).
    :param rscript: the Rscript executable (a path or a name on PATH).
    :param file_timeout: seconds one file may take before R is killed; ``None`` for no limit.
    :param start_timeout: seconds R may take to start and source the script.
    :param env: environment for R; defaults to this process's, with a UTF-8 locale.
    :param restart_every: restart R after this many files (``None``: only after a failure).
    :param max_log_bytes: when R's log grows past this, R is restarted and the log rotated to ``<log>.1``
        (the previous ``.1`` is dropped), so a chatty script cannot fill the disk; and what one file prints beyond
        this is cut from the log, while the file runs and when it ends, leaving a marker line and the last 64 KB
        (so the file's output tail stays right).
    :param on_wait: called every ``EXIT_CHECK_SECONDS`` while R works on a batch: the caller's chance to make
        what it has done so far durable before a long file (which a timeout may kill).
    :param packages: the R packages declared for the script (``r_packages.RPackage.to_dict()``); R checks them and
        the ones the script names before it runs the script, and refuses to start without them.
    """

    def __init__(
        self,
        r_script: str,
        log_path: str,
        *,
        rscript: str = "Rscript",
        file_timeout: float | None = None,
        start_timeout: float = 120.0,
        env: dict[str, str] | None = None,
        restart_every: int | None = None,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
        on_wait: Callable[[], None] | None = None,
        packages: list[dict[str, str | None]] | None = None,
    ) -> None:
        self.r_script = os.path.abspath(r_script)
        self.packages = list(packages or [])
        self.log_path = log_path
        self.log = RLog(log_path, max_log_bytes)
        self.rscript = rscript
        self.file_timeout = file_timeout
        self.start_timeout = start_timeout
        self.env = env
        self.restart_every = restart_every
        self.max_log_bytes = max_log_bytes
        self.on_wait = on_wait
        self.starts = 0
        self.functions: tuple[str, ...] = ()  # of process_file and process_partition, those the script defines
        self._files_since_start = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._request_fd = -1
        self._response_fd = -1
        self._buffer = b""
        self._replies = Replies()
        self._checked = 0.0  # when a wait last ran on_wait and checked the log
        self._section_start = 0  # where the output of the file R works on starts in the log
        self._processes: SessionProcesses | None = None

    @property
    def processes(self) -> SessionProcesses:
        """Every process of this session, R's descendants that left its process group included (made on first use:
        its cgroup, where one can be made, lives until :meth:`end`)."""
        if self._processes is None:
            self._processes = SessionProcesses()
        return self._processes

    @property
    def pid(self) -> int | None:
        """The R process's id, while one runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start R and load the script; raise :class:`RSetupError` with R's own message on failure."""
        self.close()
        rscript = find_rscript(self.rscript)
        self.log.rotate_when_full()
        offset = self._section_start = self.log.size()
        request_r, request_w = os.pipe()
        response_r, response_w = os.pipe()
        try:
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    [rscript, "--vanilla", SESSION_R, str(request_r), str(response_w)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    pass_fds=(request_r, response_w),
                    env=self.processes.environment(r_environment(os.environ if self.env is None else self.env)),
                    preexec_fn=launch_hook(self.processes),
                )
        except OSError as exc:
            for fd in (request_r, request_w, response_r, response_w):
                os.close(fd)
            raise RSetupError(f"cannot start {rscript}: {exc}; {R_INSTALL_HINT}") from exc
        os.close(request_r)
        os.close(response_w)
        self._request_fd, self._response_fd, self._buffer = request_w, response_r, b""
        self.starts += 1
        self.processes.mark()  # an OOM kill counted from here on is this R's
        self._files_since_start = 0
        self._last_failed = False
        reply = None
        load = {
            "cmd": "load",
            "script": self.r_script,
            "log": os.path.abspath(self.log_path),
            "packages": self.packages,
        }
        if self._send(load):
            reply = self._receive(time.monotonic() + self.start_timeout)
        if reply is not None and reply.get("ok"):
            self.functions = tuple(str(name) for name in reply.get("functions") or ())
        if reply is None or not reply.get("ok"):
            tail = self.log.tail(offset)
            self.close()
            reason = reply.get("error") if reply else self._exit_reason()[1]
            raise RSetupError(
                f"R could not load {self.r_script}: {reason}" + (f"\n--- R output ---\n{tail}" if tail else "")
            )

    def process(
        self,
        input_path: str,
        output_dir: str,
        args: list[str],
        deadline: float | None = None,
        table: dict[str, Any] | None = None,
    ) -> FileOutcome:
        """Run ``process_file`` on one file, or ``process_partition`` on a table's partition (see
        :meth:`process_many`).

        :param input_path: the input file (a partition's CSV, with ``table``).
        :param output_dir: the folder that receives the file's outputs; R creates it (its parent must exist).
        :param args: extra arguments passed to ``process_file`` as a character vector.
        :param deadline: a ``time.monotonic()`` time the file must be done by (see :meth:`process_many`).
        :param table: how R reads a partition's CSV (:func:`batch_item`); None for a file.
        """
        item: Item = (input_path, output_dir) if table is None else (input_path, output_dir, table)
        outcomes = list(self.process_many([item], args, deadline=deadline))
        return outcomes[0] if outcomes else self._cut(time.monotonic(), self.log.size())

    def process_many(
        self, items: Sequence[Item], args: list[str], *, deadline: float | None = None
    ) -> Iterator[FileOutcome]:
        """Run ``process_file`` on many files, yielding one outcome per file, in order, as R finishes each.

        The whole list goes to R in one request, so R never waits between files while the caller handles
        the outcomes. A crash or a file past ``file_timeout`` fails that file alone: R is restarted and
        the remaining files are sent again. Stopping the iteration early stops R.

        :param items: ``(input_path, output_dir)`` pairs; R creates each output folder right before its file
            (its parent must exist; a folder that already exists is used as it is); a table's partition is
            ``(csv_path, output_dir, table)`` (:func:`batch_item`), for ``process_partition``.
        :param args: extra arguments passed to ``process_file`` as a character vector.
        :param deadline: a ``time.monotonic()`` time by which the batch must be over (the runtime's
            ``run_invocation_timeout``, less a margin): R is stopped there, the file it was working on gets an
            ``invocation_timeout`` outcome, and the iteration ends early, the files not reached having none.
        """
        pending = list(items)
        finished = False
        try:
            while pending:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if not self.alive:
                    self.start()
                done = yield from self._run_batch(pending, list(args), deadline)
                pending = pending[done:]
            finished = True
        finally:
            if not finished:
                self.close()

    def _run_batch(
        self, items: list[Item], args: list[str], batch_deadline: float | None = None
    ) -> Generator[FileOutcome, None, int]:
        """Send one batch request; yield outcomes until it ends, R dies or ``batch_deadline`` passes; return how
        many files were done (``len(items)`` once the deadline passed: nothing more is sent).

        R appends each file's reply to a plain file that no one waits on (so R never wakes this process, which
        would take the core from R); this process wakes after ``POLL_SECONDS`` (twice as long each time no reply
        came, up to ``EXIT_CHECK_SECONDS``), reads the replies written since, and yields their outcomes; and at once
        when R says the batch is over, or when R dies, or when the file R works on reaches ``file_timeout`` (known
        from the previous reply's end)."""
        offset = self.log.size()
        self._replies.reset()
        request: dict[str, Any] = {
            "cmd": "batch",
            "files": [batch_item(item) for item in items],
            "args": args,
            "stop_on_error": True,  # a failure may leave R broken: the files after it get a fresh R
            "max_log_bytes": self.max_log_bytes,
            "replies": self._replies.path,
        }
        if self.restart_every is not None:
            request["max_files"] = max(1, self.restart_every - self._files_since_start)
        status = Wait.WAITING if self._send(request) else Wait.DEAD
        done = 0
        started = time.monotonic()  # when the file R works on started
        poll = POLL_SECONDS
        while True:
            if status == Wait.WAITING:
                file_deadline = None if not self.file_timeout else started + self.file_timeout
                status = self._wait(file_deadline, batch_deadline, poll)
            if status in (Wait.CUT, Wait.DEAD):
                self._kill()  # R (and what it started) stops before its last replies are read
            taken = self._read_replies(offset)
            if status == Wait.TIMEOUT and taken:
                status = Wait.WAITING  # the late file was done after all: the next one has its own time
            elif status == Wait.TIMEOUT:
                self._kill()
                taken = self._read_replies(offset)  # what R wrote before it was killed
            poll = POLL_SECONDS if taken else min(2 * poll, EXIT_CHECK_SECONDS)
            for outcome, end, next_start in taken:
                done += 1
                started = next_start
                self._section_start = offset = end
                yield outcome
            if status == Wait.WAITING:
                self._between_reads()
                continue
            if status == Wait.OVER:
                return (yield from self._batch_over(done, len(items)))
            self.close()
            if done >= len(items):  # R was done with every file when it died or was stopped
                return done
            yield self._stopped_in(status, started, offset)
            return len(items) if status == Wait.CUT else done + 1  # past the batch's deadline, nothing more is sent

    def _batch_over(self, done: int, total: int) -> Generator[FileOutcome, None, int]:
        """R says its batch is over after ``self._batch_done`` files, ``done`` of whose replies were read. A file whose
        reply is missing (a full temporary disk) fails rather than being sent to R again and again; R stops when it
        stopped early (at a file boundary, as asked) or should not take more files."""
        while done < min(self._batch_done, total):
            done += 1
            yield FileOutcome(
                ok=False,
                kind="crash",
                error=f"R finished the file, but its reply could not be read back from {self._replies.path} (is the "
                "node's temporary disk full?)",
            )
        if done < total or self._stale():
            self.close()
        return done

    def _stopped_in(self, status: Wait, started: float, offset: int) -> FileOutcome:
        """The outcome of the file R was in when it was stopped (``cut``, ``timeout``) or died (``dead``)."""
        if status == Wait.CUT:
            return self._cut(started, offset)
        if status == Wait.TIMEOUT:
            kind = "timeout"
            error = f"timed out after {self.file_timeout:g} s (--file-timeout); R was killed and restarted"
        else:
            kind, error = self._exit_reason()
        return FileOutcome(
            False, kind=kind, error=error, stderr_tail=self.log.tail(offset), seconds=time.monotonic() - started
        )

    def _exit_reason(self) -> tuple[str, str]:
        """(kind, error) of R's death on its own: ``out_of_memory`` when the kernel's OOM killer ended it (a ``SIGKILL``
        that the session's cgroup counted as one, with the memory limit), else ``crash``, saying how R ended."""
        if self._last_returncode == -signal.SIGKILL:
            oom = self.processes.out_of_memory()
            if oom:
                return "out_of_memory", oom
        return "crash", describe_exit(self._last_returncode)

    def _between_reads(self) -> None:
        """Every ``EXIT_CHECK_SECONDS`` of a batch, once its replies so far are read: the caller's ``on_wait``,
        and the output of the file R works on cut when it is past ``max_log_bytes`` (where that output starts is
        known from the last reply, hence after reading them)."""
        now = time.monotonic()
        if now - self._checked < EXIT_CHECK_SECONDS:
            return
        self._checked = now
        if self.on_wait is not None:
            self.on_wait()
        self.log.cut_from(self._section_start)

    def _read_replies(self, offset: int) -> list[tuple[FileOutcome, int, float]]:
        """The replies R wrote since the last read, as (outcome, where the file's output ends in the log, when the
        next file started); ``offset``: where the first one's output starts in the log."""
        taken = []
        for reply in self._replies.read():
            log_end = reply.get("log_end")
            end = int(log_end) if isinstance(log_end, int | float) else self.log.size()
            if end - offset > self.max_log_bytes:  # R stops after such a file: nothing writes to the log now
                self.log.cut_from(offset)
                end = reply["log_end"] = self.log.size()
            taken.append((self._outcome(reply, offset), end, self._started_at(reply.get("end"))))
            self._files_since_start += 1
            offset = end
        return taken

    @staticmethod
    def _started_at(end: Any) -> float:
        """The ``time.monotonic()`` time of R's wall-clock ``end`` of a file (the next file's start)."""
        if not isinstance(end, int | float):
            return time.monotonic()
        return time.monotonic() - max(0.0, time.time() - float(end))

    def _wait(self, file_deadline: float | None, batch_deadline: float | None, poll: float = POLL_SECONDS) -> Wait:
        """Sleep until R says its batch is over (``over``), R is gone (``dead``), a deadline passes (``timeout``
        for ``file_deadline``, ``cut`` for ``batch_deadline``) or ``poll`` seconds went by (``waiting``: time to
        read the replies)."""
        now = time.monotonic()
        due = [(d, s) for d, s in ((file_deadline, Wait.TIMEOUT), (batch_deadline, Wait.CUT)) if d is not None]
        first = min(due, default=None)
        if first is not None and first[0] <= now:
            return first[1]
        wait = poll if first is None else min(poll, first[0] - now)
        ready, _, _ = select.select([self._response_fd], [], [], wait)
        if ready:
            try:
                reply = self._receive(time.monotonic() + KILL_GRACE_SECONDS)
            except TimeoutError:  # a partial line, and R silent: it is gone
                return Wait.DEAD
            if reply is None or not isinstance(reply.get("done"), int):
                return Wait.DEAD
            self._batch_done = reply["done"]  # how many files R did (their replies are in the file)
            return Wait.OVER
        if self._proc is not None and self._proc.poll() is not None:
            return Wait.DEAD  # R is gone, though something it started still holds the pipe
        return Wait.WAITING

    def _cut(self, started: float, offset: int) -> FileOutcome:
        return cut_outcome(self.log.tail(offset), time.monotonic() - started)

    def _stale(self) -> bool:
        """True when R should not take another file: its last file failed, it did ``restart_every`` files,
        or its log is past ``max_log_bytes``."""
        worn = self.restart_every is not None and self._files_since_start >= self.restart_every
        return self._last_failed or worn or self.log.size() > self.max_log_bytes

    def _outcome(self, reply: dict[str, Any], offset: int) -> FileOutcome:
        self._last_failed = not reply.get("ok")
        return reply_outcome(reply, lambda: self.log.tail(offset, int(reply.get("log_end") or 0) or None))
