"""The files of a run that already have their results, so that a retried mini-batch re-runs only the others.

The ParallelRunStep runtime retries a whole mini-batch when ``run()`` raised, timed out or returned fewer rows
than files; without a record, the files that had succeeded would run again on every try, and the rows of the
files a timed-out try had finished would be lost. After a file's outputs are in place, its row is appended
(one line) to this process's journal, in a folder on the node's local disk shared by the run's processes; the
lines are written out at the end of each mini-batch and while R works on a long file (see
:meth:`Journal.flush`). A process killed in any other way (out of memory) loses the lines not yet written (of
its current mini-batch, at most one 8 KB buffer): those files run again, which is correct, only slower. A
retried mini-batch that lands on the same node takes the rows of its finished files from the journals and runs
only the rest; one on another node runs them again, which is also correct (outputs are replaced whole). The
journal is on local disk, not on the output mount: appending to a blob rewrites it.

Standard library only: this module ships to the compute nodes.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile

JOURNAL_DIR = "azureml-parallel-r-journal"


class Journal:
    """The finished files of one run (keyed by the run's results folder), shared by its processes on a node.

    :param run_folder: a folder of the run's own, its results folder (identifies the run).
    :param process_name: this process's name (its journal file).
    :param base_dir: the local folder for journals (default: the system's temporary folder).
    """

    def __init__(self, run_folder: str, process_name: str, base_dir: str | None = None) -> None:
        run = hashlib.sha256(os.path.abspath(run_folder).encode("utf-8", "surrogateescape")).hexdigest()[:20]
        self.folder = os.path.join(base_dir or tempfile.gettempdir(), JOURNAL_DIR, run)
        self.path = os.path.join(self.folder, f"{process_name}.jsonl")
        self._handle = None
        self._rows: dict[str, str] = {}
        self._read: dict[str, int] = {}

    def record(self, relative_path: str, row: str) -> None:
        """Remember that ``relative_path`` is done, with its row (one line of JSON)."""
        if self._handle is None:
            os.makedirs(self.folder, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        self._handle.write(row + "\n")  # buffered: see flush()
        self._rows[relative_path] = row

    def flush(self) -> None:
        """Write out the recorded lines. Called at the end of each mini-batch and whenever R has worked on one
        file for a while, so a try killed by ``run_invocation_timeout`` (after a long wait) keeps every file it
        finished; without a write per file, which would journal the file's size and time on every file."""
        if self._handle is not None:
            self._handle.flush()

    def finished(self, relative_paths: list[str]) -> dict[str, str]:
        """The rows of those of ``relative_paths`` that a try of this run (any process on this node) finished.

        Linear overall: this process's own rows are in memory, and the other processes' journals are read
        incrementally (each line parsed once per reader), so a mini-batch costs its own files plus the lines
        appended since the last call."""
        if all(path in self._rows for path in relative_paths):
            return {path: self._rows[path] for path in relative_paths}
        if not os.path.isdir(self.folder):  # no process of this run on this node finished a file yet
            return {}
        for path in glob.glob(os.path.join(glob.escape(self.folder), "*.jsonl")):
            if path != self.path:  # this process's own rows are already in memory
                self._read_new_lines(path)
        return {path: self._rows[path] for path in relative_paths if path in self._rows}

    def _read_new_lines(self, path: str) -> None:
        """Take the complete lines another process appended to its journal since the last read."""
        data = b""
        with contextlib.suppress(OSError), open(path, "rb") as handle:
            handle.seek(self._read.get(path, 0))
            data = handle.read()
        end = data.rfind(b"\n") + 1  # a line being written by the other process is read next time
        if end == 0:
            return
        self._read[path] = self._read.get(path, 0) + end
        for line in data[:end].decode("utf-8", errors="replace").split("\n"):
            with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
                if line:
                    self._rows[json.loads(line)["relative_path"]] = line

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
