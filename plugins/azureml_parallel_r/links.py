"""Operator extra links: the pipeline run in Azure ML studio, and the run report inside Airflow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

from azureml_parallel_r.report.urls import report_url

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


def _report(ti_key: TaskInstanceKey) -> str:
    """The run report of the task's DAG run at the API server's ``[api] base_url`` ("" when that is not set)."""
    from airflow.configuration import conf

    base_url = conf.get("api", "base_url", fallback="") or ""
    if not base_url.startswith(("https://", "http://")):
        return ""
    return report_url(base_url, ti_key.dag_id, ti_key.run_id, ti_key.task_id)


class PipelineRunLink(BaseOperatorLink):
    """ "Pipeline run" button on the submit task: the ``run_url`` it pushed, the run's page in Azure ML studio.

    Airflow's UI renders only http, https and mailto links; a local run's URL is its logs folder (``file://``), which
    it would not show, so a local run's link is its run report instead (its folder is in the task log)."""

    name = "Pipeline run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key="run_url") or ""
        if url.startswith(("https://", "http://")):
            return url
        return _report(ti_key) if url else ""


class RunReportLink(BaseOperatorLink):
    """ "Run report" button: the DAG run's report page (:mod:`azureml_parallel_r.report`) for this task's run."""

    name = "Run report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return _report(ti_key)
