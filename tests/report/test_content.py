"""What the run report shows, from a DAG run's records (no Airflow database: the records are given)."""

from __future__ import annotations

from unittest import mock

import pytest

from azureml_parallel_r.report.content import summary
from azureml_parallel_r.report.sources import DagRunRecords

RECORD = {"run_id": "pipe-1", "conn_id": "c", "output_path": "r-script-outputs/2026-11-24/pipe-1"}
VALIDATION = {"passed": True, "counts": {"failed": 2}, "output_path": RECORD["output_path"]}


@pytest.mark.parametrize(
    ("state", "disabled"), [("running", True), ("queued", True), ("success", False), ("failed", False)]
)
def test_the_rerun_button_is_disabled_while_the_dag_run_goes_on(state: str, disabled: bool) -> None:
    """A repair of a run that has not ended is refused by the repair task; the button says so instead of offering it."""
    found = DagRunRecords(
        "d", "scheduled__2026-11-24", state, {"input_path": None}, record=RECORD, validation=VALIDATION
    )
    page = summary(found, backend_for=lambda _conn_id: mock.Mock())
    assert page["rerun"]["conf"] == {"input_path": None, "rerun_failed_of": "scheduled__2026-11-24"}
    assert ("disabled" in page["rerun"]) is disabled
    if disabled:
        assert page["rerun"]["disabled"] == f"the DAG run is {state}: rerun its failed files once it has ended"
