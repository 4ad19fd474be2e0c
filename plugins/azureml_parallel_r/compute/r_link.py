"""The link to one R process: the requests written to it, the responses read from it, and how it ends (asked to
exit, or killed with its whole process group and whatever else it started). :class:`RProcessLink` is a part of
:class:`~azureml_parallel_r.compute.r_session.RSession`. Standard library only: this module ships to the compute nodes.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from azureml_parallel_r.compute.r_log import RLog
from azureml_parallel_r.compute.r_processes import SessionProcesses
from azureml_parallel_r.compute.r_replies import Replies

KILL_GRACE_SECONDS = 2.0
EXIT_CHECK_SECONDS = 0.5  # how often a wait for R checks that R itself is still running (and its log's size)


class RProcessLink:
    """R's process and its two pipes; the session provides them and its log."""

    _proc: subprocess.Popen[bytes] | None
    _request_fd: int
    _response_fd: int
    _buffer: bytes
    _replies: Replies
    _processes: SessionProcesses | None
    _section_start: int
    log: RLog
    on_wait: Callable[[], None] | None

    def close(self) -> None:
        """Ask R to exit, and kill its process group if it does not within a grace period."""
        proc, self._proc = self._proc, None
        self._replies.close()
        if self._request_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self._request_fd, b'{"cmd": "exit"}\n')
            os.close(self._request_fd)
            self._request_fd = -1
        if self._response_fd >= 0:
            os.close(self._response_fd)
            self._response_fd = -1
        if proc is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_GRACE_SECONDS if proc.poll() is None else None)
        with contextlib.suppress(ProcessLookupError, PermissionError):  # R, if still there, and its leftovers
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self._last_returncode = proc.returncode
        if self._processes is not None:  # and what R started that left its process group
            self._processes.kill_all()
        self.log.cut_from(self._section_start)  # a file R was stopped in: nothing writes to the log now

    def end(self) -> None:
        """Stop R for good: :meth:`close`, then remove the session's cgroup."""
        self.close()
        if self._processes is not None:
            self._processes.close()
            self._processes = None

    _last_returncode: int | None = None
    _last_failed = False
    _batch_done = 0

    def _send(self, message: dict[str, Any]) -> bool:
        """Write one request; False when R is gone."""
        data = memoryview((json.dumps(message, ensure_ascii=True) + "\n").encode("ascii"))
        try:
            while data:
                data = data[os.write(self._request_fd, data) :]
        except BrokenPipeError:
            self._reap()
            return False
        return True

    def _receive(self, deadline: float | None) -> dict[str, Any] | None:
        """Wait for the next response line; ``None`` when R died, TimeoutError past ``deadline``.

        R's exit is noticed even while a process R started in the background (``system("... &")``) still
        holds the response pipe open: the wait is sliced, and R's own exit checked between slices."""
        while b"\n" not in self._buffer:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                self._kill()
                raise TimeoutError
            slice_ = EXIT_CHECK_SECONDS if wait is None else min(wait, EXIT_CHECK_SECONDS)
            ready, _, _ = select.select([self._response_fd], [], [], slice_)
            if not ready:
                if self.on_wait is not None:
                    self.on_wait()
                self.log.cut_from(self._section_start)
                if self._proc is not None and self._proc.poll() is not None:
                    self._kill()  # R is gone; what it left in its process group goes with it
                    return None
                continue
            chunk = os.read(self._response_fd, 1 << 16)
            if not chunk:
                self._kill()
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line.decode("utf-8", errors="replace"))

    def _kill(self) -> None:
        """Kill R's whole process group and every other process of the session (R and anything it started, also what
        left the group: ``setsid``, a double fork), whether or not R itself still runs."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        self._reap()
        if self._processes is not None:
            self._processes.kill_all()

    def _reap(self) -> None:
        if self._proc is not None:
            self._last_returncode = self._proc.wait()
