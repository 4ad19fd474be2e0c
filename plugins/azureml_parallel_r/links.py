"""Operator extra link: the pipeline run in Azure ML studio (or the local run's logs folder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class PipelineRunLink(BaseOperatorLink):
    """ "Pipeline run" button on the submit task: the ``run_url`` it pushed, the run's page in Azure ML studio.

    Airflow's UI renders only http, https and mailto links; a local run's URL is its logs folder (``file://``), which
    it would not show, so a local run has no link rather than an invisible one (its URL is still in the task log)."""

    name = "Pipeline run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key="run_url") or ""
        return url if url.startswith(("https://", "http://")) else ""
