"""A run's failed files as the report serves them: the complete list (``validation-failures.jsonl``, read through
the engine's storage once per run and kept parsed), a page of it, and the whole list to download as CSV or JSON
Lines; and the slowest files validation measured, to download as CSV.

Each failed file says where its R output is (``log``: relative to the run's logs folder, which the summary names).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from azureml_parallel_r.compute.output_layout import json_line
from azureml_parallel_r.output_checks import FAILURES_NAME
from azureml_parallel_r.report.sources import DagRunRecords
from azureml_parallel_r.validation_report import ValidationReport

PAGE_LIMIT = 500  # failures per page at most
CACHED_RUNS = 4  # failure lists kept parsed in memory (the last runs looked at)
CSV_COLUMNS = ("relative_path", "kind", "error", "call", "attempt", "seconds", "allowed_by_pattern", "log", "warnings")
SLOWEST_COLUMNS = ("relative_path", "seconds")


class FailureLists:
    """The complete failure lists of the last runs looked at, parsed once each (a run can have 100,000)."""

    def __init__(self, size: int = CACHED_RUNS) -> None:
        self.size = size
        self._lists: OrderedDict[tuple[str, ...], list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, found: DagRunRecords, backend_for: Callable[[str], Any]) -> list[dict[str, Any]]:
        """The run's failed files, as validation listed them (none before validation).

        :param found: the DAG run's records.
        :param backend_for: the engine of a connection id.
        """
        record = found.record
        if record is None or found.validation is None:
            return []
        validation = ValidationReport.from_dict(found.validation)
        key = (record["conn_id"], record["output_path"], json.dumps(dataclasses.asdict(validation.counts)))
        with self._lock:
            if key in self._lists:
                self._lists.move_to_end(key)
                return self._lists[key]
        if validation.failures_file == FAILURES_NAME:
            text = backend_for(record["conn_id"]).read_output_text(record["output_path"], FAILURES_NAME) or ""
            # JSON Lines: split at "\n" only (str.splitlines() also splits at U+2028, which JSON leaves in a string)
            failures = [json.loads(line) for line in text.split("\n") if line.strip()]
        else:  # a report from before the complete list was kept: its first 200
            failures = list(validation.failures)
        with self._lock:
            self._lists[key] = failures
            while len(self._lists) > self.size:
                self._lists.popitem(last=False)
        return failures


def _matches(failure: dict[str, Any], needle: str, kind: str) -> bool:
    if kind and failure.get("kind") != kind:
        return False
    return not needle or any(
        needle in str(failure.get(field) or "").casefold() for field in ("relative_path", "kind", "error", "call")
    )


def failure_page(
    failures: list[dict[str, Any]], *, offset: int = 0, limit: int = 50, text: str = "", kind: str = ""
) -> dict[str, Any]:
    """One page of failed files, filtered by a text (in the file's path, kind, error or call, ignoring case) and a
    kind.

    :param failures: the run's failed files.
    :param offset: the first matching file shown.
    :param limit: how many at most (up to ``PAGE_LIMIT``).
    :param text: what the shown files contain.
    :param kind: the failure kind shown ("" for all).
    """
    needle = text.casefold()
    matching = [failure for failure in failures if _matches(failure, needle, kind)]
    offset, limit = max(0, offset), max(1, min(limit, PAGE_LIMIT))
    kinds: dict[str, int] = {}
    for failure in failures:
        kinds[str(failure.get("kind"))] = kinds.get(str(failure.get("kind")), 0) + 1
    return {
        "total": len(failures),
        "matching": len(matching),
        "offset": offset,
        "limit": limit,
        "kinds": kinds,
        "items": matching[offset : offset + limit],
    }


def _csv_lines(columns: tuple[str, ...], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [
                "; ".join(map(str, value)) if isinstance(value, list) else "" if value is None else value
                for value in (row.get(column) for column in columns)
            ]
        )
        if buffer.tell() > 1 << 16:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def failures_csv(failures: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Every failed file as CSV (R's stderr tail left out: it is in the JSON Lines download), in chunks.

    :param failures: the run's failed files.
    """
    return _csv_lines(CSV_COLUMNS, failures)


def failures_jsonl(failures: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Every failed file as JSON Lines, as validation wrote them, in chunks.

    :param failures: the run's failed files.
    """
    chunk: list[str] = []
    for failure in failures:
        chunk.append(json_line(failure))
        if len(chunk) == 1000:
            yield "\n".join(chunk) + "\n"
            chunk = []
    if chunk:
        yield "\n".join(chunk) + "\n"


def slowest_csv(validation: dict[str, Any] | None) -> Iterator[str]:
    """The slowest files validation measured, as CSV.

    :param validation: the run's validation report (None: not validated yet, an empty list).
    """
    slowest = ((validation or {}).get("durations") or {}).get("slowest") or []
    return _csv_lines(SLOWEST_COLUMNS, slowest)
