"""What the run report reads from Airflow's metadata database: a DAG run, the record its submit task left
(:data:`~azureml_parallel_r.report.records.RUN_RECORD_KEY`), its validation report, and the repair runs of it.

Tasks are found by what they pushed, not by their ids: a DAG may name its tasks as it likes. A DAG run with several
submit tasks shows the one named by ``task_id`` (the task-instance tab), else the first by task id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from azureml_parallel_r.report.records import RERUN_FAILED_OF, RUN_RECORD_KEY

PACKAGE = "azureml_parallel_r"
RETURN_VALUE = "return_value"
RECENT_RUNS = 500  # runs of the DAG searched for repairs of a run


@dataclass
class DagRunRecords:
    """A DAG run as the report sees it.

    :param dag_id: the DAG.
    :param run_id: the DAG run.
    :param state: the DAG run's state.
    :param conf: its conf (trigger parameters).
    :param record: the submit task's record (None: not submitted yet, or no run of this package).
    :param submit_task_id: the task that left ``record``.
    :param validation: the validation report for that run (None: not validated yet).
    :param task_states: task id -> state.
    :param repairs: the DAG runs that rerun this one's failed files (``dag_run_id``, ``state``).
    :param uses_package: whether the DAG has a task of this package (read only when no task left a record).
    :param task_errors: task id -> its error, for the failed tasks of a run that left no record.
    """

    dag_id: str
    run_id: str
    state: str
    conf: dict[str, Any]
    record: dict[str, Any] | None = None
    submit_task_id: str | None = None
    validation: dict[str, Any] | None = None
    task_states: dict[str, str | None] = field(default_factory=dict)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    uses_package: bool = True
    task_errors: dict[str, str] = field(default_factory=dict)


def read_dag_run(
    dag_id: str, run_id: str, task_id: str | None = None, *, for_summary: bool = False
) -> DagRunRecords | None:
    """The report's view of a DAG run, or None when there is no such run.

    :param dag_id: the DAG.
    :param run_id: the DAG run.
    :param task_id: a task of the run (its submit task, or the validation of that run) to narrow to.
    :param for_summary: for a run no task left a record of, also read whether the DAG uses this package and its
        failed tasks' errors (their logs): the summary shows them, the failure pages and downloads do not.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if dag_run is None:
            return None
        found = DagRunRecords(dag_id, run_id, str(dag_run.state), dict(dag_run.conf or {}))
        found.task_states = {
            ti_id: str(state) if state else None
            for ti_id, state in session.execute(
                select(TaskInstance.task_id, TaskInstance.state).where(
                    TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
                )
            )
        }
        rows = session.execute(
            select(XComModel.task_id, XComModel.key, XComModel.value).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run_id,
                XComModel.key.in_((RUN_RECORD_KEY, RETURN_VALUE)),
            )
        ).all()
        values = sorted(((row.task_id, row.key, XComModel.deserialize_value(row)) for row in rows), key=lambda v: v[:2])
        records = {task: value for task, key, value in values if key == RUN_RECORD_KEY and isinstance(value, dict)}
        reports = {task: value for task, key, value in values if key == RETURN_VALUE and _is_validation(value)}
        chosen = _choose(records, reports, task_id)
        if chosen is not None:
            found.submit_task_id, found.record = chosen, records[chosen]
            output_path = found.record.get("output_path")
            found.validation = next((r for r in reports.values() if r.get("output_path") == output_path), None)
        found.repairs = _repairs(session, DagRun, dag_id, run_id)
        if chosen is None and for_summary:
            found.uses_package = _uses_package(session, dag_id)
    if chosen is None and for_summary and found.uses_package:
        from azureml_parallel_r.report.task_errors import task_errors

        found.task_errors = task_errors(
            dag_id, run_id, [t for t, state in found.task_states.items() if state == "failed"]
        )
    return found


def _uses_package(session: Any, dag_id: str) -> bool:
    """Whether the DAG's latest serialized version has a task whose class comes from this package."""
    from airflow.models.serialized_dag import SerializedDagModel
    from sqlalchemy import select

    row = session.scalar(
        select(SerializedDagModel)
        .where(SerializedDagModel.dag_id == dag_id)
        .order_by(SerializedDagModel.created_at.desc())
        .limit(1)
    )
    if row is None:
        return False
    tasks = (row.data or {}).get("dag", {}).get("tasks", [])
    modules = {str((task.get("__var", task) if isinstance(task, dict) else {}).get("_task_module")) for task in tasks}
    return any(module.startswith(PACKAGE + ".") for module in modules)


def _is_validation(value: Any) -> bool:
    return isinstance(value, dict) and "counts" in value and "output_path" in value and "passed" in value


def _choose(records: dict[str, Any], reports: dict[str, Any], task_id: str | None) -> str | None:
    if not records:
        return None
    if task_id in records:
        return task_id
    if task_id in reports:  # a validation task: the submit task of the same output folder
        output_path = reports[task_id].get("output_path")
        return next((task for task, record in records.items() if record.get("output_path") == output_path), None)
    return min(records)


def _repairs(session: Any, dag_run_model: Any, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The recent DAG runs of the DAG whose conf names ``run_id`` as the run they repair."""
    from sqlalchemy import select

    recent = session.execute(
        select(dag_run_model.run_id, dag_run_model.state, dag_run_model.conf)
        .where(dag_run_model.dag_id == dag_id)
        .order_by(dag_run_model.id.desc())
        .limit(RECENT_RUNS)
    ).all()
    return [
        {"dag_run_id": row.run_id, "state": str(row.state)}
        for row in recent
        if isinstance(row.conf, dict) and row.conf.get(RERUN_FAILED_OF) == run_id
    ]
