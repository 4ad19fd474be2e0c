"""The files of a run that already have their results, so that a retried mini-batch re-runs only the others.

The ParallelRunStep runtime retries a whole mini-batch when ``run()`` raised, timed out or returned fewer rows
than files; without a record, the files that had succeeded would run again on every try, and the rows of the
files a timed-out try had finished would be lost. After a file's outputs are in place, its row is appended
(one line) to this process's journal of that mini-batch, ``<journal folder>/<mini-batch key>/<process>.jsonl``
on the node's local disk, the key being a digest of the mini-batch's files (a retry is given the same files).
The lines are written out at the end of each mini-batch and while R works on a long file (see
:meth:`Journal.flush`). A process killed in any other way (out of memory) loses the lines not yet written (of
its current mini-batch, at most one 8 KB buffer): those files run again, which is correct, only slower.

A mini-batch's first try finds no folder under its key and reads nothing; a retry that lands on the same node
reads the journals of that mini-batch alone (any process's) and runs only the files they lack; one on another
node runs them again, which is also correct (outputs are replaced whole). So a process's cost is its own
mini-batches', whatever the number of files and processes of the run: it keeps no rows between mini-batches and
never reads another mini-batch's lines. The journal is on local disk, not on the output mount: appending to a
blob rewrites it.

Standard library only: this module ships to the compute nodes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from typing import Any

JOURNAL_DIR = "azureml-parallel-r-journal"


class Journal:
    """The finished files of one run (keyed by the run's results folder), per mini-batch, shared by its processes on
    a node.

    :param run_folder: a folder of the run's own, its results folder (identifies the run).
    :param process_name: this process's name (its journal file in each mini-batch's folder).
    :param base_dir: the local folder for journals (default: the system's temporary folder).
    """

    def __init__(self, run_folder: str, process_name: str, base_dir: str | None = None) -> None:
        run = hashlib.sha256(os.path.abspath(run_folder).encode("utf-8", "surrogateescape")).hexdigest()[:20]
        self.folder = os.path.join(base_dir or tempfile.gettempdir(), JOURNAL_DIR, run)
        self.process_name = process_name
        self.journals_read = 0  # journal files read (a first try reads none)
        self._batch_folder: str | None = None
        self._handle: Any = None

    def begin(self, relative_paths: list[str]) -> dict[str, str]:
        """Start a mini-batch: its rows are journalled under its key from now on. Returns the rows of those of its
        files that an earlier try of it finished (any process of this node), reading that mini-batch's journals
        only, and none at all on a first try.

        :param relative_paths: the mini-batch's files, relative to the dataset root.
        """
        self.close()
        key = hashlib.sha256("\0".join(sorted(relative_paths)).encode("utf-8", "surrogateescape")).hexdigest()[:32]
        self._batch_folder = os.path.join(self.folder, key)
        try:
            names = sorted(os.listdir(self._batch_folder))
        except OSError:  # no try of this mini-batch has finished a file on this node
            return {}
        wanted = set(relative_paths)
        rows: dict[str, str] = {}
        for name in names:
            if name.endswith(".jsonl"):
                self.journals_read += 1
                rows.update(_complete_rows(os.path.join(self._batch_folder, name), wanted))
        return rows

    def record(self, relative_path: str, row: str) -> None:
        """Remember that ``relative_path`` (of the mini-batch begun last) is done, with its row (one line of JSON)."""
        if self._handle is None:
            if self._batch_folder is None:
                raise RuntimeError("Journal.record before Journal.begin: no mini-batch to journal the file under")
            os.makedirs(self._batch_folder, exist_ok=True)
            self._handle = open(  # noqa: SIM115  (closed by close(), at the next mini-batch or the end)
                os.path.join(self._batch_folder, f"{self.process_name}.jsonl"),
                "a",
                encoding="utf-8",
                errors="backslashreplace",
            )
        self._handle.write(row + "\n")  # buffered: see flush()

    def flush(self) -> None:
        """Write out the recorded lines. Called at the end of each mini-batch and whenever R has worked on one
        file for a while, so a try killed by ``run_invocation_timeout`` (after a long wait) keeps every file it
        finished; without a write per file, which would journal the file's size and time on every file."""
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _complete_rows(path: str, wanted: set[str]) -> dict[str, str]:
    """The rows of ``wanted`` files in a journal; a line still being written (no newline yet) is left out."""
    data = b""
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        data = handle.read()
    rows: dict[str, str] = {}
    for line in data[: data.rfind(b"\n") + 1].decode("utf-8", errors="replace").split("\n"):
        with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
            if line and (relative := json.loads(line)["relative_path"]) in wanted:
                rows[relative] = line
    return rows
