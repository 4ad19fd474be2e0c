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


def test_a_local_runs_link_is_its_run_report_as_the_ui_shows_only_http_links(monkeypatch) -> None:
    """Airflow's UI renders only http, https and mailto links: a local run's logs folder (file://) is no button, its
    run report at the API server's base URL is; without a base URL there is no link."""
    from azureml_parallel_r.links import RunReportLink

    operator = SubmitParallelRunOperator(task_id="submit", dataset={})
    assert any(isinstance(link, RunReportLink) for link in operator.operator_extra_links)
    key = mock.Mock(dag_id="r_parallel_batch", run_id="manual__2026-11-24T10:00:00+00:00", task_id="submit")
    report = (
        "https://airflow.example.com/team-a/azureml-parallel-r/runs/r_parallel_batch/"
        "manual__2026-11-24T10%3A00%3A00%2B00%3A00/?task_id=submit"
    )
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/team-a/")
    with mock.patch("airflow.sdk.execution_time.xcom.XCom.get_value", return_value="file:///data/out/run/logs"):
        assert PipelineRunLink().get_link(operator, ti_key=key) == report
    assert RunReportLink().get_link(operator, ti_key=key) == report
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "")
    with mock.patch("airflow.sdk.execution_time.xcom.XCom.get_value", return_value="file:///data/out/run/logs"):
        assert PipelineRunLink().get_link(operator, ti_key=key) == ""
