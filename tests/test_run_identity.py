"""run_date: the dated folder a DAG run processes; dag_run_key: the task of a DAG run that submits."""

from __future__ import annotations

from types import SimpleNamespace

import pendulum
import pytest

from azureml_parallel_r.run_identity import run_date


def test_a_run_with_a_logical_date_uses_it_like_ds() -> None:
    run = SimpleNamespace(
        run_id="scheduled__x",
        logical_date=pendulum.datetime(2026, 11, 3, 23, 59, tz="UTC"),
        run_after=pendulum.datetime(2026, 11, 4, tz="UTC"),
    )
    assert run_date(run) == "2026-11-03"


def test_a_manual_run_without_a_logical_date_uses_the_day_it_was_triggered() -> None:
    run = SimpleNamespace(run_id="manual__x", logical_date=None, run_after=pendulum.datetime(2026, 11, 24, 8, tz="UTC"))
    assert run_date(run) == "2026-11-24"


def test_a_run_with_no_dates_at_all_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="'odd' has neither a logical date nor a run_after date"):
        run_date(SimpleNamespace(run_id="odd", logical_date=None, run_after=None))


def test_the_dag_run_key_names_the_task_of_a_dag_run() -> None:
    from azureml_parallel_r.run_identity import dag_run_key

    ti = SimpleNamespace(dag_id="r_parallel_batch", run_id="scheduled__2026-11-24", task_id="submit")
    assert dag_run_key({"ti": ti}) == {
        "dag_id": "r_parallel_batch",
        "dag_run_id": "scheduled__2026-11-24",
        "task_id": "submit",
    }
