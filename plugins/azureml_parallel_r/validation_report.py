"""The validation report of one run, typed, with one owner: :func:`~azureml_parallel_r.output_checks.validate_outputs`
builds it, the validate task completes it (where the run's outputs are, the dataset, a repair's outcome) and writes
it as ``validation.json`` and its XCom (:meth:`ValidationReport.to_dict`), and the run report reads it back
(:meth:`ValidationReport.from_dict`). Standard library only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from azureml_parallel_r.inputs import printable

LISTED = 20  # failed files named in the summary


@dataclass(frozen=True)
class ValidationCounts:
    """What validation counted.

    :param input_files: the dataset's registered files.
    :param succeeded: those with a result row (and their outputs).
    :param failed: those without (failed, missing, or whose input changed).
    :param failed_allowed_by_pattern: failed ones an allowed-failure pattern excuses.
    :param failed_without_failure_record: failed ones with no failure record.
    :param rows: the rows file's lines.
    :param rows_not_in_dataset: rows for files outside the dataset version.
    :param output_files: files under ``results/``.
    """

    input_files: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_allowed_by_pattern: int = 0
    failed_without_failure_record: int = 0
    rows: int = 0
    rows_not_in_dataset: int = 0
    output_files: int = 0


@dataclass(frozen=True)
class ValidationReport:
    """One run's validation.

    :param run_id: the run validated.
    :param status: its status.
    :param passed: whether it passed (no problems).
    :param problems: why it did not, each saying what to fix.
    :param notes: what is said without failing it.
    :param counts: what was counted.
    :param allowed_failures: how many files may fail (-1: any number).
    :param failures: the first failed files (:class:`~azureml_parallel_r.compute.records.ReportedFailure` JSON).
    :param durations: the files' durations (:func:`~azureml_parallel_r.run_durations.durations`).
    :param throughput: the run's wall time and files per second.
    :param all_failures: every failed file (kept beside the report, ``validation-failures.jsonl``; not in its JSON).
    :param output_path: the run's output folder.
    :param dataset: the dataset version validated (its dict).
    :param failures_file: the name of the complete failure list in the output folder.
    :param repair: a repair run's outcome for the failed files of the run it repairs.
    :param report_location: where ``validation.json`` was written.
    """

    run_id: str
    status: str
    passed: bool
    problems: list[str]
    notes: list[str]
    counts: ValidationCounts
    allowed_failures: int
    failures: list[dict[str, Any]]
    durations: dict[str, Any]
    throughput: dict[str, Any]
    all_failures: list[dict[str, Any]] = field(default_factory=list, repr=False)
    output_path: str | None = None
    dataset: dict[str, Any] | None = None
    failures_file: str | None = None
    repair: dict[str, Any] | None = None
    report_location: str | None = None

    def with_changes(self, **changes: Any) -> ValidationReport:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The report as ``validation.json`` and its XCom hold it: every field but ``all_failures``, the optional ones
        only when set."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "all_failures"}
        data["counts"] = dataclasses.asdict(self.counts)
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        """The report a ``validation.json`` or its XCom holds: keys it does not know are left out, and one it lacks (a
        report written by an earlier version) reads as empty.

        :param data: the report's JSON.
        """
        names = {f.name for f in dataclasses.fields(cls)} - {"all_failures", "counts"}
        counts = {f.name for f in dataclasses.fields(ValidationCounts)}
        empty: dict[str, Any] = {
            "run_id": "",
            "status": "",
            "passed": False,
            "problems": [],
            "notes": [],
            "allowed_failures": 0,
            "failures": [],
            "durations": {},
            "throughput": {},
        }
        given = {key: value for key, value in data.items() if key in names}
        return cls(
            counts=ValidationCounts(**{k: v for k, v in (data.get("counts") or {}).items() if k in counts}),
            **{**empty, **given},
        )

    def summary(self) -> str:
        """A readable summary for the task log and the failure message."""
        counts = self.counts
        allowed = "any" if self.allowed_failures == -1 else self.allowed_failures
        head = (
            f"Validation of pipeline run {self.run_id} ({self.status}): {'PASSED' if self.passed else 'FAILED'} - "
            f"{counts.succeeded}/{counts.input_files} files have results, {counts.failed} failed (allowed: {allowed})"
        )
        lines = [head, *(f"- {problem}" for problem in self.problems)]
        lines += [f"- note: {note}" for note in self.notes]
        for failure in self.failures[:LISTED]:
            lines.append(
                f"  failed: {printable(failure['relative_path'])} ({failure['kind']}): "
                f"{printable(str(failure['error']))}"
            )
        return "\n".join(lines)
