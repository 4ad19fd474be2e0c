"""What R answers for each file: its outcome, and the file R appends a batch's replies to. Standard library only:
this module ships to the compute nodes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FileOutcome:
    """What happened to one input file in R.

    :param ok: True when ``process_file`` returned without an R error.
    :param value: the JSON-able value ``process_file`` returned.
    :param error: the R error message, or what killed R.
    :param kind: ``ok``, ``r_error``, ``crash``, ``timeout`` (past ``file_timeout``) or ``invocation_timeout``
        (stopped at its batch's deadline).
    :param call: the R call that raised, when R reported one.
    :param warnings: R warnings raised while processing the file (at most 20).
    :param stderr_tail: the end of what R printed while processing the file (failures only).
    :param seconds: wall-clock seconds spent on the file.
    """

    ok: bool
    value: Any = None
    error: str | None = None
    kind: str = "ok"
    call: str | None = None
    warnings: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    seconds: float = 0.0


class Replies:
    """The file R appends a batch's replies to (one JSON line per file), read on from where the last read stopped.
    It lives in the temporary folder, not beside the log (a runtime uploads the log folder), and goes with
    :meth:`close`."""

    def __init__(self) -> None:
        self.path = ""
        self._fd = -1
        self._partial = b""

    def reset(self) -> None:
        """Empty the file (made on first use) for a new batch."""
        if self._fd < 0:
            self._fd, self.path = tempfile.mkstemp(prefix="azureml-parallel-r-replies-", suffix=".jsonl")
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._partial = b""

    def read(self) -> list[dict[str, Any]]:
        """The complete lines written since the last read (a line R is still writing waits for the next read)."""
        if self._fd < 0:
            return []
        chunks = [self._partial]
        while chunk := os.read(self._fd, 1 << 20):
            chunks.append(chunk)
        *lines, self._partial = b"".join(chunks).split(b"\n")
        return [json.loads(line.decode("utf-8", errors="replace")) for line in lines if line]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self._fd, self.path, self._partial = -1, "", b""


def reply_outcome(reply: dict[str, Any], stderr_tail: Callable[[], str]) -> FileOutcome:
    """The outcome of a file from R's reply for it: its value, or its R error with the end of what R printed.

    :param reply: R's reply (``ok``, ``value`` or ``error`` and ``call``, ``warnings``, ``seconds``).
    :param stderr_tail: reads the end of what R printed for the file (read only for a failure).
    """
    warnings = [str(w) for w in reply.get("warnings") or []]
    seconds = float(reply.get("seconds") or 0.0)
    if reply.get("ok"):
        return FileOutcome(ok=True, value=reply.get("value"), warnings=warnings, seconds=seconds)
    return FileOutcome(
        ok=False,
        kind="r_error",
        error=str(reply.get("error")),
        call=reply.get("call"),
        warnings=warnings,
        stderr_tail=stderr_tail(),
        seconds=seconds,
    )


def cut_outcome(stderr_tail: str, seconds: float) -> FileOutcome:
    """The outcome of the file R was stopped in when its mini-batch reached ``run_invocation_timeout``.

    :param stderr_tail: the end of what R printed for the file.
    :param seconds: how long it ran.
    """
    return FileOutcome(
        ok=False,
        kind="invocation_timeout",
        error="not finished: its mini-batch reached run_invocation_timeout first (R was stopped so that the files "
        "finished before it keep their results)",
        stderr_tail=stderr_tail,
        seconds=seconds,
    )
