"""A failed task's error, from its structured log as Airflow's log reader returns it."""

from __future__ import annotations

from airflow.utils.log.file_task_handler import StructuredLogMessage

from azureml_parallel_r.report.task_errors import error_from_log


def _message(event: str, level: str = "info", **extra: object) -> StructuredLogMessage:
    return StructuredLogMessage(event=event, level=level, **extra)  # type: ignore[arg-type]


def test_the_last_exception_of_the_log_is_the_tasks_error() -> None:
    stream = [
        _message("::group::Log message source details"),
        [_message("Registering r-script-inputs/2026-12-01")],
        _message(
            "Task failed with exception",
            "error",
            error_detail=[
                {"exc_type": "KeyError", "exc_value": "'a'"},
                {"exc_type": "InputFolderMissingError", "exc_value": "r-script-inputs/2026-12-01 does not exist"},
            ],
        ),
        _message("Task instance in failure state"),
    ]
    assert error_from_log(stream) == "InputFolderMissingError: r-script-inputs/2026-12-01 does not exist"


def test_without_an_exception_the_last_error_line_and_without_one_none() -> None:
    assert error_from_log([_message("fine"), _message("it broke", "error"), _message("after")]) == "it broke"
    assert error_from_log([_message("fine")]) is None
    assert error_from_log(iter([{"event": "x" * 5000, "level": "ERROR"}])) == "x" * 2000
