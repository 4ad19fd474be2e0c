"""The DAG tests' fixture: a freshly parsed r_parallel_batch DAG."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.dags.dag_runs import DAG_ID


@pytest.fixture
def dag(airflow_db):
    """A freshly parsed DAG for each test (dag.test(run_conf=...) changes the DAG object's params)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.get_dag(DAG_ID)
