"""Operator extra links: the pipeline run in Azure ML studio, and the run report inside Airflow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

from azureml_parallel_r.report.urls import report_page_url

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


def _report(ti_key: TaskInstanceKey) -> str:
    """The task's run report: the report app's page, which forwards to the task's "Run report" tab in the UI when the
    user may see plugin tabs. Absolute at ``[api] base_url`` when that is an http(s) URL, else relative (the UI
    resolves it against its own base, so the button shows without ``base_url``)."""
    from airflow.configuration import conf

    base_url = conf.get("api", "base_url", fallback="") or ""
    base_url = base_url if base_url.startswith(("https://", "http://")) else ""
    return report_page_url(ti_key.dag_id, ti_key.run_id, ti_key.task_id, base_url)


class PipelineRunLink(BaseOperatorLink):
    """ "Pipeline run" button on the submit task: the ``run_url`` it pushed, the run's page in Azure ML studio.

    Airflow's UI renders only http, https and mailto links and links of its own origin; a local run's URL is its logs
    folder (``file://``), which it would not show, so a local run's link is its run report tab instead (its folder is
    in the task log)."""

    name = "Pipeline run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key="run_url") or ""
        if url.startswith(("https://", "http://")):
            return url
        return _report(ti_key) if url else ""


class RunReportLink(BaseOperatorLink):
    """ "Run report" button: the task's "Run report" tab in the UI (:mod:`azureml_parallel_r.report`), the report of
    the pipeline run it submitted or of the run it validated."""

    name = "Run report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return _report(ti_key)
