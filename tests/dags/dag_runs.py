"""Whole runs of the r_parallel_batch DAG with dag.test(): run it, read its tasks' states, find its outputs."""

from __future__ import annotations

from pathlib import Path

import pendulum

from azureml_parallel_r.examples.samples import make_sample_inputs

DAG_ID = "r_parallel_batch"


def run_dag(dag, date: str, conf: dict | None = None, run_after: str | None = None) -> tuple[str, dict[str, str]]:
    """Run the DAG for ``date`` with dag.test(); its run id is ``manual__<run_after>`` (now, unless given)."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    for task in dag.tasks:
        task.retries = 0
    dag_run = dag.test(
        logical_date=pendulum.parse(date), run_conf=conf, run_after=pendulum.parse(run_after) if run_after else None
    )
    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == DAG_ID, DagRun.run_id == dag_run.run_id).one()
        return str(run.state), {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}


def run_dag_with_retries(dag, date: str, conf: dict | None = None) -> dict[str, tuple[str, int]]:
    """Run the DAG with its retries (and no delay between tries); return each task's state and try number."""
    from datetime import timedelta

    from airflow.models import DagRun
    from airflow.utils.session import create_session

    for task in dag.tasks:
        task.retry_delay = timedelta(0)
    dag_run = dag.test(logical_date=pendulum.parse(date), run_conf=conf)
    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == DAG_ID, DagRun.run_id == dag_run.run_id).one()
        return {ti.task_id: (str(ti.state), ti.try_number) for ti in run.get_task_instances(session=session)}


def output_dirs(root: Path, date: str) -> list[Path]:
    folder = root / "r-script-outputs" / date
    return sorted(folder.iterdir()) if folder.is_dir() else []


def sample_inputs(root: Path, date: str, images: int = 4) -> Path:
    folder = root / "r-script-inputs" / date
    make_sample_inputs(str(folder), images=images)
    return folder
