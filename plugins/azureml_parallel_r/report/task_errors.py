"""Why a task of a DAG run failed, as its log says it: the run report shows it for a DAG run that never submitted a
pipeline run (its ``register_dataset`` failed, say), where there is no run to report on.

Airflow keeps a task's exception only in its log: the task's last try is read the way Airflow's log endpoint reads it
(``TaskLogReader``, so remote logging works too), and the last exception it logged (the structured log's
``error_detail``) is the error; else its last error line. A log that cannot be read says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

ERROR_CHARS = 2000  # of a task's error, at most
LEVELS = ("error", "critical", "fatal")


def _messages(stream: Any) -> Iterable[dict[str, Any]]:
    """The log's messages as plain dicts, whatever nesting the log handler returns them in."""
    if isinstance(stream, dict):
        yield stream
        return
    if hasattr(stream, "model_dump"):
        yield stream.model_dump()
        return
    if isinstance(stream, str | bytes) or not isinstance(stream, Iterable):
        return
    for item in stream:
        yield from _messages(item)


def error_from_log(stream: Any) -> str | None:
    """The last exception a task's log holds (``ExcType: message``), else its last error line, else None.

    :param stream: the log as the log reader returns it (structured messages).
    """
    last_error = None
    exception = None
    for message in _messages(stream):
        details = message.get("error_detail")
        if isinstance(details, list) and details:
            detail = details[-1] if isinstance(details[-1], dict) else {}
            exception = f"{detail.get('exc_type', 'Exception')}: {detail.get('exc_value', '')}".strip()
        if str(message.get("level") or "").lower() in LEVELS and message.get("event"):
            last_error = str(message["event"])
    text = exception or last_error
    return text[:ERROR_CHARS] if text else None


def task_errors(dag_id: str, run_id: str, task_ids: Iterable[str]) -> dict[str, str]:
    """task id -> its error, for failed tasks of a DAG run (the last try of each; one that never ran has none).

    :param dag_id: the DAG.
    :param run_id: the DAG run.
    :param task_ids: the failed tasks.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.log.log_reader import TaskLogReader
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    wanted = list(task_ids)
    if not wanted:
        return {}
    reader = TaskLogReader()
    errors: dict[str, str] = {}
    with create_session() as session:
        instances = session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id.in_(wanted))
            .options(joinedload(TaskInstance.dag_run))
        ).all()
        for ti in instances:
            if not ti.try_number:
                continue  # it never ran
            try:
                stream, _ = reader.read_log_chunks(ti, ti.try_number, {"end_of_log": False})
                found = error_from_log(stream)
            except Exception as exc:  # a log store that cannot be read: say so, the rest of the page still shows
                found = f"its log could not be read: {exc}"
            errors[ti.task_id] = found or "its log holds no error: open the task's log"
    return errors
