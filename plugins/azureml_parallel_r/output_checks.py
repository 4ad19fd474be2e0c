"""Output validation: every input file has results or is an allowed failure, and the rows agree.

Pure functions over :class:`~azureml_parallel_r.models.RunResults`, so they work for both engines.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import fnmatch
import heapq
import json
import re
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from azureml_parallel_r import status as run_status
from azureml_parallel_r.compute.output_layout import json_line
from azureml_parallel_r.compute.records import VALIDATION_FAILURES, FailureRecord, ReportedFailure, ResultRow
from azureml_parallel_r.inputs import printable
from azureml_parallel_r.models import DatasetRef, RunResults
from azureml_parallel_r.run_durations import SLOWEST, durations, throughput
from azureml_parallel_r.validation_report import ValidationCounts, ValidationReport

LISTED = 20
REPORTED_FAILURES = 200  # failures in validation.json (and so in its XCom); all of them are in FAILURES_NAME
CHANGED_KIND = "input_changed"  # the failure kind of a file whose input changed after it was registered
FAILURES_NAME = VALIDATION_FAILURES  # beside validation.json: every failed or missing file, one JSON per line
TAIL_CHARS = 4000  # of a failure's R stderr tail kept in the report


def failure_entry(path: str, record: dict[str, Any] | None, excused: bool) -> dict[str, Any]:
    """What the report keeps of a failed or missing file (:class:`ReportedFailure`): its failure record's kind, R
    error, call, warnings, stderr tail (the last ``TAIL_CHARS``) and attempt; a file with no record is
    ``unprocessed``.

    :param path: the file, relative to the dataset root.
    :param record: its failure record, or None.
    :param excused: whether an allowed-failure pattern matches it.
    """
    failure = FailureRecord.from_json(record, path)
    if failure.relative_path != path:  # the report's key is the path validation checked
        failure = dataclasses.replace(failure, relative_path=path)
    return ReportedFailure(failure, excused, TAIL_CHARS).to_json()


def failures_jsonl(failures: Sequence[dict[str, Any]]) -> bytes:
    """The complete failure list as ``FAILURES_NAME`` holds it: one JSON object per line, whatever the names and
    errors hold (:func:`~azureml_parallel_r.compute.output_layout.json_line`: Unicode line breaks escaped).

    :param failures: :func:`failure_entry` dicts.
    """
    return "".join(json_line(entry) + "\n" for entry in failures).encode("utf-8")


def _matcher(patterns: Sequence[str]) -> Callable[[str], bool]:
    """One compiled test for "matches any of the glob patterns" (``fnmatch`` semantics), linear in the paths."""
    if not patterns:
        return lambda _path: False
    compiled = re.compile("|".join(f"(?:{fnmatch.translate(pattern)})" for pattern in patterns))
    return lambda path: compiled.match(path) is not None


def _listed(items: Sequence[str], total: int | None = None) -> str:
    """The first ``LISTED`` items, each on one line's worth of text (a crafted name cannot start a line of its own),
    and "..." when there are more (``total``, default ``len(items)``)."""
    more = (len(items) if total is None else total) > LISTED
    return ", ".join(printable(item) for item in items[:LISTED]) + (" ..." if more else "")


class _Sample:
    """How many items there were, and the first ``LISTED`` of them in sorted order, in bounded memory."""

    def __init__(self) -> None:
        self.count = 0
        self._items: list[str] = []

    def add(self, item: str) -> None:
        self.count += 1
        self._items.append(item)
        if len(self._items) > 4 * LISTED:
            self._items = sorted(self._items)[:LISTED]

    def listed(self) -> str:
        return _listed(sorted(self._items), self.count)


class _RowScan:
    """One pass over a run's rows against the dataset's sorted files, keeping per file a byte (rows seen) and a
    digest of the outputs its row lists, never the rows: memory flat in the number of files beyond their list."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.seen = bytearray(len(paths))
        self.listed_digest = array("q", bytes(8 * len(paths)))
        self.listed_count = array("I", bytes(4 * len(paths)))
        self.lines = 0
        self.bad = _Sample()
        self.duplicates = _Sample()
        self.late: set[str] = set()
        self.seconds = array("d")
        self.slowest: list[tuple[float, str]] = []

    def unseen(self) -> list[str]:
        """The files no row named, sorted."""
        return [path for path, seen in zip(self.paths, self.seen, strict=True) if not seen]

    def index(self, path: str) -> int | None:
        i = bisect.bisect_left(self.paths, path)
        return i if i < len(self.paths) and self.paths[i] == path else None

    def scan(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.lines += 1
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            parsed = ResultRow.from_json(row)
            if parsed is None:
                self.bad.add(line[:200])  # shown through printable() by listed()
                continue
            self._take(parsed)

    def _take(self, row: ResultRow) -> None:
        path = row.relative_path
        i = self.index(path)
        if i is None:
            self.late.add(path)
            return
        self.seen[i] = min(255, self.seen[i] + 1)
        if self.seen[i] == 2:
            self.duplicates.add(path)
        outputs = row.outputs
        self.listed_digest[i] ^= _digest(outputs)
        self.listed_count[i] = min(0xFFFFFFFF, self.listed_count[i] + len(outputs))
        value = row.seconds
        if value is not None:
            self.seconds.append(value)
            entry = (value, path)
            if len(self.slowest) < SLOWEST:
                heapq.heappush(self.slowest, entry)
            elif entry > self.slowest[0]:
                heapq.heapreplace(self.slowest, entry)


def _digest(names: Iterable[str]) -> int:
    """An order-free digest of a set of names (64-bit: XOR of their hashes)."""
    value = 0
    for name in names:
        value ^= hash(name)
    return value


def _output_owner(scan: _RowScan, name: str, last: tuple[str, int] | None) -> tuple[str, int] | None:
    """(``results/<input path>/``, its index) for an output name, from the input paths it could belong to; the last
    one found first, since a listing names an input's outputs together."""
    if last is not None and name.startswith(last[0]):
        return last
    if not name.startswith("results/"):
        return None
    parts = name[len("results/") :].split("/")
    for cut in range(1, len(parts)):
        candidate = "/".join(parts[:cut])
        i = scan.index(candidate)
        if i is not None:
            return f"results/{candidate}/", i
    return None


def _late_owner(scan: _RowScan, name: str) -> bool:
    """Whether an output under ``results/`` belongs to a row of a file that is not in the dataset (added late)."""
    parts = name[len("results/") :].split("/") if name.startswith("results/") else []
    return any("/".join(parts[:cut]) in scan.late for cut in range(1, len(parts)))


def _missing_outputs(scan: _RowScan, rows: Iterable[str], outputs: Iterable[str]) -> tuple[_Sample, int, _Sample]:
    """Outputs listed in rows but not under ``results/`` (``input: output``), how many files are there, and those
    there that belong to no input of the dataset nor to a row of a file added late (a script that wrote into the
    output folder itself, or what another run left): one pass over the listing with a digest per input file, and a
    second pass over the files whose digests differ."""
    present_digest = array("q", bytes(8 * len(scan.paths)))
    present_count = array("I", bytes(4 * len(scan.paths)))
    total, last = 0, None
    unowned = _Sample()
    for name in outputs:
        total += 1
        last = _output_owner(scan, name, last)
        if last is not None:
            present_digest[last[1]] ^= hash(name)
            present_count[last[1]] = min(0xFFFFFFFF, present_count[last[1]] + 1)
        elif not _late_owner(scan, name):
            unowned.add(name)
    differ = {
        i
        for i, seen in enumerate(scan.seen)
        if seen and (scan.listed_digest[i], scan.listed_count[i]) != (present_digest[i], present_count[i])
    }
    missing = _Sample()
    if not differ:
        return missing, total, unowned
    listed: dict[int, set[str]] = {i: set() for i in differ}
    for line in rows:  # only the files whose outputs differ: their rows again, then their part of the listing
        with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
            row = ResultRow.from_json(json.loads(line))
            i = scan.index(row.relative_path) if row is not None else None
            if row is not None and i in listed:
                listed[i].update(row.outputs)
    present: dict[int, set[str]] = {i: set() for i in differ if present_count[i]}
    last = None
    for name in outputs if present else ():
        last = _output_owner(scan, name, last)
        if last is not None and last[1] in present:
            present[last[1]].add(name)
    for i in sorted(differ):
        for output in sorted(listed[i] - present.get(i, set())):
            missing.add(f"{printable(scan.paths[i])}: {printable(output)}")
    return missing, total, unowned


def failed_files(
    dataset_files: Sequence[str], rows: Iterable[str], changed: Mapping[str, str] | None = None
) -> list[str]:
    """The dataset's files that validation counts as failed, sorted: those no result row names (a run failed them or
    never processed them) and those whose input changed after registration (``changed``), from the rows alone
    (``results/`` is not listed). What a repair run reruns.

    :param dataset_files: the dataset's files, relative to its root.
    :param rows: the run's result rows.
    :param changed: the registered files whose size or version stamp changed since (:meth:`RegisteredFiles.changed`).
    """
    scan = _RowScan(sorted(dataset_files))
    scan.scan(rows)
    return _failed(scan, _stale(scan, changed or {}))


def _failed(scan: _RowScan, stale: set[str]) -> list[str]:
    """The files validation counts as failed, sorted: those without a row, and those whose row is ``stale``."""
    return sorted(scan.unseen() + sorted(stale)) if stale else scan.unseen()


def _stale(scan: _RowScan, changed: Mapping[str, str]) -> set[str]:
    """The files with a result row whose input changed after registration: their results may be for other content."""
    return {path for path in changed if (i := scan.index(path)) is not None and scan.seen[i]}


def _record_of(
    path: str, failures: Mapping[str, dict[str, Any]], changed: Mapping[str, str], stale: set[str]
) -> dict[str, Any] | None:
    """The record a failed file is reported with: its failure record, or, for a file whose input changed after
    registration and that has a result row (or no record), what changed."""
    if path in stale or (path in changed and path not in failures):
        return {"relative_path": path, "kind": CHANGED_KIND, "error": changed[path]}
    return failures.get(path)


def _dataset_mismatch(dataset: DatasetRef, results: RunResults) -> str | None:
    """Why the run's results are not for ``dataset``, or None when the run recorded that very version."""
    recorded = results.dataset
    run_id = results.state.run_id
    if not recorded:
        return (
            f"pipeline run {run_id} records no input dataset, so its results cannot be shown to be for "
            f"{dataset.name} v{dataset.version}: submit the run again (clear submit_pipeline)"
        )
    if (recorded.get("name"), recorded.get("version")) != (dataset.name, dataset.version):
        return (
            f"pipeline run {run_id} processed dataset {recorded.get('name')} v{recorded.get('version')}, not "
            f"{dataset.name} v{dataset.version} that this validation was given: its results are for other inputs; "
            "clear submit_pipeline to process this version"
        )
    return None


def _problems(
    scan: _RowScan,
    results: RunResults,
    counted: Sequence[str],
    allowed_failures: int,
    dataset: DatasetRef | None,
    files_unknown: str | None,
    missing_outputs: _Sample,
    unowned_outputs: _Sample,
) -> list[str]:
    """Why the run does not pass validation, each saying what to fix (none: it passes)."""
    state = results.state
    problems = [files_unknown] if files_unknown else []
    mismatch = _dataset_mismatch(dataset, results) if dataset is not None else None
    if mismatch:
        problems.append(mismatch)
    expected = None if dataset is None else dataset.partitions if dataset.tabular else dataset.file_count
    if dataset is not None and not files_unknown and expected is not None and expected != len(scan.paths):
        problems.append(
            f"the registered list of dataset {dataset.name} v{dataset.version} holds {len(scan.paths)} items, but "
            f"the version was registered with {expected}: the list is not the one registered, so what the "
            "run was given cannot be known; register the folder again (clear register_dataset)"
        )
    if state.status != run_status.FINISHED:
        problems.append(f"the pipeline run is {state.status}, not Finished: {state.message}")
    if allowed_failures != -1 and len(counted) > allowed_failures:
        problems.append(
            f"{len(counted)} input file(s) have no results, more than the {allowed_failures} allowed: "
            + _listed(counted)
        )
    for label, sample in (
        ("result rows that are not JSON objects with a relative_path", scan.bad),
        ("input files with more than one result row", scan.duplicates),
        ("outputs listed in result rows but missing under results/", missing_outputs),
        (
            "files under results/ that belong to no input file of the dataset (written there by the R script itself "
            "instead of into its output_dir, or left by something else: remove them)",
            unowned_outputs,
        ),
    ):
        if sample.count:
            problems.append(f"{sample.count} {label}: " + sample.listed())
    return problems


def _notes(late: Sequence[str], changed: Mapping[str, str], dataset: DatasetRef | None) -> list[str]:
    """What the report says without failing the run: rows for files added after registration, changed inputs."""
    version = f" {dataset.name} v{dataset.version}" if dataset is not None else ""
    notes = (
        [
            f"{len(late)} result row(s) are for files that are not in the dataset{version} (added to the folder after "
            f"it was registered, and listed by the job's mount): not counted, not validated: " + _listed(late)
        ]
        if late
        else []
    )

    if changed:
        notes.append(
            f"{len(changed)} input file(s) changed after the dataset was registered (counted failed when they "
            "have a result row, since their results may be for other content; a repair run or a new "
            "registration processes them as they are now): " + _listed(sorted(changed))
        )
    return notes


def validate_outputs(
    dataset_files: Sequence[str],
    results: RunResults,
    *,
    allowed_failures: int = 0,
    allowed_failure_patterns: Sequence[str] = (),
    dataset: DatasetRef | None = None,
    changed: Mapping[str, str] | None = None,
    files_unknown: str | None = None,
) -> ValidationReport:
    """Check a run's outputs against its input files and return the report (``report.passed``).

    :param dataset_files: the dataset's files, relative to its root (as registered).
    :param results: what the run left behind.
    :param allowed_failures: how many files may fail (-1: any number).
    :param allowed_failure_patterns: glob patterns of files that may always fail (they do not count).
    :param dataset: the dataset version ``dataset_files`` belong to: the run must have been submitted over it (a run
        recorded over another version, or over none, processed other inputs, whatever its rows say), and the files
        must be as many as the version was registered with.
    :param changed: registered files whose size or version stamp changed after registration, with what changed: one
        with a result row is counted failed (kind ``input_changed``), since its results may be for other content.
    :param files_unknown: why the registered files cannot be known (their list is gone): validation fails, saying so.

    ``report.failures`` lists the first ``REPORTED_FAILURES`` failed files, ``report.all_failures`` all of them
    (:func:`failure_entry`), which the caller keeps apart (``FAILURES_NAME``).
    """
    state = results.state
    scan = _RowScan(sorted(dataset_files))
    scan.scan(results.rows)
    missing_outputs, output_count, unowned = _missing_outputs(scan, results.rows, results.output_files)
    # rows for files outside the dataset version: files added to the folder after it was registered, which an Azure
    # ML mount shows the job (it lists the folder when the job starts); reported, never counted
    late = sorted(scan.late)
    changed = changed or {}
    stale = _stale(scan, changed)
    failed = _failed(scan, stale)
    succeeded = len(scan.paths) - len(failed)
    excusable = _matcher(allowed_failure_patterns)
    excused = {path for path in failed if excusable(path)}
    counted = [path for path in failed if path not in excused]
    unaccounted = [path for path in failed if path not in results.failures and path not in changed]

    problems = _problems(scan, results, counted, allowed_failures, dataset, files_unknown, missing_outputs, unowned)
    notes = _notes(late, changed, dataset)
    all_failures = [
        failure_entry(path, _record_of(path, results.failures, changed, stale), path in excused) for path in failed
    ]
    return ValidationReport(
        run_id=state.run_id,
        status=state.status,
        passed=not problems,
        problems=problems,
        notes=notes,
        counts=ValidationCounts(
            input_files=len(scan.paths),
            succeeded=succeeded,
            failed=len(failed),
            failed_allowed_by_pattern=len(excused),
            failed_without_failure_record=len(unaccounted),
            rows=scan.lines,
            rows_not_in_dataset=len(late),
            output_files=output_count,
        ),
        allowed_failures=allowed_failures,
        failures=all_failures[:REPORTED_FAILURES],  # all of them: all_failures, kept apart (FAILURES_NAME)
        all_failures=all_failures,
        durations=durations(scan.seconds, scan.slowest),
        throughput=throughput(state, succeeded),
    )
