"""R's log: the file R's stdout and stderr are appended to (by R itself, ``O_APPEND``), kept bounded, with each file's
output tail cut out of it for that file's failure record. Standard library only: this module ships to the compute
nodes."""

from __future__ import annotations

import contextlib
import os

DEFAULT_MAX_LOG_BYTES = 20 * 1024 * 1024
KEEP_BYTES = 64 * 1024  # what is kept of the end of one file's output when it is cut from the log
TAIL_CHARS = 4000  # a failure record's output tail
TAIL_LINES = 40


class RLog:
    """One R session's log file.

    :param path: the file.
    :param max_bytes: when the log is past this at R's start, it is rotated to ``<log>.1`` (the previous ``.1`` is
        dropped); and what one file prints beyond this is cut (:meth:`cut_from`).
    """

    def __init__(self, path: str, max_bytes: int = DEFAULT_MAX_LOG_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes

    def size(self) -> int:
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def rotate_when_full(self) -> None:
        """Before R starts: make the log's folder, and rotate a log past ``max_bytes`` to ``<log>.1``."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        if self.size() > self.max_bytes:
            os.replace(self.path, self.path + ".1")

    def tail(self, offset: int, end: int | None = None) -> str:
        """The end of what R printed between ``offset`` and ``end`` (default: the end of the log), at most
        ``TAIL_LINES`` lines and ``TAIL_CHARS`` characters."""
        try:
            with open(self.path, "rb") as log:
                size = self.size()
                stop = size if end is None else min(end, size)  # a cut may have made the log shorter
                start = max(min(offset, stop), stop - 4 * TAIL_CHARS)
                log.seek(start)
                text = log.read(max(0, stop - start)).decode("utf-8", errors="replace")
        except OSError:
            return ""
        lines = text.splitlines()[-TAIL_LINES:]
        return "\n".join(lines)[-TAIL_CHARS:]

    def cut_from(self, start: int) -> None:
        """Cut the output of one file (what R printed since ``start``) when it is over ``max_bytes``: the log keeps
        what came before, a marker line, and the last ``KEEP_BYTES`` of that output, so one chatty file cannot fill
        the disk, and its output tail is still the end of what it printed.

        R appends to the log (``O_APPEND``), so what it prints after the cut goes after the kept part. What it prints
        while the kept part is moved is moved after it too (the log is read up to its end again until it stops
        growing, then cut there): only what R writes in the instant between that last read and the cut can be lost.

        :param start: where the file's output starts in the log.
        """
        size = self.size()
        if size - start <= self.max_bytes:
            return
        keep = min(KEEP_BYTES, self.max_bytes // 2)
        with contextlib.suppress(OSError), open(self.path, "r+b") as log:
            log.seek(size - keep)
            kept = log.read(keep)
            marker = (
                f"\n[azureml-parallel-r: {size - keep - start} bytes of one file's R output were cut here "
                f"to keep the log under {self.max_bytes} bytes; its last {len(kept)} bytes follow]\n"
            )
            log.seek(start)
            log.write(marker.encode() + kept)
            end = log.tell()
            while (grown := os.fstat(log.fileno()).st_size) > size:  # R went on printing meanwhile: keep it too
                log.seek(size)
                more = log.read(grown - size)
                log.seek(end)
                log.write(more)
                end, size = log.tell(), grown
            log.truncate(end)
