"""What a run left behind, read the same way from every engine's storage: its rows file, its failure records, the
names under ``results/`` and its job logs, each part failing alone (what could not be read is said in
``logs["fetch_problems.txt"]``).

The storage is anything that lists names under a prefix and reads a text (:class:`ResultStore`): a local folder
(:class:`FolderStore`, the local engine's datastore) or a datastore's blob container
(:class:`~azureml_parallel_r.backends.azure.storage.DatastoreBlobs`, the Azure ML engines').
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from azureml_parallel_r.models import RunResults, RunState, Streamed, error_text, failure_key, row_lines

log = logging.getLogger(__name__)


class ResultStore(Protocol):
    """Where a run's output folder is: names below a prefix, and a file's text."""

    def names(self, prefix: str) -> Iterable[str]:
        """Every file below ``prefix``, relative to it (none when there is none)."""

    def read_text(self, path: str) -> str | None:
        """A file's text (undecodable bytes replaced), or None when it does not exist."""

    def chunks(self, path: str) -> Iterable[str]:
        """A file's text in pieces (undecodable bytes replaced), read as iterated; nothing when it does not exist."""


CHUNK_BYTES = 1 << 20  # read at a time from a rows file


class FolderStore:
    """A local folder as a :class:`ResultStore` (paths are relative to it, ``/``-separated).

    :param root: the folder.
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def names(self, prefix: str) -> Iterator[str]:
        """One directory read per folder and no call per file (``Path.rglob`` stats every file), yielded as found; a
        folder that is missing (nothing written yet) or cannot be read holds none."""
        pending = [(os.path.join(self.root, prefix), "")]
        while pending:
            current, current_prefix = pending.pop()
            try:
                entries = list(os.scandir(current))
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, f"{current_prefix}{entry.name}/"))
                else:
                    yield current_prefix + entry.name

    def read_text(self, path: str) -> str | None:
        try:
            with open(os.path.join(self.root, path), encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def chunks(self, path: str) -> Iterator[str]:
        try:
            handle = open(os.path.join(self.root, path), encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
        except FileNotFoundError:
            return
        with handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk


def collect_results(
    state: RunState,
    store: ResultStore,
    output_path: str,
    rows_file: str,
    read_logs: Callable[[], dict[str, str]],
    dataset: dict[str, Any] | None = None,
    describe: Callable[[BaseException], str] = error_text,
    failures_only: bool = False,
) -> RunResults:
    """A run's results: its rows, failure records and result names from ``store``, its job logs from ``read_logs``.

    :param state: the run's state.
    :param store: the storage holding its output folder.
    :param output_path: the output folder in ``store`` ("" when the run records none).
    :param rows_file: the rows file's path in the output folder.
    :param read_logs: reads the job's logs (name -> tail).
    :param dataset: the input dataset the run recorded.
    :param describe: how an error reading a part is told (the Azure engines' adds the HTTP status).
    :param failures_only: read the failure records and the job logs only (a failure summary): neither the rows file
        nor the names under ``results/``, whose listing grows with the files that succeeded.
    """
    results = RunResults(state, dataset=dataset)
    problems: list[str] = []

    def part(what: str, read: Callable[[], None]) -> None:
        try:
            read()
        except Exception as exc:
            problems.append(f"{what}: {describe(exc)}")
            log.warning("Could not read %s of run %s: %s", what, state.run_id, describe(exc))

    part("the job logs", lambda: results.logs.update(read_logs()))
    if output_path:
        part("the failure records", lambda: results.failures.update(_failure_records(store, output_path, problems)))
        if not failures_only:  # read as validation iterates them, never held whole (an error then is the caller's)
            results.rows = Streamed(lambda: row_lines(store.chunks(f"{output_path}/{rows_file}")))
            results.output_files = Streamed(lambda: (f"results/{n}" for n in store.names(f"{output_path}/results")))
    else:
        problems.append(f"run {state.run_id} records no output folder (not submitted by this backend?)")
    if problems:
        results.logs["fetch_problems.txt"] = "\n".join(problems)
    return results


def _failure_records(store: ResultStore, output_path: str, problems: list[str]) -> dict[str, dict[str, Any]]:
    """The failure records under ``failures/``, by input; a record that is not JSON is a problem, said."""
    records: dict[str, dict[str, Any]] = {}
    for name in sorted(store.names(f"{output_path}/failures")):  # sorted: one record wins for an input
        if not name.endswith(".json"):
            continue
        text = store.read_text(f"{output_path}/failures/{name}")
        try:
            record = json.loads(text) if text is not None else None
        except ValueError:
            problems.append(f"the failure record failures/{name} is not JSON")
            continue
        if isinstance(record, dict):
            records[failure_key(name, record)] = record
    return records
