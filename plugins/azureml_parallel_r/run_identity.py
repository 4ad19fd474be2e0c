"""Which DAG run a task belongs to, and the date it processes: one place for every operator and template.

Words used throughout: a **DAG run** is Airflow's (its id is ``dag_run_id``); a **run** is the pipeline run an engine
executes (its id is ``run_id``; on Azure ML SDK v2 the pipeline job's name); a **step run** is the ParallelRunStep's
own run inside it (v2: the step job).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context


def run_date(dag_run: Any) -> str:
    """Return the date a DAG run processes, as YYYY-MM-DD (UTC).

    Scheduled runs and backfills have a logical date and use it, like ``{{ ds }}``. Airflow 3 also
    allows runs with no logical date (the REST API's and the UI's default for manual triggers), where
    ``ds`` is undefined: those process the date they were triggered on (``run_after``). Registered as the DAG's
    ``run_date`` macro, and used by the operators for the date they tag.

    :param dag_run: the ``dag_run`` of the task's context.
    """
    when = dag_run.logical_date or dag_run.run_after
    if when is None:
        raise ValueError(f"DAG run {dag_run.run_id!r} has neither a logical date nor a run_after date")
    return when.strftime("%Y-%m-%d")


def dag_run_key(context: Context) -> dict[str, str]:
    """The task of a DAG run that registers or submits something: dag_id, dag_run_id, task_id.

    :param context: the task's context.
    """
    ti = context["ti"]
    return {"dag_id": ti.dag_id, "dag_run_id": ti.run_id, "task_id": ti.task_id}
