"""The "Pipeline run" extra link shows the run URL the submit task pushed."""

from __future__ import annotations

from unittest import mock

from azureml_parallel_r.links import PipelineRunLink
from azureml_parallel_r.operators.parallel_run import SubmitParallelRunOperator


def test_link_reads_the_pushed_run_url() -> None:
    operator = SubmitParallelRunOperator(task_id="submit", dataset={})
    assert any(isinstance(link, PipelineRunLink) for link in operator.operator_extra_links)
    key = mock.Mock()
    with mock.patch(
        "airflow.sdk.execution_time.xcom.XCom.get_value", return_value="https://ml.azure.com/runs/r1"
    ) as get:
        assert PipelineRunLink().get_link(operator, ti_key=key) == "https://ml.azure.com/runs/r1"
    get.assert_called_once_with(ti_key=key, key="run_url")
    with mock.patch("airflow.sdk.execution_time.xcom.XCom.get_value", return_value=None):
        assert PipelineRunLink().get_link(operator, ti_key=key) == ""


def test_a_local_runs_file_url_is_no_link_the_ui_would_hide() -> None:
    """Airflow's UI renders only http, https and mailto links: a local run's logs folder gets no button."""
    operator = SubmitParallelRunOperator(task_id="submit", dataset={})
    with mock.patch("airflow.sdk.execution_time.xcom.XCom.get_value", return_value="file:///data/out/run/logs"):
        assert PipelineRunLink().get_link(operator, ti_key=mock.Mock()) == ""
