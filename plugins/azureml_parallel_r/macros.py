"""Template macros for DAGs that process dated folders (registered with ``user_defined_macros``)."""

from __future__ import annotations

from typing import Any


def run_date(dag_run: Any) -> str:
    """Return the date a DAG run processes, as YYYY-MM-DD (UTC).

    Scheduled runs and backfills have a logical date and use it, like ``{{ ds }}``. Airflow 3 also
    allows runs with no logical date (the REST API's and the UI's default for manual triggers), where
    ``ds`` is undefined: those process the date they were triggered on (``run_after``).

    :param dag_run: the ``dag_run`` of the template context.
    """
    when = dag_run.logical_date or dag_run.run_after
    if when is None:
        raise ValueError(f"DAG run {dag_run.run_id!r} has neither a logical date nor a run_after date")
    return when.strftime("%Y-%m-%d")
