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


def test_a_local_runs_link_is_its_run_report_tab_with_or_without_a_base_url(monkeypatch) -> None:
    """Airflow's UI renders http, https and mailto links and links of its own origin: a local run's logs folder
    (file://) is no button, its run report is (the report's page, which forwards to the UI's tab). With
    ``[api] base_url`` the address is absolute; without it, relative to the UI's base (the shipped stacks set none),
    never missing."""
    from azureml_parallel_r.links import RunReportLink

    operator = SubmitParallelRunOperator(task_id="submit", dataset={})
    assert any(isinstance(link, RunReportLink) for link in operator.operator_extra_links)
    key = mock.Mock(dag_id="r_parallel_batch", run_id="manual__2026-11-24T10:00:00+00:00", task_id="submit")
    tab = "azureml-parallel-r/runs/r_parallel_batch/manual__2026-11-24T10%3A00%3A00%2B00%3A00/?task_id=submit"
    for base_url, expected in (
        ("https://airflow.example.com/team-a/", f"https://airflow.example.com/team-a/{tab}"),
        ("", tab),
        ("not a url", tab),
    ):
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", base_url)
        with mock.patch("airflow.sdk.execution_time.xcom.XCom.get_value", return_value="file:///data/out/run/logs"):
            assert PipelineRunLink().get_link(operator, ti_key=key) == expected
        assert RunReportLink().get_link(operator, ti_key=key) == expected
